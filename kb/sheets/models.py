from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql import Select

from kb.auth.models import User
from kb.extensions import db
from kb.timeutil import utcnow

if TYPE_CHECKING:  # mapped by name: this domain never imports kb.structures at run time
    from kb.structures.models import Structure

REVIEW_INTERVALS = (3, 6, 12, 24)  # months
DEFAULT_REVIEW_INTERVAL = 12


class SheetState(StrEnum):
    ACTIVE = "active"
    HIDDEN = "hidden"  # hidden pending review (spam reports, blocked author)
    ARCHIVED = "archived"  # page and history kept, out of search and listings
    MERGED = "merged"  # redirects to merged_into


class RevisionStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    # Approved in part at review time: the moderator kept the published text for some of its
    # fields; what was accepted is in a later approved revision based on it. Not public.
    MERGED = "merged"
    # Replaced by a later proposal of the same author built on it, before any review: that later
    # one carries its content and is what a moderator decides on. Never public, never counted.
    SUPERSEDED = "superseded"


# How pages name each status (history, review page).
REVISION_STATUS_LABELS: dict[str, str] = {
    RevisionStatus.PENDING: "en attente",
    RevisionStatus.APPROVED: "approuvée",
    RevisionStatus.REJECTED: "refusée",
    RevisionStatus.MERGED: "intégrée en partie",
    RevisionStatus.SUPERSEDED: "remplacée",
}

# Statuses of revisions whose author's work was accepted (trust counter, contributors).
ACCEPTED = (RevisionStatus.APPROVED.value, RevisionStatus.MERGED.value)

sheet_tags = Table(
    "sheet_tags",
    db.metadata,
    Column("sheet_id", ForeignKey("sheets.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)

# The keys of the approved revision's MULTI fields (kb/sheets/fields.py: thématiques with their
# families, publics, zone d'éligibilité...): what filters by those fields compare, and what the
# thématique pages order by. Written by publish(), like the projection columns.
sheet_keys = Table(
    "sheet_keys",
    db.metadata,
    Column("sheet_id", ForeignKey("sheets.id", ondelete="CASCADE"), primary_key=True),
    Column("field", String(40), primary_key=True),
    Column("key", String(120), primary_key=True),
    Index("ix_sheet_keys_field_key", "field", "key"),
)


class SheetKey(db.Model):  # type: ignore[name-defined]
    """One row of sheet_keys, so that a sheet's keys are written by the unit of work (one
    flush per import batch) rather than by statements of their own."""

    __table__ = sheet_keys

    sheet_id: Mapped[int]
    field: Mapped[str]
    key: Mapped[str]


class Tag(db.Model):  # type: ignore[name-defined]
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    slug: Mapped[str] = mapped_column(String(80), unique=True)


class Sheet(db.Model):  # type: ignore[name-defined]
    """A sheet and the projection of its last approved revision (used to filter and list)."""

    __tablename__ = "sheets"
    # Any change to a sheet's row bumps its publication version (kb/transaction.py).
    __shown_on_sheet__ = "self"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    state: Mapped[str] = mapped_column(String(20), default=SheetState.ACTIVE.value, index=True)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("sheets.id"))
    approved_revision_id: Mapped[int | None] = mapped_column(
        ForeignKey("revisions.id", use_alter=True, name="fk_sheets_approved_revision")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    review_interval_months: Mapped[int] = mapped_column(Integer, default=DEFAULT_REVIEW_INTERVAL)
    last_reviewed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime)

    # Projection of the approved revision: empty until a revision is approved.
    title: Mapped[str] = mapped_column(String(200), default="")
    actor_type: Mapped[str] = mapped_column(String(30), default="", index=True)
    scale: Mapped[str] = mapped_column(String(30), default="", index=True)
    city: Mapped[str] = mapped_column(String(120), default="", index=True)
    # Official codes (kb/territories), derived from the place: what territory filters compare.
    commune_code: Mapped[str] = mapped_column(String(5), default="", index=True)
    epci: Mapped[str] = mapped_column(String(9), default="", index=True)
    department: Mapped[str] = mapped_column(String(80), default="", index=True)
    region: Mapped[str] = mapped_column(String(3), default="", index=True)
    # The structure that carries the sheet (kb/structures, which this domain never imports):
    # its members join the sheet's team. `actor_name` stays the text; it links when this is set.
    structure_id: Mapped[int | None] = mapped_column(
        ForeignKey("structures.id", ondelete="SET NULL"), index=True)

    approved_revision: Mapped[Revision | None] = relationship(
        foreign_keys=[approved_revision_id], post_update=True
    )
    merged_into: Mapped[Sheet | None] = relationship(remote_side=[id])
    tags: Mapped[list[Tag]] = relationship(secondary=sheet_tags, order_by=Tag.name)
    keys: Mapped[list[SheetKey]] = relationship(cascade="all, delete-orphan",
                                                passive_deletes=True)
    structure: Mapped[Structure | None] = relationship("Structure")

    @property
    def review_due_at(self) -> datetime:
        return self.last_reviewed_at + timedelta(days=round(self.review_interval_months * 30.44))

    @property
    def fresh(self) -> bool:
        return utcnow() < self.review_due_at

    @property
    def is_published(self) -> bool:
        return self.state == SheetState.ACTIVE and self.approved_revision_id is not None

    def is_owned_by(self, user: User) -> bool:
        """Its contributors: people who wrote an approved revision of it (kb.auth.permissions)."""
        return db.session.scalar(select(Revision.id).where(
            Revision.sheet_id == self.id, Revision.author_id == user.id,
            Revision.status.in_(ACCEPTED)).limit(1)) is not None


class Revision(db.Model):  # type: ignore[name-defined]
    """One saved version of a sheet. Append-only: only the review columns ever change."""

    __tablename__ = "revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    sheet_id: Mapped[int] = mapped_column(ForeignKey("sheets.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    comment: Mapped[str] = mapped_column(String(300), default="")
    base_revision_id: Mapped[int | None] = mapped_column(ForeignKey("revisions.id"))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(
        String(20), default=RevisionStatus.PENDING.value, index=True
    )
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime)
    review_reason: Mapped[str] = mapped_column(Text, default="")

    sheet: Mapped[Sheet] = relationship(foreign_keys=[sheet_id])
    author: Mapped[User] = relationship(foreign_keys=[author_id])
    reviewed_by: Mapped[User | None] = relationship(foreign_keys=[reviewed_by_id])

    @property
    def title(self) -> str:
        return str(self.data.get("title", ""))

    @property
    def is_public(self) -> bool:
        """Approved text may be read by anyone (kb.auth.permissions)."""
        return self.status == RevisionStatus.APPROVED

    def is_owned_by(self, user: User) -> bool:
        return self.author_id == user.id


def published_sheets() -> Select[Any]:
    """What readers may see: active sheets with an approved revision. Every listing starts here."""
    return select(Sheet).where(
        Sheet.state == SheetState.ACTIVE.value, Sheet.approved_revision_id.is_not(None)
    )
