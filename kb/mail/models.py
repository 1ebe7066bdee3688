"""The outbox: one row per mail, written in the transaction of the change that causes it
(docs/mail.md), and the addresses suppressed after repeated bounces."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kb.extensions import db
from kb.timeutil import utcnow


class MailState(StrEnum):
    PENDING = "pending"        # waiting for a sender (retrying when attempts > 0)
    SENT = "sent"              # the server accepted it (or it was logged, without KB_MAIL_URL)
    BOUNCED = "bounced"        # refused for good (SMTP 5xx)
    FAILED = "failed"          # temporary failures for 24 h: given up
    SUPPRESSED = "suppressed"  # not sent: non-transactional, to an address that bounces


class OutboxMail(db.Model):  # type: ignore[name-defined]
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "send_after"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(320), index=True)  # exactly one address
    kind: Mapped[str] = mapped_column(String(60))
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    subject: Mapped[str] = mapped_column(String(500))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [[name, value], ...]
    transactional: Mapped[bool] = mapped_column(Boolean, default=False)
    # Files sent with the mail: [[filename, content type, base64 content], ...] (a calendar
    # invitation, kb/visits): small, so kept in the row that commits with its cause.
    attachments: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")
    # Fixed at queue time: a mail sent twice (a sender killed after the server said yes)
    # carries the same Message-ID, so that mail clients show it once.
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    state: Mapped[str] = mapped_column(String(12), default=MailState.PENDING.value)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    send_after: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    bounced_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The lease of the sender working on the row: another sender leaves it alone until
    # claimed_until; a sender killed mid-batch loses it when it expires.
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime)


BOUNCES_TO_SUPPRESS = 3


class MailSuppression(db.Model):  # type: ignore[name-defined]
    """Bounces per address; at BOUNCES_TO_SUPPRESS the address gets no non-transactional mail
    until its owner confirms it again."""

    __tablename__ = "mail_suppressions"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)  # lower case
    bounces: Mapped[int] = mapped_column(Integer, default=0)
    last_bounce_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    suppressed_at: Mapped[datetime | None] = mapped_column(DateTime)
