"""Writes of the structures domain: create, join (invitation, request, ProConnect), leave,
verify, link sheets. Callers commit (kb/transaction.py); nothing here commits.

Who decides: a structure's administrators and the moderators accept requests and invite; a
member leaves in one click; only moderators create structures by hand, verify them and link
sheets they are not members for.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from data_inclusion.schema.v1 import ReseauPorteur
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from stdnum.exceptions import InvalidChecksum, ValidationError
from stdnum.fr import siret as stdnum_siret

from kb import mail
from kb.auth.models import User
from kb.auth.permissions import (
    ROLE_CAPABILITIES,
    Capability,
    can,
    check,
    register_admin_rule,
    register_member_rule,
    register_team_rule,
)
from kb.errors import Conflict, Invalid, NotFound, PermissionDenied
from kb.extensions import db
from kb.sheets.fields import ACTOR_TYPES, FIELDS_BY_NAME, clean_value
from kb.sheets.models import Sheet
from kb.structures.models import Invitation, JoinedVia, MemberRole, Membership, MemberState, Structure
from kb.territories.places import commune_key
from kb.territories.register import register
from kb.timeutil import utcnow
from kb.urls import base_url

log = logging.getLogger(__name__)

NETWORKS: dict[str, str] = {r.value: r.label for r in ReseauPorteur}
TYPES: dict[str, str] = dict(ACTOR_TYPES)
# Verified by ProConnect once this many active members signed in with the structure's SIRET.
PROCONNECT_VERIFIERS = 2
INVITATION_DAYS = 14
# Personal mailboxes anyone can open: sharing one says nothing about an employer, so a
# ProConnect sign-in with such an address never joins a structure at once (a request waits).
# Exact domains, and providers whose every country domain is a webmail ("hotmail.fr",
# "outlook.be", "yahoo.co.uk": `WEBMAIL_PROVIDERS` followed by a country or generic ending).
# docs/structures.md lists both.
WEBMAIL_DOMAINS: frozenset[str] = frozenset({
    # French access providers' and La Poste's mailboxes (laposte.fr is La Poste's staff: not here)
    "orange.fr", "wanadoo.fr", "free.fr", "sfr.fr", "neuf.fr", "cegetel.net", "club-internet.fr",
    "bbox.fr", "numericable.fr", "noos.fr", "aliceadsl.fr", "laposte.net", "voila.fr",
    "9online.fr", "mailo.com", "netcourrier.com",
    # International
    "gmail.com", "googlemail.com", "icloud.com", "me.com", "mac.com", "protonmail.com",
    "protonmail.ch", "proton.me", "pm.me", "tutanota.com", "tuta.io", "aol.com", "aol.fr",
    "mail.com", "gmx.com", "gmx.fr", "gmx.de", "gmx.net", "yandex.com", "yandex.ru",
    "zoho.com", "hey.com", "fastmail.com", "ymail.com",
})
WEBMAIL_PROVIDERS: frozenset[str] = frozenset({
    "hotmail", "outlook", "live", "msn", "windowslive", "yahoo", "gmail", "protonmail", "gmx",
})
_SALT = "kb-structure-invitation"


# --- validation -----------------------------------------------------------------------------

def clean_siret(value: Any) -> str | None:
    """14 digits with a valid check digit (python-stdnum), spaces and dots allowed; "" or None:
    no SIRET (an informal collective)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise Invalid("le SIRET doit être un texte", fields={"siret": "doit être un texte"})
    try:
        return str(stdnum_siret.validate(value))
    except InvalidChecksum as exc:
        message = "ce SIRET n'est pas valide (sa clé de contrôle ne correspond pas)"
        raise Invalid(message, fields={"siret": message}) from exc
    except ValidationError as exc:
        message = "un SIRET compte 14 chiffres"
        raise Invalid(message, fields={"siret": message}) from exc


def clean(data: Mapping[str, Any]) -> dict[str, Any]:
    """The structure's fields, normalised, or Invalid with a French message per field."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    name = " ".join(str(data.get("name") or "").split())
    if not name:
        errors["name"] = "le nom est obligatoire"
    elif len(name) > 200:
        errors["name"] = "le nom fait au plus 200 caractères"
    out["name"] = name
    try:
        out["siret"] = clean_siret(data.get("siret"))
    except Invalid as exc:
        errors.update(exc.extra["fields"])
    kind = str(data.get("type") or "")
    if kind and kind not in TYPES:
        errors["type"] = "type inconnu ; valeurs possibles : " + ", ".join(TYPES)
    out["type"] = kind
    networks = data.get("networks") or []
    if isinstance(networks, str):
        networks = [networks]
    if not isinstance(networks, list) or not all(isinstance(n, str) for n in networks):
        errors["networks"] = "doit être une liste de réseaux"
        networks = []
    unknown = [n for n in networks if n not in NETWORKS]
    if unknown:
        errors["networks"] = "réseau inconnu : " + ", ".join(unknown[:3])
    out["networks"] = list(dict.fromkeys(networks))
    # Its name as people write it ("Brest", "Saint-Denis (93)") or its INSEE code.
    given = " ".join(str(data.get("commune_code") or "").split())
    try:
        out["commune_code"] = commune_key(given) if given else ""
    except ValueError as exc:
        errors["commune_code"] = str(exc)
        out["commune_code"] = ""
    try:
        out["website"] = clean_value(FIELDS_BY_NAME["website"], data.get("website") or "")
    except ValueError as exc:
        errors["website"] = str(exc)
    if errors:
        raise Invalid("; ".join(f"{k}: {v}" for k, v in errors.items()), fields=errors)
    return out


def by_siret(siret: str) -> Structure | None:
    return db.session.scalar(select(Structure).where(Structure.siret == siret))


def get_structure(structure_id: int) -> Structure:
    structure = db.session.get(Structure, structure_id)
    if structure is None:
        raise NotFound("structure inconnue")
    return structure


def _duplicate(siret: str) -> Conflict:
    other = by_siret(siret)
    name = f" : « {other.name} »" if other else ""
    return Conflict(f"une structure porte déjà ce SIRET{name}", fields={"siret": "déjà pris"})


# --- creation -------------------------------------------------------------------------------

def _create(data: Mapping[str, Any]) -> Structure:
    values = clean(data)
    if values["siret"] and by_siret(values["siret"]) is not None:
        raise _duplicate(values["siret"])
    structure = Structure(**values, created_at=utcnow())
    try:
        with db.session.begin_nested():  # another request may take the SIRET meanwhile
            db.session.add(structure)
    except IntegrityError as exc:
        raise _duplicate(values["siret"] or "") from exc
    return structure


def create_structure(data: Mapping[str, Any], moderator: User) -> Structure:
    """A structure made by a moderator (form). Members join afterwards."""
    check(moderator, Capability.MODERATE)
    return _create(data)


def import_structure(data: Mapping[str, Any]) -> Structure:
    """A structure from an import (no account behind it): the same checks, SIRET unique."""
    return _create(data)


def update_structure(structure: Structure, data: Mapping[str, Any], user: User) -> None:
    """Its administrators and the moderators edit it: the same checks as at creation (a SIRET
    another structure carries is a Conflict with a French message, never a 500)."""
    check_manager(structure, user)
    values = clean({**_values(structure), **data})
    if values["siret"] and values["siret"] != structure.siret:
        if by_siret(values["siret"]) is not None:
            raise _duplicate(values["siret"])
        if structure.verified_how == "proconnect":
            structure.verified_at, structure.verified_how = None, ""  # verified for another SIRET
    try:
        with db.session.begin_nested():  # another request may take the SIRET meanwhile
            for key, value in values.items():
                setattr(structure, key, value)
    except IntegrityError as exc:
        raise _duplicate(values["siret"] or "") from exc


def form_values(structure: Structure) -> dict[str, Any]:
    """Its fields as the edit form shows them ("" for no SIRET, the commune by its name)."""
    commune = register().commune(structure.commune_code) if structure.commune_code else None
    return {**_values(structure), "siret": structure.siret or "",
            "commune_code": commune.label if commune else ""}


def _values(structure: Structure) -> dict[str, Any]:
    return {"name": structure.name, "siret": structure.siret, "type": structure.type,
            "networks": list(structure.networks or []), "commune_code": structure.commune_code,
            "website": structure.website}


def verify(structure: Structure, moderator: User) -> None:
    check(moderator, Capability.MODERATE)
    if structure.verified_at is None:
        structure.verified_at, structure.verified_how = utcnow(), "moderation"


# --- membership -----------------------------------------------------------------------------

def membership(structure: Structure, user: Any) -> Membership | None:
    if not isinstance(user, User) or not getattr(user, "is_authenticated", False):
        return None
    return db.session.scalar(select(Membership).where(
        Membership.structure_id == structure.id, Membership.user_id == user.id))


def administers(structure: Structure, user: Any) -> bool:
    row = membership(structure, user)
    return row is not None and row.administers


def may_manage(structure: Structure, user: Any) -> bool:
    """Its administrators and the moderators invite, accept requests and edit it (the
    capability table: MANAGE_STRUCTURE, granted on the structure to its administrators)."""
    return can(user, Capability.MANAGE_STRUCTURE, structure)


def check_manager(structure: Structure, user: Any) -> None:
    check(user, Capability.MANAGE_STRUCTURE, structure)


def _activate(row: Membership, via: JoinedVia, role: MemberRole | None = None) -> Membership:
    now = utcnow()
    row.state, row.joined_via, row.decided_at, row.left_at = (
        MemberState.ACTIVE.value, via.value, now, None)
    if role is not None:
        row.role = role.value
    return row


def _row(structure: Structure, user: User) -> Membership:
    row = membership(structure, user)
    if row is None:
        row = Membership(structure=structure, user=user, role=MemberRole.MEMBER.value,
                         state=MemberState.LEFT.value, created_at=utcnow())
        db.session.add(row)
    return row


def add_member(structure: Structure, user: User, moderator: User,
               role: MemberRole = MemberRole.MEMBER) -> Membership:
    """A moderator adds someone at once (e.g. the first administrator of a new structure)."""
    check(moderator, Capability.MODERATE)
    return _activate(_row(structure, user), JoinedVia.MODERATOR, role)


def request_to_join(structure: Structure, user: User) -> Membership:
    """The person asks; an administrator or a moderator decides (`decide`)."""
    check(user, Capability.CONTRIBUTE)
    row = _row(structure, user)
    if row.is_active:
        raise Conflict("vous êtes déjà membre de cette structure")
    if row.state != MemberState.REQUESTED:
        row.state, row.joined_via, row.created_at = (
            MemberState.REQUESTED.value, JoinedVia.REQUEST.value, utcnow())
        row.decided_at = None
        notify_request(row)
    return row


def deciders(structure: Structure) -> list[User]:
    """Who is told of a request to join: its active administrators; when it has none, the
    moderators (a request must reach someone who can accept it)."""
    admins = [m.user for m in structure.active_members()
              if m.administers and m.user.is_active]
    if admins:
        return admins
    roles = [role for role, granted in ROLE_CAPABILITIES.items() if Capability.MODERATE in granted]
    return [u for u in db.session.scalars(select(User).where(User.role.in_(roles)).order_by(User.id))
            if can(u, Capability.MODERATE)]


def notify_request(row: Membership) -> None:
    """One mail per decider, through the outbox, with the link to the page where they accept.
    Not transactional: not the recipient's own action (preferences and bounces hold). Keyed on
    the request, so asking again while it waits mails nobody twice."""
    db.session.flush()  # the row's id keys the mails
    structure = row.structure
    url = f"{base_url()}/structures/{structure.id}-{structure.slug}#demandes"
    stamp = row.created_at.strftime("%Y%m%d%H%M%S") if row.created_at else ""
    for person in deciders(structure):
        message = mail.render(
            person.email, f"Demande pour rejoindre « {structure.name} » — Fiches initiatives",
            "mail/structures/request", structure=structure, asker=row.user, decider=person,
            proconnect=row.joined_via == JoinedVia.PROCONNECT.value, url=url)
        mail.queue(replace(message, kind="structure.request",
                           dedupe_key=f"structure.request:{row.id}:{stamp}:{person.id}"))


def pending_requests(structure: Structure) -> list[Membership]:
    return [m for m in structure.members if m.state == MemberState.REQUESTED]


def decide(row: Membership, decider: User, accept: bool) -> None:
    check_manager(row.structure, decider)
    if row.state != MemberState.REQUESTED:
        raise Conflict("cette demande a déjà été traitée")
    if accept:
        _activate(row, JoinedVia(row.joined_via))  # "demande", or "proconnect" (kept: it counts)
        maybe_verify_by_proconnect(row.structure)
    else:
        row.state, row.decided_at = MemberState.LEFT.value, utcnow()


def leave(structure: Structure, user: User) -> None:
    """One click. The person drops out of its sheets' teams; the sheets keep everyone else."""
    row = membership(structure, user)
    if row is None or row.state == MemberState.LEFT:
        raise Conflict("vous n'êtes pas membre de cette structure")
    row.state, row.left_at = MemberState.LEFT.value, utcnow()


def set_shown(structure: Structure, user: User, shown: bool) -> None:
    row = membership(structure, user)
    if row is None or not row.is_active:
        raise PermissionDenied("réservé aux membres de la structure")
    row.shown = shown


# --- invitations (signed, single-use links mailed through the outbox) -----------------------

def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def _hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def invite(structure: Structure, inviter: User, email: str) -> str:
    """Mail a signed link to `email`; returns the link. The invited person opens it signed in
    with that address and becomes a member."""
    check_manager(structure, inviter)
    address = " ".join(str(email or "").split()).lower()
    if "@" not in address or len(address) > 254:
        raise Invalid("adresse électronique invalide", fields={"email": "adresse invalide"})
    nonce = secrets.token_urlsafe(24)
    now = utcnow()
    db.session.add(Invitation(structure=structure, email=address, nonce_hash=_hash(nonce),
                              invited_by_id=inviter.id, created_at=now,
                              expires_at=now + timedelta(days=INVITATION_DAYS)))
    url = f"{base_url()}/structures/invitation/{_serializer().dumps(nonce)}"
    message = mail.render(address, f"Invitation à rejoindre « {structure.name} » — Fiches initiatives",
                          "mail/structures/invitation", structure=structure, inviter=inviter,
                          url=url, days=INVITATION_DAYS)
    # The answer to someone's action, with a link to use now: sent at once.
    mail.queue(replace(message, kind="structure.invitation", transactional=True))
    return url


def load_invitation(token: str) -> Invitation:
    try:
        nonce = _serializer().loads(token, max_age=INVITATION_DAYS * 86400)
    except SignatureExpired as exc:
        raise Conflict("cette invitation a expiré") from exc
    except BadSignature as exc:
        raise NotFound("cette invitation n'est pas valide") from exc
    row = db.session.scalar(select(Invitation).where(Invitation.nonce_hash == _hash(str(nonce))))
    if row is None:
        raise NotFound("cette invitation n'est pas valide")
    if row.used_at is not None:
        raise Conflict("cette invitation a déjà servi")
    if row.expires_at <= utcnow():
        raise Conflict("cette invitation a expiré")
    return row


def accept_invitation(token: str, user: User) -> Membership:
    """A forwarded link does not let someone else in: the account's address must be the one
    invited."""
    invitation = load_invitation(token)
    if not user.is_active or user.email.lower() != invitation.email:
        raise PermissionDenied(f"cette invitation est adressée à {invitation.email} : "
                               "connectez-vous avec ce compte")
    invitation.used_at = utcnow()
    row = _row(invitation.structure, user)
    if row.is_active:
        return row
    return _activate(row, JoinedVia.INVITATION)


# --- ProConnect (the OIDC sign-in calls this; kb.auth.signals.oidc_signed_in at merge) -------

def _domain(email: str) -> str:
    return email.rsplit("@", 1)[-1].lower().rstrip(".")


def is_webmail(domain: str) -> bool:
    """Whether `domain` is a personal mailbox anyone can open (WEBMAIL_DOMAINS, or one of
    WEBMAIL_PROVIDERS followed by a country or generic ending: "hotmail.fr", "yahoo.co.uk")."""
    domain = domain.lower().rstrip(".")
    if domain in WEBMAIL_DOMAINS:
        return True
    labels = domain.split(".")
    return (labels[0] in WEBMAIL_PROVIDERS and 2 <= len(labels) <= 3
            and all(0 < len(label) <= 3 for label in labels[1:]))


def maybe_verify_by_proconnect(structure: Structure) -> None:
    """Two active members who signed in through ProConnect with its SIRET verify it."""
    if structure.verified_at is not None or not structure.siret:
        return
    proven = [m for m in structure.members if m.is_active and m.proconnect_at is not None]
    if len(proven) >= PROCONNECT_VERIFIERS:
        structure.verified_at, structure.verified_how = utcnow(), "proconnect"


def on_oidc_signed_in(user: User, claims: Mapping[str, Any]) -> Membership | None:
    """After a ProConnect sign-in: the SIRET the provider vouches for. A new SIRET creates its
    structure (the person becomes its administrator); a known one is joined at once when the
    address's domain is one its members already use, otherwise a request waits for its
    administrators; a webmail address (`is_webmail`) always asks: two strangers sharing
    gmail.com are no colleagues. No SIRET, or an invalid one: nothing (logged)."""
    if not user.is_active:
        return None
    try:
        siret = clean_siret(claims.get("siret"))
    except Invalid:
        log.warning("ProConnect : SIRET invalide ignoré pour le compte %s", user.id)
        return None
    if siret is None:
        return None
    now = utcnow()
    structure = by_siret(siret)
    if structure is None:
        name = str(claims.get("organization_name") or claims.get("organizational_unit")
                   or f"Structure {siret}")[:200]
        structure = _create({"name": name, "siret": siret})
        row = _activate(_row(structure, user), JoinedVia.PROCONNECT, MemberRole.ADMIN)
        row.proconnect_at = now
        return row
    row = _row(structure, user)
    row.proconnect_at = now
    if row.is_active:
        maybe_verify_by_proconnect(structure)
        return row
    domains = {_domain(m.user.email) for m in structure.active_members()
               if m.user.is_active and m.user.id != user.id}
    domain = _domain(user.email)
    if domain in domains and not is_webmail(domain):
        _activate(row, JoinedVia.PROCONNECT)
        maybe_verify_by_proconnect(structure)
    elif row.state != MemberState.REQUESTED:
        row.state, row.joined_via, row.created_at, row.decided_at = (
            MemberState.REQUESTED.value, JoinedVia.PROCONNECT.value, now, None)
        notify_request(row)
    return row


# --- trust: members of a verified structure publish on its sheets ---------------------------

def is_verified_member(user: User, structure_id: int) -> bool:
    """Whether `user` is an active member of the verified structure `structure_id` (the
    capability table asks this through the rule registered below)."""
    return db.session.scalar(
        select(Membership.id).join(Structure, Structure.id == Membership.structure_id).where(
            Membership.structure_id == structure_id, Membership.user_id == user.id,
            Membership.state == MemberState.ACTIVE.value,
            Structure.verified_at.is_not(None)).limit(1)) is not None


def is_member(user: User, structure_id: int) -> bool:
    """Whether `user` is an active member of the structure, verified or not (the capability
    table's TEAM_ON_OBJECT: members confirm its sheets fresh from their letter)."""
    return db.session.scalar(select(Membership.id).where(
        Membership.structure_id == structure_id, Membership.user_id == user.id,
        Membership.state == MemberState.ACTIVE.value).limit(1)) is not None


def _administers_rule(user: User, obj: Any) -> bool:
    return isinstance(obj, Structure) and administers(obj, user)


def init_rules() -> None:
    register_member_rule(is_verified_member)
    register_admin_rule(_administers_rule)
    register_team_rule(is_member)


# --- sheets ---------------------------------------------------------------------------------

def link_sheet(sheet: Sheet, structure: Structure | None, user: User) -> None:
    """Name (or clear, with None) the structure that carries a sheet (`may_link`)."""
    if not may_link(sheet, structure, user):
        raise PermissionDenied("réservé aux modérateurs, aux administrateurs de la structure et "
                               "à ses membres pour les fiches auxquelles ils contribuent")
    sheet.structure_id = structure.id if structure is not None else None


def may_link(sheet: Sheet, structure: Structure | None, user: Any) -> bool:
    """Moderators link and unlink any sheet. A structure's own people link only a sheet that
    carries no structure yet and whose actor name is the structure's (one of its likely
    matches: nobody claims someone else's sheet): its administrators any of them, its other
    active members those they contribute to. Unlinking: the administrators of the current
    structure, or a member who contributes to the sheet."""
    if can(user, Capability.MODERATE):
        return True
    if not isinstance(user, User) or not user.is_active:
        return False
    target = structure or (db.session.get(Structure, sheet.structure_id)
                           if sheet.structure_id else None)
    row = membership(target, user) if target is not None else None
    if row is None or not row.is_active:
        return False
    if structure is not None and not _matches(sheet, structure):
        return False
    return row.administers or sheet.is_owned_by(user)


def _matches(sheet: Sheet, structure: Structure) -> bool:
    if sheet.structure_id is not None or not sheet.is_published:
        return False
    actor = str((sheet.approved_revision.data if sheet.approved_revision else {})
                .get("actor_name", ""))
    return _name_key(actor) == _name_key(structure.name) and _same_place(sheet, structure)


def _same_place(sheet: Sheet, structure: Structure) -> bool:
    return (not structure.commune_code or not sheet.commune_code
            or structure.commune_code == sheet.commune_code)


def sheets_of(structure: Structure) -> list[Sheet]:
    from kb.sheets.models import published_sheets

    return list(db.session.scalars(published_sheets().where(
        Sheet.structure_id == structure.id).order_by(Sheet.title)))


def likely_matches(limit: int = 200, structure: Structure | None = None
                   ) -> list[tuple[Sheet, Structure]]:
    """Published sheets without a structure whose actor name matches a structure's name (case,
    accents and spacing aside) and, when both are known, whose commune is the structure's: the
    moderators' list of sheets to link (or one structure's, on its page). Two queries whatever
    the number of sheets: the actor name is read with the sheet, not one revision at a time."""
    from kb.sheets.models import Revision, published_sheets

    structures = [structure] if structure is not None else list(db.session.scalars(select(Structure)))
    by_name: dict[str, list[Structure]] = {}
    for s in structures:
        by_name.setdefault(_name_key(s.name), []).append(s)
    if not by_name:
        return []
    rows = db.session.execute(
        published_sheets().add_columns(Revision.data["actor_name"].as_string())
        .join(Revision, Revision.id == Sheet.approved_revision_id)
        .where(Sheet.structure_id.is_(None)).order_by(Sheet.id))
    found: list[tuple[Sheet, Structure]] = []
    for sheet, actor in rows:
        for s in by_name.get(_name_key(actor or ""), []):
            if _same_place(sheet, s):
                found.append((sheet, s))
        if len(found) >= limit:
            break
    return found


def page_matches(structure: Structure, user: Any) -> list[tuple[Sheet, bool]]:
    """The structure's likely matches for its page, each with whether `user` may link it
    (`may_link`): one query more than `likely_matches`, for the sheets the person wrote."""
    from kb.sheets.models import ACCEPTED, Revision

    if not isinstance(user, User) or not user.is_active:
        return []
    row = membership(structure, user)
    member = row is not None and row.is_active
    if not member and not can(user, Capability.MODERATE):
        return []
    sheets = [sheet for sheet, _ in likely_matches(structure=structure)]
    if not sheets or can(user, Capability.MODERATE) or (row is not None and row.administers):
        return [(sheet, True) for sheet in sheets]
    mine = set(db.session.scalars(select(Revision.sheet_id).distinct().where(
        Revision.author_id == user.id, Revision.status.in_(ACCEPTED),
        Revision.sheet_id.in_([s.id for s in sheets]))))
    return [(sheet, sheet.id in mine) for sheet in sheets]


def _name_key(name: str) -> str:
    from slugify import slugify

    return slugify(name or "")


def members_public(structure: Structure) -> list[User]:
    """Members whose name the page shows: active, the account usable, and shown by choice."""
    return [m.user for m in structure.active_members()
            if m.shown and m.user.is_active and not m.user.is_deleted]


def structures_of(user: User) -> Iterable[Membership]:
    return db.session.scalars(select(Membership).where(
        Membership.user_id == user.id, Membership.state != MemberState.LEFT.value))
