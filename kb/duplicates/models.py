"""Derived lookup tables (rebuildable from the sheets) and the moderators' candidate pairs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kb.auth.models import User
from kb.extensions import db
from kb.sheets.models import Sheet
from kb.timeutil import utcnow


class DuplicateFingerprint(db.Model):  # type: ignore[name-defined]
    """The normalised form of a published sheet's approved revision (derived, rebuildable)."""

    __tablename__ = "duplicate_fingerprints"

    sheet_id: Mapped[int] = mapped_column(
        ForeignKey("sheets.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(SmallInteger)
    revision_id: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(250))  # folded title words
    shingles: Mapped[bytes] = mapped_column(LargeBinary)  # sorted uint32 hashes


class DuplicateFeature(db.Model):  # type: ignore[name-defined]
    """Inverted index: lookup feature (title word, word pair, MinHash band) -> sheet."""

    __tablename__ = "duplicate_features"

    feature: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    sheet_id: Mapped[int] = mapped_column(
        ForeignKey("sheets.id", ondelete="CASCADE"), primary_key=True, index=True)
    kind: Mapped[int] = mapped_column(SmallInteger)


class CandidateStatus(StrEnum):
    OPEN = "open"  # waiting in the moderators' queue
    NOT_DUPLICATE = "not_duplicate"  # decided: never proposed again
    MERGED = "merged"


class DuplicateCandidate(db.Model):  # type: ignore[name-defined]
    """A pair of sheets that look alike (sheet_a_id < sheet_b_id), and what was decided."""

    __tablename__ = "duplicate_candidates"
    __table_args__ = (
        UniqueConstraint("sheet_a_id", "sheet_b_id", name="uq_duplicate_candidates_pair"),
        Index("ix_duplicate_candidates_status_score", "status", "score"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sheet_a_id: Mapped[int] = mapped_column(ForeignKey("sheets.id", ondelete="CASCADE"))
    sheet_b_id: Mapped[int] = mapped_column(
        ForeignKey("sheets.id", ondelete="CASCADE"), index=True)
    score: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20), default=CandidateStatus.OPEN.value)
    source: Mapped[str] = mapped_column(String(20))  # scan | create | import
    # "C'est une autre initiative": the writer's or the import's reason, shown to moderators.
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)

    sheet_a: Mapped[Sheet] = relationship(foreign_keys=[sheet_a_id])
    sheet_b: Mapped[Sheet] = relationship(foreign_keys=[sheet_b_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
