"""A sheet's availability: volatile information, outside revisions (no review cycle)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import Date, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kb.auth.models import User
from kb.extensions import db
from kb.timeutil import utcnow

# Said "inconnue" once this old: places change faster than the rest of a sheet (docs/availability.md).
STALE_AFTER = timedelta(days=30)
UNKNOWN = "inconnue"
STATUSES: tuple[tuple[str, str], ...] = (  # (value, French label)
    ("places", "Places disponibles"),
    ("attente", "Liste d'attente"),
    ("complet", "Complet"),
    ("ferme", "Fermé pour une période"),
)
STATUS_LABELS = dict(STATUSES)
MAX_DELAY_DAYS = 365


class Availability(db.Model):  # type: ignore[name-defined]
    """The last availability said for a sheet, by whom and when (the journal keeps each one)."""

    __tablename__ = "sheet_availability"
    # Shown on the sheet's page: a change bumps its publication version (kb/transaction.py).
    __shown_on_sheet__ = "sheet"

    sheet_id: Mapped[int] = mapped_column(ForeignKey("sheets.id", ondelete="CASCADE"),
                                          primary_key=True)
    status: Mapped[str] = mapped_column(String(20))
    delay_days: Mapped[int | None] = mapped_column(Integer)  # entry delay, when known
    # The date that goes with the status: reopening (ferme), next places (complet, attente).
    until: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    updated_by: Mapped[User | None] = relationship()

    def shown_status(self, now: datetime | None = None) -> str:
        """The status readers see: UNKNOWN after STALE_AFTER without an update."""
        if (now or utcnow()) - self.updated_at > STALE_AFTER:
            return UNKNOWN
        return self.status

    def age(self, now: datetime | None = None) -> str:
        """'aujourd'hui', 'il y a 1 jour', 'il y a 12 jours'."""
        days = ((now or utcnow()) - self.updated_at).days
        return "aujourd'hui" if days < 1 else f"il y a {days} jour{'s' if days > 1 else ''}"

    def label(self, now: datetime | None = None) -> str:
        status = self.shown_status(now)
        return "Inconnue" if status == UNKNOWN else STATUS_LABELS.get(status, status)
