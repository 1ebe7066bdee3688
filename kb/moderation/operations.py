"""Moderation writes: decisions on revisions, reports, hiding, accounts. Every action is written to
the audit log; people concerned are told by e-mail after the commit. Nothing commits here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import current_app, render_template
from sqlalchemy import select

from kb import mail
from kb.auth.models import SYSTEM_EMAIL, User
from kb.auth.permissions import Capability, can, check
from kb.auth.preferences import wants_contribution_mail
from kb.errors import Invalid
from kb.extensions import db
from kb.moderation.models import Action, AuditEntry, Report, ReportReason
from kb.moderation.standing import may_be_trusted, reporters_with_standing
from kb.sheets import operations as sheet_ops
from kb.sheets.lifecycle import set_state
from kb.sheets.models import Revision, RevisionStatus, Sheet, SheetState
from kb.timeutil import utcnow


class ModerationError(Invalid):
    """A refused action, with a French message for the user."""


def audit(actor: User | None, action: Action, *, sheet: Sheet | None = None,
          revision: Revision | None = None, target_user: User | None = None, reason: str = "",
          **details: Any) -> AuditEntry:
    entry = AuditEntry(
        actor_id=actor.id if actor else None, action=action.value,
        sheet_id=sheet.id if sheet else (revision.sheet_id if revision else None),
        revision_id=revision.id if revision else None,
        target_user_id=target_user.id if target_user else None,
        reason=reason.strip()[:2000], details=details, created_at=utcnow())
    db.session.add(entry)
    return entry


def _reachable(user: User) -> bool:
    return wants_contribution_mail(user)  # not blocked nor deleted, and did not opt out


def _render_mail(to: str, subject: str, template: str, **context: Any) -> mail.Mail:
    body = render_template(template, base_url=current_app.config["KB_BASE_URL"], **context)
    return mail.Mail(to=to, subject=subject, body=body)


# --- revisions ------------------------------------------------------------------------------

def approve(revision: Revision, moderator: User,
            choices: dict[str, str] | None = None) -> Revision:
    """Approve a proposal (merged onto the approved revision when stale, see
    kb.sheets.operations.approve_revision); returns the revision now published."""
    published = sheet_ops.approve_revision(revision, moderator, choices)
    details: dict[str, Any] = {}
    if published.id != revision.id:
        details["published"] = published.id
    if choices:
        details["choices"] = dict(choices)
    audit(moderator, Action.APPROVE, revision=revision, **details)
    _maybe_trust(revision.author)
    author = revision.author
    if _reachable(author) and author.id != moderator.id:
        done = "est publiée" if revision.status == RevisionStatus.APPROVED else "est intégrée"
        mail.queue(_render_mail(author.email, f"Votre contribution « {revision.title} » {done}",
                                "mail/decision.txt", revision=revision, approved=True))
    return published


def public_details(public: bool) -> dict[str, Any]:
    """Audit details of a reason the moderator chose to show in the public history."""
    return {"public_reason": True} if public else {}


def reject(revision: Revision, moderator: User, reason: str, *, notify: bool = True,
           public: bool = False) -> None:
    sheet_ops.reject_revision(revision, moderator, reason)
    audit(moderator, Action.REJECT, revision=revision, reason=reason, **public_details(public))
    author = revision.author
    if notify and _reachable(author) and author.id != moderator.id:
        mail.queue(_render_mail(author.email,
                                f"Votre contribution « {revision.title} » n'a pas été retenue",
                                "mail/decision.txt", revision=revision, approved=False))


def bulk_review(revision_ids: Iterable[int], decision: str, moderator: User,
                reason: str = "", public: bool = False) -> tuple[list[Revision], dict[int, str]]:
    """Approve or reject several revisions; returns those done and {id: error} for the others.
    A stale proposal whose fields overlap the approved revision is left for the review page,
    where the moderator chooses per field."""
    check(moderator, Capability.REVIEW)
    if decision not in ("approve", "reject"):
        raise ModerationError("action inconnue")
    if decision == "reject" and not reason.strip():
        raise ModerationError("un motif de refus est nécessaire")
    done: list[Revision] = []
    errors: dict[int, str] = {}
    # Oldest first, so that several edits of one sheet publish in order.
    for revision_id in sorted(set(revision_ids)):
        revision = db.session.get(Revision, revision_id)
        if revision is None:
            errors[revision_id] = "révision introuvable"
            continue
        try:
            if decision == "approve":
                approve(revision, moderator)
            else:
                reject(revision, moderator, reason, public=public)
        except ValueError as exc:
            errors[revision_id] = str(exc)
        else:
            done.append(revision)
    return done, errors


def _maybe_trust(author: User) -> None:
    """Grant trust when the author reaches KB_AUTO_APPROVE_AFTER approved revisions, unless a
    moderator withdrew it before (their decision wins over the counter)."""
    threshold = int(current_app.config.get("KB_AUTO_APPROVE_AFTER", 0))
    if threshold <= 0 or can(author, Capability.PUBLISH) or not may_be_trusted(author):
        return
    if sheet_ops.approved_count(author) < threshold:
        return
    revoked = db.session.scalar(select(AuditEntry.id).where(
        AuditEntry.target_user_id == author.id,
        AuditEntry.action == Action.TRUST_REVOKED.value).limit(1))
    if revoked is None:
        author.trusted = True
        audit(None, Action.TRUST_AUTO, target_user=author,
              reason=f"{threshold} contributions approuvées")


# --- reports --------------------------------------------------------------------------------

def report_sheet(sheet: Sheet, reason: str, comment: str, reporter: User | None,
                 reporter_key: str) -> Report:
    """Record a reader's report; spam reports from enough distinct reporters hide the sheet."""
    if reason not in {r.value for r in ReportReason}:
        raise ModerationError("motif de signalement inconnu ; motifs possibles : "
                              + ", ".join(r.value for r in ReportReason))
    comment = comment.strip()
    if len(comment) > 2000:
        raise ModerationError("le commentaire fait au plus 2000 caractères")
    if reason == ReportReason.OTHER and not comment:
        raise ModerationError("précisez le problème dans le commentaire")
    if not sheet.is_published:
        raise ModerationError("cette fiche ne peut pas être signalée")
    already = db.session.scalar(select(Report.id).where(
        Report.sheet_id == sheet.id, Report.reason == reason, Report.reporter_key == reporter_key,
        Report.closed_at.is_(None)).limit(1))
    if already is not None:
        raise ModerationError("vous avez déjà signalé cette fiche pour ce motif ; "
                              "les modérateurs vont l'examiner")
    report = Report(sheet_id=sheet.id, reason=reason, comment=comment,
                    reporter_id=reporter.id if reporter else None, reporter_key=reporter_key,
                    created_at=utcnow())
    db.session.add(report)
    db.session.flush()
    if reason == ReportReason.SPAM:
        _maybe_hide_for_spam(sheet)
    # An "outdated" report mails nobody at once: the sheet goes into its contributors' next
    # letter, section "À vérifier" (kb/letters), with the one-click confirmation.
    return report


def _maybe_hide_for_spam(sheet: Sheet) -> None:
    threshold = int(current_app.config.get("KB_SPAM_REPORTS_TO_HIDE", 3))
    # Only reporters with standing count: anonymous reports and fresh or unconfirmed accounts
    # alone leave the sheet up, in the moderators' reports queue (kb.moderation.standing).
    distinct = reporters_with_standing(r.reporter for r in db.session.scalars(select(Report).where(
        Report.sheet_id == sheet.id, Report.reason == ReportReason.SPAM.value,
        Report.closed_at.is_(None))))
    if distinct >= threshold and sheet.state == SheetState.ACTIVE:
        reason = f"{distinct} signalements de spam de lecteurs distincts"
        set_state(sheet, SheetState.HIDDEN, None, reason)
        audit(None, Action.HIDE_SPAM, sheet=sheet, reason=reason, reports=distinct)


def close_report(report: Report, moderator: User, resolution: str = "") -> None:
    check(moderator, Capability.MODERATE)
    if report.closed_at is not None:
        raise ModerationError("ce signalement a déjà été traité")
    report.closed_at = utcnow()
    report.closed_by_id = moderator.id
    report.resolution = resolution.strip()[:2000]
    audit(moderator, Action.REPORT_CLOSED, sheet=report.sheet, reason=resolution,
          report=report.id, report_reason=report.reason)


def _close_open_reports(sheet: Sheet, moderator: User, resolution: str,
                        reason: ReportReason | None = None) -> None:
    query = select(Report).where(Report.sheet_id == sheet.id, Report.closed_at.is_(None))
    if reason is not None:
        query = query.where(Report.reason == reason.value)
    for report in db.session.scalars(query):
        report.closed_at = utcnow()
        report.closed_by_id = moderator.id
        report.resolution = resolution


# --- sheet visibility -----------------------------------------------------------------------

def hide_sheet(sheet: Sheet, moderator: User, reason: str, public: bool = False) -> None:
    set_state(sheet, SheetState.HIDDEN, moderator, reason)
    audit(moderator, Action.HIDE, sheet=sheet, reason=reason, **public_details(public))


def restore_sheet(sheet: Sheet, moderator: User, reason: str = "", public: bool = False) -> None:
    """Put a hidden sheet back; its open spam reports are closed (else it would hide again)."""
    check(moderator, Capability.MODERATE)
    if sheet.state != SheetState.HIDDEN:
        raise ModerationError("cette fiche n'est pas masquée")
    set_state(sheet, SheetState.ACTIVE, moderator, reason)
    _close_open_reports(sheet, moderator, reason or "fiche rétablie", ReportReason.SPAM)
    audit(moderator, Action.RESTORE, sheet=sheet, reason=reason, **public_details(public))


# --- accounts -------------------------------------------------------------------------------

def _may_manage(moderator: User, user: User) -> None:
    check(moderator, Capability.MANAGE_USERS, user)  # staff accounts need more (permissions)
    if user.id == moderator.id:
        raise ModerationError("vous ne pouvez pas modifier votre propre compte ici")
    if user.email == SYSTEM_EMAIL:
        raise ModerationError("le compte d'import ne se modifie pas")


def block_user(user: User, moderator: User, reason: str) -> list[Revision]:
    """Block an account and reject all its pending work (logged one by one, no e-mail)."""
    _may_manage(moderator, user)
    if user.blocked:
        raise ModerationError("ce compte est déjà bloqué")
    if not reason.strip():
        raise ModerationError("un motif est nécessaire")
    user.blocked = True
    user.trusted = False
    user.end_sessions()
    audit(moderator, Action.BLOCK, target_user=user, reason=reason)
    pending = list(db.session.scalars(select(Revision).where(
        Revision.author_id == user.id, Revision.status == RevisionStatus.PENDING.value)
        .order_by(Revision.id)))
    for revision in pending:
        reject(revision, moderator, f"Compte bloqué : {reason.strip()}", notify=False)
    return pending


def unblock_user(user: User, moderator: User, reason: str = "") -> None:
    _may_manage(moderator, user)
    if not user.blocked:
        raise ModerationError("ce compte n'est pas bloqué")
    user.blocked = False
    audit(moderator, Action.UNBLOCK, target_user=user, reason=reason)


def set_trust(user: User, moderator: User, trusted: bool, reason: str = "") -> None:
    _may_manage(moderator, user)
    if trusted and not may_be_trusted(user):
        raise ModerationError("seul un compte actif à l'adresse confirmée peut être de confiance")
    if user.trusted == trusted:
        raise ModerationError("rien à changer")
    user.trusted = trusted
    audit(moderator, Action.TRUST_GRANTED if trusted else Action.TRUST_REVOKED,
          target_user=user, reason=reason)
