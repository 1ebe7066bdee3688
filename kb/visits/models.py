"""A visit slot offered by a sheet, and the registrations of people to it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kb.auth.models import User
from kb.extensions import db
from kb.sheets.models import Sheet
from kb.timeutil import utcnow


class SlotStatus(StrEnum):
    OPEN = "open"            # taking registrations, the minimum not decided yet
    CONFIRMED = "confirmed"  # the minimum was reached at the decision date: it happens
    CANCELLED = "cancelled"  # by its host, or under its minimum at the decision date
    DONE = "done"            # it took place


class VisitFormat(StrEnum):
    VISITE = "visite"
    ATELIER = "atelier"
    IMMERSION = "immersion"  # "vis ma vie"


FORMAT_LABELS = {VisitFormat.VISITE: "Visite", VisitFormat.ATELIER: "Atelier",
                 VisitFormat.IMMERSION: "Immersion (« vis ma vie »)"}


class RegistrationStatus(StrEnum):
    REGISTERED = "registered"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"  # by the person, or with the slot


class VisitCampaign(db.Model):  # type: ignore[name-defined]
    """A "parcours de visites": slots grouped by a moderator, with an optional cap of visits
    per person."""

    __tablename__ = "visit_campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    starts_on: Mapped[datetime] = mapped_column(DateTime)
    ends_on: Mapped[datetime] = mapped_column(DateTime)
    department: Mapped[str] = mapped_column(String(3), default="")
    cap: Mapped[int | None] = mapped_column(Integer)  # visits per person; None: no cap
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CampaignStructure(db.Model):  # type: ignore[name-defined]
    """A structure invited to a campaign: its active members count as invited professionals."""

    __tablename__ = "visit_campaign_structures"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("visit_campaigns.id", ondelete="CASCADE"), primary_key=True)
    structure_id: Mapped[int] = mapped_column(
        ForeignKey("structures.id", ondelete="CASCADE"), primary_key=True, index=True)


class CampaignInvitee(db.Model):  # type: ignore[name-defined]
    """A professional (an account, named by its address) invited to a campaign."""

    __tablename__ = "visit_campaign_invitees"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("visit_campaigns.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)


class VisitSlot(db.Model):  # type: ignore[name-defined]
    __tablename__ = "visit_slots"
    # Its seats and status show on the sheet's page and /visites: kb/transaction.py bumps
    # the sheet's publication version whenever a slot changes.
    __shown_on_sheet__ = "sheet"
    __table_args__ = (Index("ix_visit_slots_status_decide", "status", "decide_by"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sheet_id: Mapped[int] = mapped_column(ForeignKey("sheets.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("visit_campaigns.id", ondelete="SET NULL"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    starts_at: Mapped[datetime] = mapped_column(DateTime, index=True)  # naive UTC
    ends_at: Mapped[datetime] = mapped_column(DateTime)
    place: Mapped[str] = mapped_column(String(300))  # the address
    commune_code: Mapped[str] = mapped_column(String(5), default="")
    department: Mapped[str] = mapped_column(String(3), default="", index=True)
    format: Mapped[str] = mapped_column(String(20), default=VisitFormat.VISITE.value)
    capacity: Mapped[int] = mapped_column(Integer)
    min_participants: Mapped[int] = mapped_column(Integer, default=1)
    decide_by: Mapped[datetime] = mapped_column(DateTime)
    host_name: Mapped[str] = mapped_column(String(120))
    host_phone: Mapped[str] = mapped_column(String(40), default="")
    bring: Mapped[str] = mapped_column(Text, default="")  # what to bring
    accessibility: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(12), default=SlotStatus.OPEN.value)
    # Seats taken, and the last queue number given: written only under the slot's lock.
    seats_taken: Mapped[int] = mapped_column(Integer, default=0)
    last_rank: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)

    sheet: Mapped[Sheet] = relationship()
    created_by: Mapped[User | None] = relationship()
    campaign: Mapped[VisitCampaign | None] = relationship()

    @property
    def seats_left(self) -> int:
        return max(0, self.capacity - self.seats_taken)

    @property
    def format_label(self) -> str:
        return FORMAT_LABELS.get(VisitFormat(self.format), self.format)


class VisitRegistration(db.Model):  # type: ignore[name-defined]
    __tablename__ = "visit_registrations"
    # One registration per person per slot: registering again after cancelling reuses it.
    __table_args__ = (UniqueConstraint("slot_id", "user_id"),
                      Index("ix_visit_registrations_slot_status_rank", "slot_id", "status", "rank"))

    id: Mapped[int] = mapped_column(primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("visit_slots.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(12))
    rank: Mapped[int] = mapped_column(Integer)  # FIFO order within the slot
    phone: Mapped[str] = mapped_column(String(40), default="")  # professional mobile: host only
    structure: Mapped[str] = mapped_column(String(200), default="")
    # The calendar event: one UID for the registration's life, SEQUENCE grows on each change.
    uid: Mapped[str] = mapped_column(String(120), unique=True)
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    registered_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime)
    # After the slot: the host marks who came (None: not marked); the visitor's 1-5 rating
    # and comment, shown to the host (and, aggregated, to campaigns).
    attended: Mapped[bool | None] = mapped_column(Boolean)
    rating: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    rated_at: Mapped[datetime | None] = mapped_column(DateTime)

    slot: Mapped[VisitSlot] = relationship()
    user: Mapped[User] = relationship()

    @property
    def active(self) -> bool:
        return self.status != RegistrationStatus.CANCELLED
