"""Availability writes: a sheet's contributors and moderators, in one click, no review cycle;
each change is in the journal (kb/moderation AuditEntry)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from kb.auth.models import User
from kb.auth.permissions import Capability, can, check
from kb.availability.models import MAX_DELAY_DAYS, STATUS_LABELS, Availability
from kb.errors import Invalid, LinkError
from kb.extensions import db
from kb.moderation.models import Action
from kb.moderation.operations import audit
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

def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def _stamp(sheet: Sheet) -> str:
    """The availability a link was sent about: once it changes, the link is spent."""
    row = availability_of(sheet)
    return row.updated_at.isoformat() if row is not None else ""


def may_update(sheet: Sheet, user: User) -> bool:
    return sheet.is_published and can(user, Capability.UPDATE_AVAILABILITY, sheet)


def link_url(sheet: Sheet, user: User, status: str, now: datetime) -> str:
    """A signed link saying `status` for `sheet` as `user`, without signing in. Nothing is
    stored: the signature proves we issued it, the availability it was sent about makes it
    single use, and it expires like the freshness links (KB_CONFIRM_TOKEN_DAYS)."""
    expires = now + timedelta(days=current_app.config["KB_CONFIRM_TOKEN_DAYS"])
    token = _serializer().dumps({"s": sheet.id, "u": user.id, "a": status, "c": _stamp(sheet),
                                 "e": int(expires.replace(tzinfo=UTC).timestamp())})
    return f"{base_url()}/disponibilite/{token}"


def letter_actions(sheet: Sheet, user: User, now: datetime) -> tuple[tuple[str, str], ...]:
    return tuple((STATUS_LABELS[status], link_url(sheet, user, status, now))
                 for status in LETTER_STATUSES)


@dataclass
class AvailabilityLink:
    sheet: Sheet
    user: User
    status: str


def load_link(token: str, viewer: object, now: datetime | None = None) -> AvailabilityLink:
    """What a link says, or LinkError. `viewer` is whoever is signed in (or anonymous).
    Reading it changes nothing: GET shows it, POST applies it (mail scanners open links)."""
    now = now or utcnow()
    try:
        data = _serializer().loads(token)
        sheet_id, user_id, status = int(data["s"]), int(data["u"]), str(data["a"])
        stamp, expires = str(data["c"]), int(data["e"])
    except (BadSignature, KeyError, TypeError, ValueError) as exc:
        raise LinkError("Ce lien n'est pas valide.") from exc
    if status not in LETTER_STATUSES:
        raise LinkError("Ce lien n'est pas valide.")
    if getattr(viewer, "is_authenticated", False) and getattr(viewer, "id", None) != user_id:
        raise LinkError("Ce lien a été envoyé à une autre personne : il ne peut servir qu'à "
                        "elle. Déconnectez-vous si c'est bien le vôtre.", 403)
    if now.replace(tzinfo=UTC).timestamp() >= expires:
        raise LinkError("Ce lien a expiré.", 410)
    user, sheet = db.session.get(User, user_id), db.session.get(Sheet, sheet_id)
    if user is None or sheet is None or user.blocked or user.deleted_at is not None:
        raise LinkError("Ce lien n'est plus valide.", 410)
    if not sheet.is_published:
        raise LinkError("Cette fiche n'est plus publiée : ce lien ne sert plus.", 410)
    if not can(user, Capability.UPDATE_AVAILABILITY, sheet):
        raise LinkError("Vous ne faites plus partie de l'équipe de cette fiche : ce lien ne "
                        "sert plus.", 403)
    if stamp != _stamp(sheet):
        raise LinkError("Déjà fait : la disponibilité de la fiche a été mise à jour depuis "
                        "l'envoi de ce lien. Vous pouvez la changer depuis la page de la fiche.",
                        410)
    return AvailabilityLink(sheet, user, status)


def use_link(token: str, viewer: object) -> AvailabilityLink:
    link = load_link(token, viewer)
    set_availability(link.sheet, link.user, link.status, via="lien de la lettre des fiches")
    return link
