"""Availability writes: a sheet's contributors and moderators, in one click, no review cycle;
each change is in the journal (kb/moderation AuditEntry)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from kb.auth.models import User
from kb.auth.permissions import Capability, check
from kb.availability.models import MAX_DELAY_DAYS, STATUS_LABELS, Availability
from kb.errors import Invalid
from kb.extensions import db
from kb.moderation.models import Action
from kb.moderation.operations import audit
from kb.sheets.models import Sheet, SheetState
from kb.timeutil import utcnow


def availability_of(sheet: Sheet) -> Availability | None:
    return db.session.scalar(select(Availability).where(Availability.sheet_id == sheet.id))


def parse_delay(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) > MAX_DELAY_DAYS:
        raise Invalid(f"Délai d'entrée : un nombre de jours entre 0 et {MAX_DELAY_DAYS}.")
    return int(raw)


def parse_date(raw: str | None) -> date | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise Invalid("Date : au format AAAA-MM-JJ (2026-12-31).") from None


def set_availability(sheet: Sheet, user: User, status: str, delay_days: int | None = None,
                     until: date | None = None) -> Availability:
    check(user, Capability.UPDATE_AVAILABILITY, sheet)
    if status not in STATUS_LABELS:
        raise Invalid("Disponibilité inconnue ; possibles : " + ", ".join(STATUS_LABELS) + ".")
    if sheet.state != SheetState.ACTIVE or sheet.approved_revision_id is None:
        raise Invalid("Seule une fiche publiée a une disponibilité.")
    row = availability_of(sheet)
    if row is None:
        row = Availability(sheet_id=sheet.id)
        db.session.add(row)
    row.status, row.delay_days, row.until = status, delay_days, until
    row.updated_at, row.updated_by_id = utcnow(), user.id
    audit(user, Action.SET_AVAILABILITY, sheet=sheet, reason=STATUS_LABELS[status],
          status=status, delay_days=delay_days, until=until.isoformat() if until else None)
    return row
