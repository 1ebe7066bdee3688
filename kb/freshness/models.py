from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kb.auth.models import User
from kb.extensions import db
from kb.sheets.models import Sheet
from kb.timeutil import utcnow


class ConfirmToken(db.Model):  # type: ignore[name-defined]
    """The stored half of a signed "toujours à jour" link: the signature proves we issued it,
    this row makes it single use (`used_at`) and bounded in time (`expires_at`)."""

    __tablename__ = "confirm_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    sheet_id: Mapped[int] = mapped_column(ForeignKey("sheets.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)

    sheet: Mapped[Sheet] = relationship()
    user: Mapped[User] = relationship()


class DigestLog(db.Model):  # type: ignore[name-defined]
    """One digest e-mail sent to a contributor: at most one per KB_REMINDER_PERIOD_DAYS."""

    __tablename__ = "digest_logs"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    sent_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    sheet_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)


class FreshnessState(db.Model):  # type: ignore[name-defined]
    """Per sheet: the letters that listed it since it fell due (escalation), and the readers'
    once-per-cycle extension. The counter belongs to one review date (`due_at`): any sign of
    life moves the date, and the counter starts again from zero."""

    __tablename__ = "freshness_states"

    sheet_id: Mapped[int] = mapped_column(ForeignKey("sheets.id", ondelete="CASCADE"),
                                          primary_key=True)
    due_at: Mapped[datetime | None] = mapped_column(DateTime)
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    last_reminded_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Set by three readers' "Oui": the review date they moved the sheet to, and the real last
    # sign of life before it (the cycle their answers belong to).
    extended_to: Mapped[datetime | None] = mapped_column(DateTime)
    cycle_start: Mapped[datetime | None] = mapped_column(DateTime)


class ReaderCheck(db.Model):  # type: ignore[name-defined]
    """A signed-in reader's answer to "Cette fiche vous semble-t-elle toujours juste ?": one per
    reader per sheet per review cycle (the sheet's last sign of life when they answered)."""

    __tablename__ = "reader_checks"
    __table_args__ = (UniqueConstraint("sheet_id", "user_id", "cycle_start",
                                       name="uq_reader_checks_cycle"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sheet_id: Mapped[int] = mapped_column(ForeignKey("sheets.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    cycle_start: Mapped[datetime] = mapped_column(DateTime)
    accurate: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ReviewEvent(db.Model):  # type: ignore[name-defined]
    """One sign of life: a sheet's review date moved (approved edit, confirmation, question
    answered, readers' extension). Written by one flush hook (kb/freshness/signs.py) whichever
    domain moved it; /statistiques reads it (confirmed within 30 days of the due date)."""

    __tablename__ = "review_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    sheet_id: Mapped[int] = mapped_column(ForeignKey("sheets.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    due_before: Mapped[datetime] = mapped_column(DateTime)  # the review date it replaced
    kind: Mapped[str] = mapped_column(String(20), default="sign")
