"""Visit slots and registrations: creating and editing slots, registering under the slot's
lock (the last seat is taken exactly once), the FIFO waitlist, cancellations, the decision at
the minimum's date and the reminders. Every mail goes through the outbox (kb.mail) in the
change's transaction, with its calendar file. Nothing here commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from flask import current_app, render_template
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select

from kb import mail
from kb.auth.models import User
from kb.auth.permissions import Capability, can, check
from kb.errors import Conflict, Invalid, NotFound, PermissionDenied
from kb.extensions import db
from kb.moderation.standing import counts_as_contributor
from kb.sheets.models import Sheet
from kb.territories.register import register
from kb.timeutil import parse_iso, utcnow
from kb.transaction import begin_write
from kb.visits import calendar
from kb.visits.models import (
    CampaignInvitee,
    CampaignStructure,
    RegistrationStatus,
    SlotStatus,
    VisitCampaign,
    VisitFormat,
    VisitRegistration,
    VisitSlot,
)

DEFAULT_DECISION = timedelta(days=3)  # the decision date, when none is given
REMIND_BEFORE = timedelta(days=2)
MAX_CAPACITY = 500
_FEED_SALT = "kb-visits-feed"
ACTIVE = (RegistrationStatus.REGISTERED.value, RegistrationStatus.WAITLISTED.value)
TAKING = (SlotStatus.OPEN.value, SlotStatus.CONFIRMED.value)

# --- slots ----------------------------------------------------------------------------------

TEXTS = {"place": 300, "host_name": 120, "host_phone": 40, "bring": 2000, "accessibility": 2000}
FIELDS = ("campaign_id", "starts_at", "ends_at", "place", "commune_code", "format", "capacity",
          "min_participants", "decide_by", "host_name", "host_phone", "bring", "accessibility")
REQUIRED = ("starts_at", "ends_at", "place", "capacity", "host_name")


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"« {name} » doit être un texte", field=name)
    value = " ".join(value.split()) if name not in ("bring", "accessibility") else value.strip()
    if len(value) > TEXTS[name]:
        raise Invalid(f"« {name} » : {TEXTS[name]} caractères au plus", field=name)
    return value


def _time(name: str, value: Any) -> datetime:
    try:
        parsed = parse_iso(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise Invalid(f"« {name} » : une date et heure ISO 8601 est attendue "
                      "(par exemple 2027-03-04T09:30:00+01:00)", field=name)
    return parsed


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CAPACITY:
        raise Invalid(f"« {name} » : un nombre entier de 1 à {MAX_CAPACITY} est attendu",
                      field=name)
    return value


def read_slot(data: Any, slot: VisitSlot | None = None) -> dict[str, Any]:
    """The checked values of a slot's JSON (or form) data: all of them for a new slot, the
    ones given for an edit. Bad input raises Invalid with a French message."""
    if not isinstance(data, dict):
        raise Invalid("attendu : un objet JSON")
    unknown = sorted(set(data) - set(FIELDS) - {"status"})
    if unknown:
        raise Invalid(f"champ inconnu : {', '.join(unknown)}", fields=unknown)
    if slot is None:
        missing = [name for name in REQUIRED if data.get(name) in (None, "")]
        if missing:
            raise Invalid(f"champ obligatoire : {', '.join(missing)}", fields=missing)
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name in ("starts_at", "ends_at", "decide_by"):
            values[name] = _time(name, value)
        elif name in ("capacity", "min_participants"):
            values[name] = _count(name, value)
        elif name == "format":
            if value not in {f.value for f in VisitFormat}:
                raise Invalid("« format » : visite, atelier ou immersion", field=name)
            values[name] = value
        elif name == "commune_code":
            if not isinstance(value, str) or register().commune(value) is None:
                raise Invalid("« commune_code » : code INSEE d'une commune inconnu", field=name)
            values[name] = value
        elif name in TEXTS:
            values[name] = _text(name, value)
        elif name == "campaign_id":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or db.session.get(VisitCampaign, value) is None):
                raise Invalid("« campaign_id » : parcours inconnu", field=name)
            values[name] = value
    if slot is None and not values["host_name"]:
        raise Invalid("« host_name » : le nom de la personne qui accueille", field="host_name")
    starts = values.get("starts_at", slot.starts_at if slot else None)
    ends = values.get("ends_at", slot.ends_at if slot else None)
    assert starts is not None and ends is not None
    if ends <= starts:
        raise Invalid("la fin doit suivre le début", field="ends_at")
    if ends - starts > timedelta(days=5):
        raise Invalid("un créneau dure au plus 5 jours", field="ends_at")
    if "decide_by" not in values and (slot is None or "starts_at" in values):
        values["decide_by"] = starts - DEFAULT_DECISION
    if values.get("decide_by", starts) > starts:
        raise Invalid("la date de décision doit précéder le début", field="decide_by")
    capacity = values.get("capacity", slot.capacity if slot else 0)
    minimum = values.get("min_participants", slot.min_participants if slot else 1)
    if minimum > capacity:
        raise Invalid("le minimum de participants dépasse la capacité", field="min_participants")
    return values


def may_host(user: Any, sheet: Sheet) -> bool:
    """The sheet's team (its contributors, the active members of the verified structure that
    carries it) and moderators: capability HOST_VISITS (kb.auth.permissions)."""
    return can(user, Capability.HOST_VISITS, sheet)


def hosts_of(slot: VisitSlot) -> list[User]:
    """Who the host mails go to: the sheet's team (kb.structures.team) that may host, and the
    slot's creator (a moderator, say) while they still may; confirmed addresses only. Other
    moderators may act on every slot but are not mailed about each."""
    from kb.structures.team import sheet_team

    people = [u for u in sheet_team(slot.sheet) if may_host(u, slot.sheet)]
    creator = slot.created_by
    if creator is not None and all(u.id != creator.id for u in people) and may_host(
            creator, slot.sheet):
        people.insert(0, creator)
    return [u for u in people if u.is_confirmed and u.deleted_at is None]


def _host_key(kind: str, slot: VisitSlot, host: User) -> str:
    # The creator keeps the key of the time when only the creator was mailed: a slot warned
    # then is not warned again.
    suffix = "" if host.id == slot.created_by_id else f":{host.id}"
    return f"{kind}:{slot.id}{suffix}"


def check_host(user: Any, sheet: Sheet) -> None:
    check(user, Capability.HOST_VISITS, sheet)


def create_slot(sheet: Sheet, user: User, data: Any) -> VisitSlot:
    check(user, Capability.HOST_VISITS, sheet)
    values = read_slot(data)
    if values["starts_at"] <= utcnow():
        raise Invalid("le créneau doit commencer dans le futur", field="starts_at")
    values.setdefault("commune_code", sheet.commune_code)
    commune = register().commune(values["commune_code"]) if values["commune_code"] else None
    slot = VisitSlot(sheet=sheet, created_by=user, status=SlotStatus.OPEN.value,
                     department=commune.department if commune else sheet.department,
                     seats_taken=0, last_rank=0, created_at=utcnow(), updated_at=utcnow(),
                     **values)
    db.session.add(slot)
    db.session.flush()
    return slot


def _locked(slot_id: int) -> VisitSlot:
    """The slot, locked until the commit: PostgreSQL takes its row lock (SELECT … FOR UPDATE),
    SQLite its one write lock (BEGIN IMMEDIATE). Counts read next stay true until the commit."""
    begin_write()
    slot = db.session.scalar(select(VisitSlot).where(VisitSlot.id == slot_id)
                             .with_for_update().execution_options(populate_existing=True))
    if slot is None:
        raise NotFound("ce créneau n'existe pas")
    return slot


def slot_or_404(slot_id: int) -> VisitSlot:
    slot = db.session.get(VisitSlot, slot_id)
    if slot is None or not slot.sheet.is_published:
        raise NotFound("ce créneau n'existe pas")
    return slot


CHANGES_EVENT = ("starts_at", "ends_at", "place")


def update_slot(slot_id: int, user: User, data: Any) -> VisitSlot:
    slot = _locked(slot_id)
    check(user, Capability.HOST_VISITS, slot.sheet)
    values = read_slot(data, slot)
    status = data.get("status") if isinstance(data, dict) else None
    if slot.status in (SlotStatus.CANCELLED, SlotStatus.DONE):
        raise Conflict("ce créneau est annulé ou passé : il ne change plus")
    if values.get("capacity", slot.capacity) < slot.seats_taken:
        raise Conflict(f"{slot.seats_taken} personnes sont déjà inscrites : la capacité ne peut "
                       "pas descendre en dessous")
    moved = any(name in values and values[name] != getattr(slot, name) for name in CHANGES_EVENT)
    for name, value in values.items():
        setattr(slot, name, value)
    if "commune_code" in values:
        commune = register().commune(values["commune_code"])
        slot.department = commune.department if commune else ""
    slot.updated_at = utcnow()
    if moved:
        for registration in registrations(slot, (RegistrationStatus.REGISTERED.value,)):
            registration.sequence += 1
            _mail(registration, "visit.changed", "Visite modifiée", calendar.REQUEST)
    _promote(slot)
    if status is not None:
        set_status(slot, status)
    return slot


def set_status(slot: VisitSlot, status: Any) -> None:
    if status == slot.status:
        return
    if status == SlotStatus.CANCELLED:
        cancel_slot(slot, "décision de l'équipe qui accueille")
    elif status == SlotStatus.CONFIRMED and slot.status == SlotStatus.OPEN:
        slot.status = status
        slot.decided_at = utcnow()
    elif status == SlotStatus.DONE and slot.starts_at <= utcnow():
        slot.status = status
    else:
        raise Invalid("« status » : confirmed (confirmer), cancelled (annuler) ou done (après "
                      "la visite)", field="status")


def cancel_slot(slot: VisitSlot, reason: str) -> None:
    """Cancel the slot: every registrant and the host are told, once."""
    slot.status = SlotStatus.CANCELLED.value
    slot.decided_at = utcnow()
    told = []
    for registration in registrations(slot, ACTIVE):
        had_event = registration.status == RegistrationStatus.REGISTERED
        registration.status = RegistrationStatus.CANCELLED.value
        registration.cancelled_at = utcnow()
        registration.sequence += 1
        told.append(registration)
        _mail(registration, "visit.cancelled", "Visite annulée",
              calendar.CANCEL if had_event else None, reason=reason)
    slot.seats_taken = 0
    body = render_template("mail/visit_host_cancelled.txt", slot=slot, reason=reason, told=told)
    for host in hosts_of(slot):
        mail.queue(mail.Mail(
            host.email, f"Visite annulée : {slot.sheet.title}", body,
            kind="visit.cancelled.host", transactional=True,
            dedupe_key=_host_key("visit.cancelled.host", slot, host)))


# --- registrations --------------------------------------------------------------------------

def registrations(slot: VisitSlot, statuses: tuple[str, ...] = ACTIVE) -> list[VisitRegistration]:
    """In FIFO order: the registered first come, then the waitlist."""
    return list(db.session.scalars(select(VisitRegistration).where(
        VisitRegistration.slot_id == slot.id, VisitRegistration.status.in_(statuses))
        .order_by(VisitRegistration.rank)))


def waitlist_position(registration: VisitRegistration) -> int | None:
    if registration.status != RegistrationStatus.WAITLISTED:
        return None
    return db.session.scalar(select(func.count(VisitRegistration.id)).where(
        VisitRegistration.slot_id == registration.slot_id,
        VisitRegistration.status == RegistrationStatus.WAITLISTED.value,
        VisitRegistration.rank <= registration.rank)) or None


def _new_uid() -> str:
    domain = urlparse(current_app.config["KB_BASE_URL"]).hostname or "kb.local"
    return f"visite-{uuid.uuid4()}@{domain}"


def register_user(slot_id: int, user: User, phone: Any = "", structure: Any = "",
                  ) -> VisitRegistration:
    """Register `user` on the slot: a seat if one is left, else the end of the waitlist."""
    if not counts_as_contributor(user):
        raise PermissionDenied("confirmez d'abord votre adresse e-mail pour vous inscrire")
    for name, value in (("phone", phone), ("structure", structure)):
        if not isinstance(value, str) or len(value) > (40 if name == "phone" else 200):
            raise Invalid(f"« {name} » : un texte court est attendu", field=name)
    slot = _locked(slot_id)
    if not slot.sheet.is_published:
        raise NotFound("ce créneau n'existe pas")
    if slot.status not in TAKING or slot.starts_at <= utcnow():
        raise Conflict("ce créneau ne prend plus d'inscriptions")
    registration = db.session.scalar(select(VisitRegistration).where(
        VisitRegistration.slot_id == slot.id, VisitRegistration.user_id == user.id))
    if registration is not None and registration.active:
        raise Conflict("vous êtes déjà inscrit·e à ce créneau")
    campaign = slot.campaign
    if campaign is not None and campaign.cap is not None:
        # The slot's lock does not cover the person's other slots of the campaign: two
        # registrations at once on two of them would both count below the cap. The campaign's
        # row lock, taken after the slot's (always in that order: no deadlock), makes the count
        # and the insert one step per campaign (SQLite: writers are serialised already).
        db.session.execute(select(VisitCampaign.id).where(VisitCampaign.id == campaign.id)
                           .with_for_update())
        booked = db.session.scalar(select(func.count(VisitRegistration.id)).join(VisitSlot).where(
            VisitSlot.campaign_id == campaign.id, VisitRegistration.user_id == user.id,
            VisitRegistration.status.in_(ACTIVE))) or 0
        if booked >= campaign.cap:
            raise Conflict(f"le parcours « {campaign.name} » compte au plus {campaign.cap} "
                           "visite(s) par personne")
    if registration is None:
        registration = VisitRegistration(slot=slot, user=user, uid=_new_uid(), sequence=0)
        db.session.add(registration)
    else:  # back after cancelling: the same calendar event, at the end of the queue
        registration.sequence += 1
        registration.cancelled_at = None
        registration.reminded_at = None
    slot.last_rank += 1
    registration.rank = slot.last_rank
    registration.registered_at = utcnow()
    registration.phone = " ".join(phone.split())
    registration.structure = " ".join(structure.split())
    if slot.seats_taken < slot.capacity:
        slot.seats_taken += 1
        registration.status = RegistrationStatus.REGISTERED.value
        db.session.flush()
        _mail(registration, "visit.registered", "Inscription confirmée", calendar.REQUEST)
    else:
        registration.status = RegistrationStatus.WAITLISTED.value
        db.session.flush()
        _mail(registration, "visit.waitlisted", "Sur liste d'attente", None,
              position=waitlist_position(registration))
    return registration


def unregister_user(slot_id: int, user: User) -> None:
    """The person cancels: their seat goes to the first person waiting."""
    slot = _locked(slot_id)
    registration = db.session.scalar(select(VisitRegistration).where(
        VisitRegistration.slot_id == slot.id, VisitRegistration.user_id == user.id,
        VisitRegistration.status.in_(ACTIVE)))
    if registration is None:
        raise NotFound("vous n'êtes pas inscrit·e à ce créneau")
    had_seat = registration.status == RegistrationStatus.REGISTERED
    registration.status = RegistrationStatus.CANCELLED.value
    registration.cancelled_at = utcnow()
    registration.sequence += 1
    if had_seat:
        slot.seats_taken -= 1
        _mail(registration, "visit.unregistered", "Désinscription enregistrée", calendar.CANCEL)
        _promote(slot)


def _promote(slot: VisitSlot) -> None:
    """Free seats go to the first people waiting, in order; each gets the confirmation mail."""
    if slot.status not in TAKING:
        return
    while slot.seats_taken < slot.capacity:
        first = db.session.scalar(select(VisitRegistration).where(
            VisitRegistration.slot_id == slot.id,
            VisitRegistration.status == RegistrationStatus.WAITLISTED.value)
            .order_by(VisitRegistration.rank).limit(1))
        if first is None:
            return
        first.status = RegistrationStatus.REGISTERED.value
        first.sequence += 1
        slot.seats_taken += 1
        db.session.flush()
        _mail(first, "visit.registered", "Une place s'est libérée : inscription confirmée",
              calendar.REQUEST, promoted=True)


def _mail(registration: VisitRegistration, kind: str, subject: str, method: str | None,
          **context: Any) -> None:
    """One transactional mail to the registrant, with the calendar file when `method` is
    given; its dedupe key (kind, UID, SEQUENCE) queues it once per change."""
    slot = registration.slot
    template = kind.replace(".", "_")
    mail.queue(mail.Mail(
        registration.user.email, f"{subject} : {slot.sheet.title}",
        render_template(f"mail/{template}.txt", registration=registration, slot=slot,
                        feed_url=feed_url(registration.user), attached=method is not None,
                        **context),
        kind=kind, transactional=True,
        dedupe_key=f"{kind}:{registration.uid}:{registration.sequence}",
        attachments=(calendar.attachment(registration, method),) if method else ()))


# --- listing --------------------------------------------------------------------------------

@dataclass(frozen=True)
class SlotFilter:
    start: datetime | None = None
    end: datetime | None = None
    territory: str = ""  # a département code, or a commune's INSEE code
    format: str = ""


def public_slots(filters: SlotFilter = SlotFilter(), sheet: Sheet | None = None,
                 limit: int = 500, campaign: VisitCampaign | None = None) -> list[VisitSlot]:
    """Slots taking registrations, of published sheets, soonest first."""
    query = select(VisitSlot).join(Sheet, Sheet.id == VisitSlot.sheet_id).where(
        VisitSlot.status.in_(TAKING), VisitSlot.starts_at > (filters.start or utcnow()),
        Sheet.state == "active", Sheet.approved_revision_id.is_not(None))
    if filters.end is not None:
        query = query.where(VisitSlot.starts_at < filters.end)
    if filters.territory:
        column = VisitSlot.commune_code if len(filters.territory) == 5 else VisitSlot.department
        query = query.where(column == filters.territory)
    if filters.format:
        query = query.where(VisitSlot.format == filters.format)
    if sheet is not None:
        query = query.where(VisitSlot.sheet_id == sheet.id)
    if campaign is not None:
        query = query.where(VisitSlot.campaign_id == campaign.id)
    return list(db.session.scalars(query.order_by(VisitSlot.starts_at, VisitSlot.id).limit(limit)))


def registration_of(slot: VisitSlot, user: Any) -> VisitRegistration | None:
    if not isinstance(user, User) or not user.is_authenticated:
        return None
    return db.session.scalar(select(VisitRegistration).where(
        VisitRegistration.slot_id == slot.id, VisitRegistration.user_id == user.id,
        VisitRegistration.status.in_(ACTIVE)))


def registrants_for(slot: VisitSlot, user: Any) -> list[VisitRegistration]:
    """The registrants table: the slot's host and moderators only; to anyone else the slot's
    registrants do not exist (404, not 403: nothing to learn)."""
    if not can(user, Capability.HOST_VISITS, slot.sheet):
        raise NotFound("ce créneau n'existe pas")
    return registrations(slot)


def filling_slots(now: datetime, percent: int) -> list[VisitSlot]:
    """Upcoming slots taking registrations, of published sheets, with at least `percent` % of
    their seats taken (the hosts' letter alerts), soonest first."""
    return list(db.session.scalars(select(VisitSlot).join(Sheet, Sheet.id == VisitSlot.sheet_id)
                                   .where(VisitSlot.status.in_(TAKING), VisitSlot.starts_at > now,
                                          VisitSlot.seats_taken * 100 >= VisitSlot.capacity * percent,
                                          Sheet.state == "active",
                                          Sheet.approved_revision_id.is_not(None))
                                   .order_by(VisitSlot.starts_at, VisitSlot.id)))


# --- after the visit: attendance and ratings -------------------------------------------------

COMMENT_MAX = 2000


def _has_started(slot: VisitSlot) -> None:
    if slot.starts_at > utcnow():
        raise Conflict("la visite n'a pas encore commencé")
    if slot.status == SlotStatus.CANCELLED:
        raise Conflict("cette visite a été annulée")


def mark_attendance(slot: VisitSlot, user: Any, present: set[int], strict: bool = False) -> None:
    """The host marks who came among the registered (ids of registrations); the others
    are marked absent. `strict` (the API): an id that is no registered person of this slot
    is refused rather than ignored."""
    if not can(user, Capability.HOST_VISITS, slot.sheet):
        raise NotFound("ce créneau n'existe pas")
    _has_started(slot)
    registered = registrations(slot, (RegistrationStatus.REGISTERED.value,))
    unknown = present - {r.id for r in registered}
    if strict and unknown:
        raise Invalid("« present » : pas des inscriptions de ce créneau : "
                      + ", ".join(map(str, sorted(unknown)[:20])), field="present")
    for registration in registered:
        registration.attended = registration.id in present


def my_registrations(user: User) -> list[VisitRegistration]:
    """The person's "passeport": every visit they booked (not the ones they left), soonest
    last."""
    return list(db.session.scalars(select(VisitRegistration).join(VisitSlot).where(
        VisitRegistration.user_id == user.id,
        VisitRegistration.status != RegistrationStatus.CANCELLED.value)
        .order_by(VisitSlot.starts_at.desc())))


def rate(slot: VisitSlot, user: User, rating: Any, comment: Any) -> VisitRegistration:
    """A registered visitor's 1-5 rating and comment, once the visit has begun (may be
    changed later); not for someone the host marked absent."""
    registration = db.session.scalar(select(VisitRegistration).where(
        VisitRegistration.slot_id == slot.id, VisitRegistration.user_id == user.id,
        VisitRegistration.status == RegistrationStatus.REGISTERED.value))
    if registration is None:
        raise NotFound("vous n'étiez pas inscrit·e à cette visite")
    _has_started(slot)
    if registration.attended is False:
        raise Conflict("l'accueil vous a noté·e absent·e à cette visite")
    if isinstance(rating, str) and rating.strip().isdigit():
        rating = int(rating)
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise Invalid("« rating » : une note de 1 à 5", field="rating")
    if not isinstance(comment, str) or len(comment) > COMMENT_MAX:
        raise Invalid(f"« comment » : un texte de {COMMENT_MAX} caractères au plus",
                      field="comment")
    registration.rating = rating
    registration.comment = comment.strip()
    registration.rated_at = utcnow()
    return registration


def mean_rating(slot: VisitSlot) -> float | None:
    value = db.session.scalar(select(func.avg(VisitRegistration.rating)).where(
        VisitRegistration.slot_id == slot.id, VisitRegistration.rating.is_not(None)))
    return round(float(value), 1) if value is not None else None


# --- campaigns ("parcours de visites") -------------------------------------------------------

def create_campaign(user: User, data: dict[str, Any]) -> VisitCampaign:
    from kb.text import slugify

    check(user, Capability.MODERATE)
    name = " ".join(str(data.get("name") or "").split())[:200]
    if not name:
        raise Invalid("donnez un nom au parcours", field="name")
    starts, ends = _time("starts_on", data.get("starts_on")), _time("ends_on", data.get("ends_on"))
    if ends <= starts:
        raise Invalid("la fin du parcours doit suivre son début", field="ends_on")
    cap = data.get("cap")
    if cap is not None:
        cap = _count("cap", cap)
    department = str(data.get("department") or "")
    if department and register().department(department) is None:
        raise Invalid("« department » : code de département inconnu", field="department")
    base = slugify(name, 100) or "parcours"
    slug, n = base, 1
    while db.session.scalar(select(VisitCampaign.id).where(VisitCampaign.slug == slug)):
        n += 1
        slug = f"{base}-{n}"
    campaign = VisitCampaign(slug=slug, name=name, starts_on=starts, ends_on=ends,
                             department=department, cap=cap, created_by_id=user.id,
                             created_at=utcnow())
    db.session.add(campaign)
    db.session.flush()
    return campaign


def campaign_or_404(slug: str) -> VisitCampaign:
    campaign = db.session.scalar(select(VisitCampaign).where(VisitCampaign.slug == slug))
    if campaign is None:
        raise NotFound("ce parcours n'existe pas")
    return campaign


def campaigns() -> list[VisitCampaign]:
    """Every campaign, the ones still running first (latest end first), then the past ones."""
    rows = list(db.session.scalars(select(VisitCampaign).order_by(
        VisitCampaign.ends_on.desc(), VisitCampaign.id.desc())))
    now = utcnow()
    return [c for c in rows if c.ends_on >= now] + [c for c in rows if c.ends_on < now]


MAX_INVITED = 2000  # addresses in one form: a campaign's invitees, not a mailing list


def set_invitations(campaign: VisitCampaign, user: User, structure_ids: Any,
                    emails: Any) -> None:
    """A moderator names the campaign's invited structures and professionals (accounts, by
    address): the lists given replace the former ones. An unknown structure or an address no
    account has is refused, all of them named, and nothing changes."""
    from kb.structures.models import Structure

    check(user, Capability.MODERATE)
    if not isinstance(structure_ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in structure_ids):
        raise Invalid("« structures » : une liste d'identifiants de structures",
                      field="structures")
    if not isinstance(emails, list) or not all(isinstance(e, str) for e in emails):
        raise Invalid("« emails » : une liste d'adresses", field="emails")
    addresses = sorted({e.strip().lower() for e in emails if e.strip()})
    if len(addresses) > MAX_INVITED or len(structure_ids) > MAX_INVITED:
        raise Invalid(f"{MAX_INVITED} invités au plus par liste", field="emails")
    wanted = set(structure_ids)
    known = set(db.session.scalars(select(Structure.id).where(Structure.id.in_(wanted)))
                ) if wanted else set()
    if wanted - known:
        raise Invalid("structure inconnue : " + ", ".join(map(str, sorted(wanted - known))),
                      field="structures")
    accounts = {u.email.lower(): u for u in db.session.scalars(select(User).where(
        func.lower(User.email).in_(addresses), User.deleted_at.is_(None)))} if addresses else {}
    unknown = [a for a in addresses if a not in accounts]
    if unknown:
        raise Invalid("aucun compte n'a ces adresses (la personne crée d'abord son compte) : "
                      + ", ".join(unknown[:20]) + (" …" if len(unknown) > 20 else ""),
                      field="emails")
    db.session.execute(CampaignStructure.__table__.delete().where(
        CampaignStructure.campaign_id == campaign.id))
    db.session.execute(CampaignInvitee.__table__.delete().where(
        CampaignInvitee.campaign_id == campaign.id))
    db.session.add_all([CampaignStructure(campaign_id=campaign.id, structure_id=i)
                        for i in sorted(wanted)])
    db.session.add_all([CampaignInvitee(campaign_id=campaign.id, user_id=u.id)
                        for u in {u.id: u for u in accounts.values()}.values()])
    db.session.flush()


def invitations(campaign: VisitCampaign) -> tuple[list[Any], list[User]]:
    """The invited structures and the accounts invited by address, by name."""
    from kb.structures.models import Structure

    structures = list(db.session.scalars(select(Structure).join(
        CampaignStructure, CampaignStructure.structure_id == Structure.id).where(
        CampaignStructure.campaign_id == campaign.id).order_by(Structure.name)))
    people = list(db.session.scalars(select(User).join(
        CampaignInvitee, CampaignInvitee.user_id == User.id).where(
        CampaignInvitee.campaign_id == campaign.id).order_by(User.email)))
    return structures, people


def invited_ids(campaign: VisitCampaign) -> set[int]:
    """Invited professionals: the accounts invited by address plus the active members of the
    invited structures (accounts neither blocked nor deleted), each once."""
    from kb.structures.models import Membership, MemberState

    direct = set(db.session.scalars(select(CampaignInvitee.user_id).where(
        CampaignInvitee.campaign_id == campaign.id)))
    members = set(db.session.scalars(select(Membership.user_id).join(
        CampaignStructure, CampaignStructure.structure_id == Membership.structure_id)
        .join(User, User.id == Membership.user_id).where(
        CampaignStructure.campaign_id == campaign.id,
        Membership.state == MemberState.ACTIVE.value,
        User.blocked.is_(False), User.deleted_at.is_(None))))
    return direct | members


LOCAL_SCALES = ("quartier", "commune", "intercommunalite")


def campaign_stats(campaign: VisitCampaign) -> dict[str, Any]:
    """The campaign report's own figures, computed live from the slots and the attendance
    the hosts marked: partners, actions visited, professionals invited / registered / who
    made at least one visit (and the invited among them), visits made, visits per
    professional, share by the action's scale, mean rating."""
    slots = list(db.session.scalars(select(VisitSlot).where(
        VisitSlot.campaign_id == campaign.id, VisitSlot.status != SlotStatus.CANCELLED.value)))
    ids = [slot.id for slot in slots]
    rows = list(db.session.scalars(select(VisitRegistration).where(
        VisitRegistration.slot_id.in_(ids), VisitRegistration.status.in_(ACTIVE)))) if ids else []
    made = [r for r in rows if r.attended]
    per_person: dict[int, int] = {}
    for r in made:
        per_person[r.user_id] = per_person.get(r.user_id, 0) + 1
    local = sum(1 for r in made if r.slot.sheet.scale in LOCAL_SCALES)
    ratings = [r.rating for r in rows if r.rating is not None]
    invited = invited_ids(campaign)
    return {
        "partners": len({slot.sheet_id for slot in slots}),
        "actions_visited": len({r.slot.sheet_id for r in made}),
        "professionals_invited": len(invited),
        "invited_visited": len(invited & set(per_person)),
        "professionals_registered": len({r.user_id for r in rows}),
        "professionals_visited": len(per_person),
        "visits_made": len(made),
        "visits_per_professional_mean": round(len(made) / len(per_person), 1) if per_person
        else 0,
        "visits_per_professional_max": max(per_person.values(), default=0),
        "share_local": round(local / len(made), 2) if made else 0,
        "share_departmental_or_wider": round(1 - local / len(made), 2) if made else 0,
        "mean_rating": round(sum(ratings) / len(ratings), 1) if ratings else None,
    }


# --- personal data ----------------------------------------------------------------------------

def forget_user(user: User) -> None:
    """An account is deleted: its seats go to the people waiting (who are told), and its
    registrations keep no phone, structure or comment (the visits made still count)."""
    active = list(db.session.scalars(select(VisitRegistration.slot_id).where(
        VisitRegistration.user_id == user.id, VisitRegistration.status.in_(ACTIVE))))
    for slot_id in active:
        unregister_user(slot_id, user)
    for registration in db.session.scalars(select(VisitRegistration).where(
            VisitRegistration.user_id == user.id)):
        registration.phone = registration.structure = registration.comment = ""


def personal_data(user: User) -> list[dict[str, Any]]:
    """The person's registrations, for "Télécharger mes données"."""
    from kb.timeutil import isoformat

    return [{"sheet": r.slot.sheet.slug, "starts_at": isoformat(r.slot.starts_at),
             "place": r.slot.place, "status": r.status, "phone": r.phone,
             "structure": r.structure, "registered_at": isoformat(r.registered_at),
             "attended": r.attended, "rating": r.rating, "comment": r.comment}
            for r in db.session.scalars(select(VisitRegistration).where(
                VisitRegistration.user_id == user.id).order_by(VisitRegistration.id))]


# --- the calendar feed ----------------------------------------------------------------------

def _feed_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(str(current_app.config["SECRET_KEY"]), salt=_FEED_SALT)


def feed_url(user: User) -> str:
    token = _feed_serializer().dumps([user.id, user.session_version or 0])
    return f"{current_app.config['KB_BASE_URL']}/visites/calendrier/{token}.ics"


def feed_for_token(token: str) -> bytes:
    """The person's visits; a token stops working when their sessions are ended."""
    try:
        user_id, version = _feed_serializer().loads(token)
    except (BadSignature, ValueError, TypeError):
        raise NotFound("ce calendrier n'existe pas") from None
    user = db.session.get(User, user_id) if isinstance(user_id, int) else None
    if user is None or user.deleted_at is not None or (user.session_version or 0) != version:
        raise NotFound("ce calendrier n'existe pas")
    rows = db.session.scalars(select(VisitRegistration).where(
        VisitRegistration.user_id == user.id).order_by(VisitRegistration.id))
    return calendar.feed(rows, "Mes visites")


# --- the decision and the reminders (kb visits decide) ----------------------------------------

WARN_BEFORE = timedelta(days=2)


def _warn_hosts(now: datetime) -> int:
    """Two days before the decision, the hosts of a slot under its minimum get "3 inscrits
    sur 5 minimum" with the page where one click lowers the minimum or cancels. Once each."""
    warned = 0
    for slot in db.session.scalars(select(VisitSlot).where(
            VisitSlot.status == SlotStatus.OPEN.value, VisitSlot.decide_by > now,
            VisitSlot.decide_by <= now + WARN_BEFORE,
            VisitSlot.seats_taken < VisitSlot.min_participants)):
        body = render_template("mail/visit_host_minimum.txt", slot=slot)
        for host in hosts_of(slot):
            row = mail.queue(mail.Mail(
                host.email, f"{slot.seats_taken} inscrit{'s' if slot.seats_taken > 1 else ''} "
                f"sur {slot.min_participants} minimum : {slot.sheet.title}", body,
                kind="visit.host_minimum",
                dedupe_key=_host_key("visit.host_minimum", slot, host)))
            warned += row is not None
    if warned:
        from kb.transaction import commit

        commit()
    return warned


@dataclass
class DecideReport:
    warned: int = 0  # hosts told their slot is under its minimum, two days before the decision
    confirmed: int = 0
    cancelled: int = 0
    reminded: int = 0
    done: int = 0


def decide(now: datetime | None = None) -> DecideReport:
    """Idempotent, hourly: at their decision date slots that reached their minimum are
    confirmed, the others cancelled (every registrant and the host told once); registrants
    get one reminder two days before; past confirmed slots are done. Commits per slot."""
    from kb.transaction import commit

    now = now or utcnow()
    report = DecideReport()
    report.warned = _warn_hosts(now)
    due = list(db.session.scalars(select(VisitSlot.id).where(
        VisitSlot.status == SlotStatus.OPEN.value, VisitSlot.decide_by <= now)
        .order_by(VisitSlot.id)))
    for slot_id in due:
        slot = _locked(slot_id)
        if slot.status != SlotStatus.OPEN or slot.decide_by > now:
            db.session.rollback()  # decided meanwhile by another run
            continue
        if slot.seats_taken >= slot.min_participants:
            slot.status = SlotStatus.CONFIRMED.value
            slot.decided_at = now
            report.confirmed += 1
        else:
            cancel_slot(slot, f"moins de {slot.min_participants} inscrits à la date de décision")
            report.cancelled += 1
        commit()
    remind = list(db.session.scalars(select(VisitRegistration).join(VisitSlot).where(
        VisitRegistration.status == RegistrationStatus.REGISTERED.value,
        VisitRegistration.reminded_at.is_(None), VisitSlot.status.in_(TAKING),
        VisitSlot.starts_at > now, VisitSlot.starts_at <= now + REMIND_BEFORE)))
    for registration in remind:
        registration.reminded_at = now
        _mail(registration, "visit.reminder", "Rappel de votre visite", None)
        report.reminded += 1
    if remind:
        commit()
    for slot in db.session.scalars(select(VisitSlot).where(
            VisitSlot.status == SlotStatus.CONFIRMED.value, VisitSlot.ends_at <= now)):
        slot.status = SlotStatus.DONE.value
        report.done += 1
    commit()
    return report
