"""Freshness: which sheets are due, digest reminders with one-click confirmation links,
confirmations, review intervals and archiving. Nothing is ever deleted here."""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app, render_template
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select

from kb import mail
from kb.auth.models import User
from kb.auth.permissions import Capability, check
from kb.auth.preferences import reminder_period
from kb.errors import LinkError
from kb.extensions import db
from kb.freshness.letters import (  # noqa: F401  (the letters engine's names: docs/freshness.md)
    ARCHIVE,
    CONFIRM,
    RELAUNCH,
    FreshnessItem,
    letter_items_for_moderator,
    letter_items_for_owner,
    load_action,
    note_reminded,
    people_to_ask,
    relaunch,
)
from kb.freshness.models import ConfirmToken, DigestLog
from kb.freshness.signs import CONFIRMATION, note_kind
from kb.moderation.models import Action, Report, ReportReason
from kb.moderation.operations import ModerationError, audit, close_report, public_details
from kb.sheets.lifecycle import set_state
from kb.sheets.models import REVIEW_INTERVALS, Sheet, SheetState, published_sheets
from kb.structures.team import teams
from kb.timeutil import utcnow
from kb.transaction import commit, mark_changed
from kb.urls import base_url

log = logging.getLogger(__name__)
DAYS_PER_MONTH = 30.44  # the same month length as Sheet.review_due_at
_SALT = "kb-freshness-confirm"


# --- what is due ----------------------------------------------------------------------------

def due_sheets(now: datetime | None = None) -> list[Sheet]:
    """Published sheets past their review date, the longest overdue first."""
    now = now or utcnow()
    # SQL narrows to sheets not reviewed within the shortest interval; the exact date is the
    # model's property (interval in months), so the last step is in Python.
    horizon = now - timedelta(days=min(REVIEW_INTERVALS) * DAYS_PER_MONTH)
    candidates = db.session.scalars(
        published_sheets().where(Sheet.last_reviewed_at <= horizon).order_by(Sheet.id))
    return sorted((s for s in candidates if s.review_due_at <= now),
                  key=lambda s: (s.review_due_at, s.id))


def grace_period() -> timedelta:
    return timedelta(days=current_app.config["KB_ARCHIVE_GRACE_MONTHS"] * DAYS_PER_MONTH)


def archive_candidates(now: datetime | None = None, due: list[Sheet] | None = None
                       ) -> list[Sheet]:
    """Due sheets left unreviewed past the grace period: moderators decide whether to archive."""
    now = now or utcnow()
    due = due_sheets(now) if due is None else due
    return [s for s in due if s.review_due_at + grace_period() <= now]


def stale_sheets(now: datetime | None = None, due: list[Sheet] | None = None) -> list[Sheet]:
    """Due sheets nobody can be asked about: no contributor nor member of its structure who can
    be mailed (the letters' rule, kb.freshness.letters.people_to_ask): the moderators' "à
    reprendre" queue."""
    due = due_sheets(now) if due is None else due
    people = people_to_ask(s.id for s in due)  # reachable contributors and structure members
    return [s for s in due if not people.get(s.id)]


def review_age_buckets(now: datetime | None = None) -> list[tuple[str, int]]:
    """Published sheets by months since their last review, for the dashboard chart."""
    now = now or utcnow()
    bounds = ((3, "moins de 3 mois"), (6, "3 à 6 mois"), (12, "6 à 12 mois"),
              (18, "12 à 18 mois"), (24, "18 à 24 mois"))
    counts = dict.fromkeys([label for _, label in bounds] + ["plus de 24 mois"], 0)
    for (reviewed,) in db.session.execute(
            published_sheets().with_only_columns(Sheet.last_reviewed_at)):
        months = (now - reviewed).days / DAYS_PER_MONTH
        label = next((lab for limit, lab in bounds if months < limit), "plus de 24 mois")
        counts[label] += 1
    return list(counts.items())


# --- confirmation links ---------------------------------------------------------------------

def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def token_lifetime() -> timedelta:
    return timedelta(days=current_app.config["KB_CONFIRM_TOKEN_DAYS"])


def issue_token(sheet: Sheet, user: User, now: datetime | None = None) -> str:
    """A signed, expiring, single-use "toujours à jour" token for `user` about `sheet`."""
    now = now or utcnow()
    nonce = secrets.token_urlsafe(24)
    db.session.add(ConfirmToken(nonce=nonce, sheet_id=sheet.id, user_id=user.id,
                                created_at=now, expires_at=now + token_lifetime()))
    return _serializer().dumps(nonce)


def confirm_url(token: str) -> str:
    return f"{base_url()}/fraicheur/confirmer/{token}"


def load_token(token: str) -> ConfirmToken:
    """The stored token behind a link, or LinkError. Does not consume it."""
    try:
        nonce = _serializer().loads(token, max_age=int(token_lifetime().total_seconds()))
    except SignatureExpired as exc:
        raise LinkError("Ce lien a expiré.", 410) from exc
    except BadSignature as exc:
        raise LinkError("Ce lien n'est pas valide.") from exc
    row = db.session.scalar(select(ConfirmToken).where(ConfirmToken.nonce == str(nonce)))
    if row is None:
        raise LinkError("Ce lien n'est pas valide.")
    if row.used_at is not None:
        raise LinkError("Ce lien a déjà servi : la fiche a été confirmée.", 410)
    if row.expires_at <= utcnow():
        raise LinkError("Ce lien a expiré.", 410)
    if row.user.blocked:
        raise LinkError("Ce lien n'est plus valide.", 410)
    if row.sheet.state != SheetState.ACTIVE:
        raise LinkError("Cette fiche n'est plus publiée : elle ne peut pas être confirmée.", 410)
    return row


def use_token(token: str) -> ConfirmToken:
    row = load_token(token)
    row.used_at = utcnow()
    confirm_fresh(row.sheet, row.user, via="lien du courriel de relecture")
    return row


# --- writes ---------------------------------------------------------------------------------

def confirm_fresh(sheet: Sheet, user: User, via: str = "", now: datetime | None = None) -> None:
    """"Toujours à jour": the sheet counts as reviewed now, without a new revision."""
    check(user, Capability.CONFIRM_FRESH, sheet)
    if sheet.state != SheetState.ACTIVE or sheet.approved_revision_id is None:
        raise ModerationError("seule une fiche publiée peut être confirmée à jour")
    note_kind(db.session, sheet, CONFIRMATION)
    sheet.last_reviewed_at = now or utcnow()
    mark_changed([sheet.id])
    audit(user, Action.CONFIRM_FRESH, sheet=sheet, reason=via)


def mark_due(report: Report, moderator: User, now: datetime | None = None) -> None:
    """"À actualiser" on an outdated-information report: the sheet is due for review now (its
    badge, the freshness list, its team's next letter), as if its interval had just run out;
    the report is closed with that answer."""
    check(moderator, Capability.MODERATE)
    sheet = report.sheet
    if report.reason != ReportReason.OUTDATED.value:
        raise ModerationError("seul un signalement « Informations périmées » rend une fiche "
                              "à actualiser")
    if not sheet.is_published:
        raise ModerationError("seule une fiche publiée peut être mise à actualiser")
    now = now or utcnow()
    if sheet.review_due_at > now:
        # The review date is the last check plus the interval: the check no longer holds.
        sheet.last_reviewed_at = now - (sheet.review_due_at - sheet.last_reviewed_at)
    mark_changed([sheet.id])
    close_report(report, moderator, "Fiche à actualiser : ses contributeurs sont relancés.")
    audit(moderator, Action.MARK_DUE, sheet=sheet, reason=report.comment[:300],
          report=report.id)


def set_interval(sheet: Sheet, user: User, months: int) -> None:
    check(user, Capability.CONFIRM_FRESH, sheet)
    if months not in REVIEW_INTERVALS:
        raise ModerationError("fréquence possible : "
                              + ", ".join(f"{m} mois" for m in REVIEW_INTERVALS))
    if months == sheet.review_interval_months:
        return
    before = sheet.review_interval_months
    sheet.review_interval_months = months
    mark_changed([sheet.id])
    audit(user, Action.SET_INTERVAL, sheet=sheet, reason=f"{before} → {months} mois",
          before=before, after=months)


def archive_sheet(sheet: Sheet, moderator: User, reason: str = "", public: bool = False) -> None:
    """Out of search and listings; the page (with a banner) and the history stay."""
    set_state(sheet, SheetState.ARCHIVED, moderator, reason)
    audit(moderator, Action.ARCHIVE, sheet=sheet, reason=reason, **public_details(public))


def unarchive_sheet(sheet: Sheet, moderator: User, reason: str = "",
                    public: bool = False) -> None:
    check(moderator, Capability.MODERATE)
    if sheet.state != SheetState.ARCHIVED:
        raise ModerationError("cette fiche n'est pas archivée")
    set_state(sheet, SheetState.ACTIVE, moderator, reason)
    audit(moderator, Action.UNARCHIVE, sheet=sheet, reason=reason, **public_details(public))


def use_action(token: str, viewer: object, now: datetime | None = None) -> tuple[Sheet, str]:
    """Do what a letter's one-click link says (LinkError when it may not be used)."""
    link = load_action(token, viewer, now)
    if link.action == CONFIRM:
        confirm_fresh(link.sheet, link.user, via="lien de la lettre des fiches", now=now)
    elif link.action == ARCHIVE:
        archive_sheet(link.sheet, link.user, "sans réponse après les relances de la lettre des fiches")
    else:
        relaunch(link.sheet, link.user, now)
    return link.sheet, link.action


# --- digest ---------------------------------------------------------------------------------

@dataclass
class ReminderRun:
    sent: list[tuple[User, list[Sheet]]] = field(default_factory=list)
    already_reminded: list[User] = field(default_factory=list)
    failed: list[tuple[User, str]] = field(default_factory=list)
    stale: list[Sheet] = field(default_factory=list)


@dataclass
class _Item:
    sheet: Sheet
    confirm_url: str


def send_reminders(now: datetime | None = None) -> ReminderRun:
    """One digest per contributor per period listing all their due sheets. Commits per
    contributor, after the message left, so a re-run never sends the same digest twice and a
    failed send is retried next time."""
    now = now or utcnow()
    period = timedelta(days=current_app.config["KB_REMINDER_PERIOD_DAYS"])
    run = ReminderRun()
    due = due_sheets(now)
    contributors = teams(s.id for s in due)  # contributors and structure members
    by_user: dict[int, list[Sheet]] = defaultdict(list)
    users: dict[int, User] = {}
    for sheet in due:
        # People who opted out of the digest ("Mon compte") are not asked; a sheet nobody
        # can be asked about goes to the moderators.
        people = [u for u in contributors.get(sheet.id, []) if reminder_period(u) is not None]
        if not people:
            run.stale.append(sheet)
        for user in people:
            users[user.id] = user
            by_user[user.id].append(sheet)
    for user_id, sheets in sorted(by_user.items()):
        user = users[user_id]
        user_period = reminder_period(user) or period
        last = db.session.scalar(select(func.max(DigestLog.sent_at)).where(
            DigestLog.user_id == user_id))
        if last is not None and last > now - user_period:
            run.already_reminded.append(user)
            continue
        items = [_Item(s, confirm_url(issue_token(s, user, now))) for s in sheets]
        db.session.add(DigestLog(user_id=user_id, sent_at=now, sheet_ids=[s.id for s in sheets]))
        db.session.flush()
        subject = ("Une fiche à relire" if len(items) == 1
                   else f"{len(items)} fiches à relire") + " — Fiches initiatives"
        body = render_template("mail/digest.txt", user=user, items=items,
                               base_url=base_url(),
                               token_days=current_app.config["KB_CONFIRM_TOKEN_DAYS"],
                               period_days=user_period.days)
        mail.queue(mail.Mail(to=user.email, subject=subject, body=body, kind="freshness.reminder"))
        commit()
        run.sent.append((user, sheets))
    return run
