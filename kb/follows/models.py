"""What a person follows, and the digests sent to them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kb.extensions import db
from kb.timeutil import utcnow


class FollowKind(StrEnum):
    TAG = "tag"
    TERRITORY = "territory"
    SEARCH = "search"
    SHEET = "sheet"  # one sheet: params {"sheet": id}, news when its published text changes


class DigestPeriod(StrEnum):
    WEEK = "week"
    MONTH = "month"
    OFF = "off"  # unsubscribed: follows are kept, no mail


class Follow(db.Model):  # type: ignore[name-defined]
    """A saved search (the same parameters as /recherche: q and filters), or one sheet."""

    __tablename__ = "follows"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_follows_user_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    key: Mapped[str] = mapped_column(String(500))  # canonical params: one follow per search
    label: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class FollowSettings(db.Model):  # type: ignore[name-defined]
    __tablename__ = "follow_settings"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    period: Mapped[str] = mapped_column(String(10), default=DigestPeriod.WEEK.value)


class FollowDigest(db.Model):  # type: ignore[name-defined]
    """One digest sent: at most one per person per period (the unique key makes it so even when
    two `kb follows digest` run at once)."""

    __tablename__ = "follow_digests"
    __table_args__ = (UniqueConstraint("user_id", "period_key", name="uq_follow_digests_period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    period_key: Mapped[str] = mapped_column(String(20))
    sent_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sheet_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
