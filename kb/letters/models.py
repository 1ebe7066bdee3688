"""The letters built: one row per person and period, even when the letter was empty (nothing is
sent then, and the person is not looked at again until the next period)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kb.extensions import db
from kb.timeutil import utcnow


class Letter(db.Model):  # type: ignore[name-defined]
    """The unique key makes a second run in the same period, or two runs at once, add nothing;
    the outbox's dedupe key (letter:<user>:<period>) says the same to the mail layer."""

    __tablename__ = "letters"
    __table_args__ = (UniqueConstraint("user_id", "period_key", name="uq_letters_user_period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    period_key: Mapped[str] = mapped_column(String(20))
    built_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    queued: Mapped[bool] = mapped_column(Boolean, default=False)  # False: nothing to say
    # Items per section key, and the sheets listed (escalation counts letters per sheet).
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sheet_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
