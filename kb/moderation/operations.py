"""Moderation writes: decisions on revisions, reports, hiding, accounts. Every action is written to
the audit log; people concerned are told by e-mail after the commit. Nothing commits here."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, render_template
from sqlalchemy import func, select

from kb import mail
from kb.auth.models import SYSTEM_EMAIL, User
from kb.auth.permissions import Capability, check
from kb.auth.preferences import wants_contribution_mail
from kb.errors import Invalid
from kb.extensions import db
from kb.moderation.models import Action, AuditEntry, Report, ReportReason
from kb.moderation.standing import (
    could_become_trusted,
    may_be_trusted,
    reporters_with_standing,
    trust_progress,
)
from kb.sheets import operations as sheet_ops
from kb.sheets.lifecycle import set_state
from kb.sheets.models import ACCEPTED, Revision, RevisionStatus, Sheet, SheetState
from kb.timeutil import utcnow
from kb.urls import base_url

PARIS = ZoneInfo("Europe/Paris")  # dates typed by moderators are French dates


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


def _render_mail(to: str, subject: str, template: str, kind: str, **context: Any) -> mail.Mail:
    body = render_template(template, base_url=base_url(), **context)
    return mail.Mail(to=to, subject=subject, body=body, kind=kind)


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
                                "mail/decision.txt", "moderation.decision", revision=revision,
                                approved=True))
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
                                "mail/decision.txt", "moderation.decision", revision=revision,
                                approved=False))


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
    """Grant trust when the author meets the rule (kb.moderation.standing.trust_progress:
    enough approvals on enough sheets, an account old enough, never blocked, trust never
    withdrawn by a moderator, whose decision wins over the counter)."""
    if not could_become_trusted(author):
        return
    progress = trust_progress(author)
    if progress.meets_rule:
        author.trusted = True
        audit(None, Action.TRUST_AUTO, target_user=author, reason=progress.summary)


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


@dataclass
class Undone:
    """What `revert_changes_since` did, sheet by sheet."""

    reverted: list[tuple[Sheet, list[str]]] = field(default_factory=list)  # fields restored
    hidden: list[Sheet] = field(default_factory=list)  # sheets the account created: hidden
    # Fields the account changed whose text someone else changed since: left for a person.
    to_check: list[tuple[Sheet, list[str]]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.reverted or self.hidden or self.to_check)


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def revert_changes_since(user: User, moderator: User, since: datetime, reason: str) -> Undone:
    """Undo what a blocked account published since `since` (MediaWiki's rollback, for all its
    changes at once). Per sheet and per field: a field whose published text is one the account
    wrote gets back the last published text that is not its; a field someone else changed
    after it is left as it is and listed (their edit is never overwritten unseen). Each sheet
    gets one new revision by the moderator, logged; sheets the account created since then are
    hidden (a moderator may restore them)."""
    _may_manage(moderator, user)
    check(moderator, Capability.PUBLISH)
    if not user.blocked:
        raise ModerationError("bloquez d'abord ce compte : ses modifications seront annulées "
                              "en même temps")
    if not reason.strip():
        raise ModerationError("un motif est nécessaire")
    mine = list(db.session.scalars(select(Revision).where(
        Revision.author_id == user.id, Revision.created_at >= since,
        Revision.status.in_(ACCEPTED)).order_by(Revision.id)))
    by_sheet: dict[int, list[Revision]] = {}
    for revision in mine:
        by_sheet.setdefault(revision.sheet_id, []).append(revision)
    undone = Undone()
    when = since.replace(tzinfo=UTC).astimezone(PARIS).strftime("%d/%m/%Y à %H h %M")
    for _, revisions in sorted(by_sheet.items()):
        sheet = revisions[0].sheet
        if sheet.state == SheetState.MERGED:
            continue  # its page redirects to the survivor, whose text a moderator chose
        starts = [sheet_ops.proposal_root(r) for r in revisions]
        if starts[0] is None:
            # Created by the account since then: nothing of anyone else's to go back to.
            if sheet.state == SheetState.ACTIVE:
                set_state(sheet, SheetState.HIDDEN, moderator, reason)
                audit(moderator, Action.HIDE, sheet=sheet, target_user=user, reason=reason)
                undone.hidden.append(sheet)
            continue
        published = sheet.approved_revision
        if published is None:
            continue
        # What the account wrote: each accepted revision against the text it started from.
        written: dict[str, set[str]] = {}
        for revision, start in zip(revisions, starts, strict=True):
            before = start.data if start is not None else {}
            for name, value in revision.data.items():
                if value != before.get(name):
                    written.setdefault(name, set()).add(_key(value))
        first_start = starts[0].data
        history = list(db.session.scalars(select(Revision).where(
            Revision.sheet_id == sheet.id, Revision.status == RevisionStatus.APPROVED.value)
            .order_by(func.coalesce(Revision.reviewed_at, Revision.created_at).desc(),
                      Revision.id.desc())))
        restore: dict[str, Any] = {}
        to_check: list[str] = []
        for name, values in written.items():
            current = published.data.get(name)
            if _key(current) not in values:
                if current != first_start.get(name):
                    to_check.append(name)  # someone else wrote this field since
                continue
            earlier = [r.data.get(name) for r in history if _key(r.data.get(name)) not in values]
            if earlier:
                restore[name] = earlier[0]  # the latest published text that is not theirs
            else:
                to_check.append(name)
        if restore:
            undo = sheet_ops.publish_fields(
                sheet, restore, moderator,
                f"Annulation des modifications de {user.name} depuis le {when}")
            db.session.flush()
            audit(moderator, Action.REVERT, sheet=sheet, revision=undo, target_user=user,
                  reason=reason, fields=sorted(restore), to_check=sorted(to_check),
                  since=since.isoformat())
            undone.reverted.append((sheet, sorted(restore)))
        if to_check:
            undone.to_check.append((sheet, sorted(to_check)))
    return undone


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
