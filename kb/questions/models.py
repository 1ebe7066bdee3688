"""A precise question asked to the team of an initiative, and its answer."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kb.auth.models import User
from kb.extensions import db
from kb.sheets.models import Sheet
from kb.timeutil import utcnow


class QuestionStatus(StrEnum):
    OPEN = "open"  # relayed, waiting for an answer
    ANSWERED = "answered"
    CLOSED = "closed"  # no answer in time, or closed as abusive: the asker was told


class Publication(StrEnum):
    """Whether the question and its answer appear under "Questions et réponses"."""

    PRIVATE = "private"  # one of the two has not consented
    PENDING = "pending"  # both consented: waits for a moderator
    PUBLISHED = "published"
    REFUSED = "refused"


class Question(db.Model):  # type: ignore[name-defined]
    __tablename__ = "questions"
    # Published ones show on the sheet's page: a change bumps its version (kb/transaction.py).
    __shown_on_sheet__ = "sheet"
    __table_args__ = (Index("ix_questions_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sheet_id: Mapped[int] = mapped_column(ForeignKey("sheets.id", ondelete="CASCADE"), index=True)
    # None once the asker deleted their account: the question stays, anonymous.
    asker_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"),
                                                 index=True)
    question: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(Text)  # "Ce que je cherche à débloquer"
    status: Mapped[str] = mapped_column(String(20), default=QuestionStatus.OPEN.value)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # The secret half of the signed answer link sent to the team (rotated never: one question).
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    close_reason: Mapped[str] = mapped_column(String(40), default="")
    answer: Mapped[str] = mapped_column(Text, default="")
    answered_at: Mapped[datetime | None] = mapped_column(DateTime)
    asker_consents: Mapped[bool] = mapped_column(Boolean, default=False)
    team_consents: Mapped[bool] = mapped_column(Boolean, default=False)
    publication: Mapped[str] = mapped_column(String(20), default=Publication.PRIVATE.value,
                                             index=True)
    published_at: Mapped[datetime | None] = mapped_column(DateTime)
    reported_at: Mapped[datetime | None] = mapped_column(DateTime)
    report_reason: Mapped[str] = mapped_column(Text, default="")

    sheet: Mapped[Sheet] = relationship()
    asker: Mapped[User | None] = relationship()

    @property
    def is_open(self) -> bool:
        return self.status == QuestionStatus.OPEN


class ContactOptOut(db.Model):  # type: ignore[name-defined]
    """A sheet contact address (not an account) that asked never to be relayed questions.
    Only a keyed hash of the address is kept."""

    __tablename__ = "question_contact_opt_outs"

    address_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
