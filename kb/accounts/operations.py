""""Mon compte" and the admins' accounts page: name, notification settings, API tokens, roles,
personal data export and account deletion. Nothing commits here.

Deleting an account erases what identifies its owner (name, e-mail address, password, tokens,
links and digests sent) and keeps the contributions, which then read "ancien contributeur".
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from kb.auth.models import SYSTEM_EMAIL, AccountToken, ApiToken, Identity, Role, User
from kb.auth.operations import AccountError, create_token
from kb.auth.permissions import (
    ROLE_CAPABILITIES,
    STAFF,
    Capability,
    can,
    check,
    role_capabilities,
)
from kb.auth.preferences import opt_out_of_everything, set_letter_period, set_letter_section
from kb.extensions import db
from kb.follows.models import Follow, FollowDigest, FollowSettings
from kb.freshness.models import ConfirmToken, DigestLog
from kb.letters.models import Letter
from kb.mail import outbox as mail_outbox
from kb.moderation import operations as moderation
from kb.moderation.models import Action, AuditEntry, Report
from kb.moderation.standing import may_be_trusted
from kb.questions.models import Question
from kb.sheets.models import Revision, RevisionStatus
from kb.sheets.operations import system_user
from kb.timeutil import isoformat, utcnow
from kb.visits import operations as visits

TOKEN_EXPIRIES = (30, 90, 180, 365)  # days offered in "Mon compte"
DELETED_DOMAIN = "supprime.invalid"  # RFC 2606: never delivered


def rename(user: User, display_name: str) -> None:
    name = " ".join(display_name.split())
    if not name:
        raise AccountError("indiquez le nom à afficher")
    if len(name) > 120:
        raise AccountError("le nom fait au plus 120 caractères")
    user.display_name = name


def set_notifications(user: User, *, contributions: bool, period: str, weekday: int | None,
                      sections: dict[str, bool], nothing: bool = False) -> None:
    """The letter's period and sections ("Mon compte"); `nothing`: every optional mail off,
    whatever the rest says."""
    if nothing:
        opt_out_of_everything(user)
        return
    try:
        set_letter_period(user, period, weekday)
        for key, wanted in sections.items():
            set_letter_section(user, key, wanted)
    except ValueError as exc:
        raise AccountError(str(exc)) from exc
    user.notify_contributions = contributions


def new_api_token(user: User, name: str, days: int | None) -> str:
    """A named token expiring in `days` (None: never, for admins' command only)."""
    if not " ".join(name.split()):
        raise AccountError("donnez un nom au jeton (l'outil ou le site qui l'utilisera)")
    expires = utcnow() + timedelta(days=days) if days else None
    return create_token(user, name, expires)


# --- admins ---------------------------------------------------------------------------------

def _require_admin(actor: User | None) -> None:
    # None: the `kb` command, run by whoever administers the server.
    if actor is not None:
        check(actor, Capability.ADMINISTER)


def _other_admins(user: User) -> int:
    """Other active accounts whose role may administer (the capability table says which)."""
    roles = [r for r, granted in ROLE_CAPABILITIES.items() if Capability.ADMINISTER in granted]
    return db.session.scalar(select(func.count(User.id)).where(
        User.role.in_(roles), User.id != user.id, User.blocked.is_(False),
        User.deleted_at.is_(None), User.email != SYSTEM_EMAIL)) or 0


def set_role(user: User, role: str, actor: User | None, reason: str = "") -> None:
    _require_admin(actor)
    if role not in ROLE_CAPABILITIES:
        raise AccountError(f"rôle inconnu « {role} » ({', '.join(ROLE_CAPABILITIES)})")
    if user.email == SYSTEM_EMAIL or user.is_deleted:
        raise AccountError("ce compte ne peut pas changer de rôle")
    before = user.role
    if before == role:
        raise AccountError("ce compte a déjà ce rôle")
    if ROLE_CAPABILITIES[role] & STAFF and not may_be_trusted(user):
        raise AccountError("seul un compte actif à l'adresse confirmée peut modérer")
    if Capability.ADMINISTER in role_capabilities(user) and not _other_admins(user):
        raise AccountError("c'est le dernier administrateur : nommez-en un autre d'abord")
    user.role = role
    moderation.audit(actor, Action.ROLE_CHANGED, target_user=user, reason=reason,
                     before=before, after=role)


def block(user: User, actor: User | None, reason: str) -> list[Revision]:
    """Block from the command line (actor None) or the accounts page."""
    return moderation.block_user(user, actor or system_user(), reason)


# --- leaving --------------------------------------------------------------------------------

def delete_account(user: User, actor: User) -> None:
    """Erase the personal data of `user` (by themselves, or by an admin); contributions stay,
    shown as "ancien contributeur". Pending proposals are withdrawn (refused, no mail)."""
    if actor.id != user.id:
        _require_admin(actor)
    if user.email == SYSTEM_EMAIL:
        raise AccountError("le compte d'import ne se supprime pas")
    if user.is_deleted:
        raise AccountError("ce compte est déjà supprimé")
    if Capability.ADMINISTER in role_capabilities(user) and not _other_admins(user):
        raise AccountError("c'est le dernier administrateur : nommez-en un autre d'abord")
    reviewer = actor if actor.id != user.id and can(actor, Capability.REVIEW) else system_user()
    pending = db.session.scalars(select(Revision).where(
        Revision.author_id == user.id, Revision.status == RevisionStatus.PENDING.value)
        .order_by(Revision.id))
    for revision in pending:
        moderation.reject(revision, reviewer, "Compte supprimé par son titulaire"
                          if actor.id == user.id else "Compte supprimé", notify=False)
    # Identities too: ProConnect no longer signs in to the erased account (a new one is made).
    for model in (ApiToken, AccountToken, ConfirmToken, DigestLog, Letter, Follow,
                  FollowSettings, FollowDigest, Identity):
        db.session.execute(delete(model).where(model.user_id == user.id))
    # Questions stay with their sheet (and their answers), no longer linked to anyone.
    db.session.execute(update(Question).where(Question.asker_id == user.id).values(asker_id=None))
    # Seats booked go to the people waiting; the host keeps no phone or structure of theirs.
    visits.forget_user(user)
    mail_outbox.forget_address(user.email)
    user.email = f"ancien-contributeur-{user.id}@{DELETED_DOMAIN}"
    user.display_name = ""
    user.password_hash = None
    user.email_confirmed_at = None
    user.deleted_at = utcnow()
    user.role = Role.CONTRIBUTOR.value
    user.trusted = False
    user.commune_code = ""
    opt_out_of_everything(user)
    user.end_sessions()
    db.session.expire(user, ["tokens"])
    moderation.audit(None if actor.id == user.id else actor, Action.ACCOUNT_DELETED,
                     target_user=user)


def _dt(value: datetime | None) -> str | None:
    return isoformat(value)


def personal_data(user: User) -> dict[str, Any]:
    """Everything the base holds about this account, as JSON ("Télécharger mes données")."""
    revisions = db.session.scalars(select(Revision).where(Revision.author_id == user.id)
                                   .order_by(Revision.id))
    reports = db.session.scalars(select(Report).where(Report.reporter_id == user.id)
                                 .order_by(Report.id))
    audit = db.session.scalars(select(AuditEntry).where(
        (AuditEntry.target_user_id == user.id) | (AuditEntry.actor_id == user.id))
        .order_by(AuditEntry.id))
    return {
        "format": "kb-personal-data",
        "version": 1,
        "exported_at": _dt(utcnow()),
        "account": {
            "email": user.email, "display_name": user.display_name, "role": user.role,
            "trusted": user.trusted, "blocked": user.blocked,
            "created_at": _dt(user.created_at),
            "email_confirmed_at": _dt(user.email_confirmed_at),
            "notifications": {
                "contributions": user.notify_contributions,
                "letter_period": user.letter_period,
                "letter_weekday": user.letter_weekday,
                "letter_sections_off": user.letter_sections_off,
            },
            "commune_code": user.commune_code or None,
        },
        "api_tokens": [{"name": t.name, "created_at": _dt(t.created_at),
                        "last_used_at": _dt(t.last_used_at), "expires_at": _dt(t.expires_at)}
                       for t in user.tokens],
        "identities": [{"issuer": i.issuer, "subject": i.subject, "email": i.email,
                        "siret": i.siret, "created_at": _dt(i.created_at),
                        "last_login_at": _dt(i.last_login_at)}
                       for i in db.session.scalars(select(Identity).where(
                           Identity.user_id == user.id).order_by(Identity.id))],
        "revisions": [{"sheet": r.sheet.slug, "revision": r.id, "created_at": _dt(r.created_at),
                       "status": r.status, "comment": r.comment,
                       "review_reason": r.review_reason, "data": r.data} for r in revisions],
        "reports": [{"sheet": r.sheet.slug, "reason": r.reason, "comment": r.comment,
                     "created_at": _dt(r.created_at), "closed_at": _dt(r.closed_at)}
                    for r in reports],
        "questions": [{"sheet": q.sheet.slug, "question": q.question, "purpose": q.purpose,
                       "asked_at": _dt(q.created_at), "status": q.status, "answer": q.answer,
                       "answered_at": _dt(q.answered_at), "publication": q.publication,
                       "publication_consent": q.asker_consents}
                      for q in db.session.scalars(select(Question).where(
                          Question.asker_id == user.id).order_by(Question.id))],
        "follows": [{"label": f.label, "params": f.params, "created_at": _dt(f.created_at)}
                    for f in db.session.scalars(select(Follow).where(Follow.user_id == user.id)
                                                .order_by(Follow.id))],
        "visits": visits.personal_data(user),
        "log": [{"created_at": _dt(e.created_at), "action": e.action, "label": e.label,
                 "sheet": e.sheet.slug if e.sheet else None,
                 "by_you": e.actor_id == user.id, "reason": e.reason} for e in audit],
    }
