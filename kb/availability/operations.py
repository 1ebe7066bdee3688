"""Availability writes: a sheet's contributors and moderators, in one click, no review cycle;
each change is in the journal (kb/moderation AuditEntry)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from kb.auth.models import User
from kb.auth.permissions import Capability, can, check
from kb.availability.models import MAX_DELAY_DAYS, STATUS_LABELS, Availability
from kb.errors import Invalid, LinkError
from kb.extensions import db
from kb.moderation.models import Action
from kb.moderation.operations import audit
from kb.sheets.links import SheetLink, make_token, read_token
from kb.sheets.models import Sheet, SheetState
from kb.timeutil import utcnow
from kb.urls import base_url

# The statuses a letter offers in one click each ("ferme" needs a date: from the page).
LETTER_STATUSES = ("places", "attente", "complet")
_SALT = "kb-availability-link"


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
                     until: date | None = None, via: str = "") -> Availability:
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
    details: dict[str, Any] = {"status": status, "delay_days": delay_days,
                               "until": until.isoformat() if until else None}
    if via:  # the letter's link, not the page
        details["via"] = via
    audit(user, Action.SET_AVAILABILITY, sheet=sheet, reason=STATUS_LABELS[status], **details)
    return row


# --- one-click links of the letter ------------------------------------------------------------

def _stamp(sheet: Sheet) -> str:
    """The availability a link was sent about: once it changes, the link is spent."""
    row = availability_of(sheet)
    return row.updated_at.isoformat() if row is not None else ""


def may_update(sheet: Sheet, user: User) -> bool:
    return sheet.is_published and can(user, Capability.UPDATE_AVAILABILITY, sheet)


def link_url(sheet: Sheet, user: User, status: str, now: datetime) -> str:
    """A signed link saying `status` for `sheet` as `user`, without signing in
    (kb/sheets/links.py): the availability it was sent about makes it single use."""
    return f"{base_url()}/disponibilite/{make_token(_SALT, sheet, user, status, _stamp(sheet), now)}"


def letter_actions(sheet: Sheet, user: User, now: datetime) -> tuple[tuple[str, str], ...]:
    return tuple((STATUS_LABELS[status], link_url(sheet, user, status, now))
                 for status in LETTER_STATUSES)


def load_link(token: str, viewer: object, now: datetime | None = None) -> SheetLink:
    """What a link says (its `action` is the status), or LinkError. `viewer` is whoever is
    signed in (or anonymous)."""
    link = read_token(_SALT, token, LETTER_STATUSES, viewer, now or utcnow())
    if not can(link.user, Capability.UPDATE_AVAILABILITY, link.sheet):
        raise LinkError("Vous ne faites plus partie de l'équipe de cette fiche : ce lien ne "
                        "sert plus.", 403)
    if link.stamp != _stamp(link.sheet):
        raise LinkError("Déjà fait : la disponibilité de la fiche a été mise à jour depuis "
                        "l'envoi de ce lien. Vous pouvez la changer depuis la page de la fiche.",
                        410)
    return link


def use_link(token: str, viewer: object) -> SheetLink:
    link = load_link(token, viewer)
    set_availability(link.sheet, link.user, link.action, via="lien de la lettre des fiches")
    return link
