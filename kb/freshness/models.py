from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, String
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
