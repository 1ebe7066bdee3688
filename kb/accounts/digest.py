"""The moderators' daily digest of pending work (`kb moderation digest`, run daily by cron).

One mail per moderator per day, only when something waits (proposals to review, reported
sheets, possible duplicates), never one mail per item. Moderators opt out in "Mon compte".
Running the command twice the same day sends nothing new: each mail is recorded (one row per
moderator and day, unique) and committed right after it left.

It lives above moderation, freshness and duplicates (it reads all three), with the accounts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, UniqueConstraint, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from kb import mail
from kb.auth.models import SYSTEM_EMAIL, Role, User
from kb.auth.preferences import wants_moderator_digest
from kb.extensions import db
from kb.timeutil import utcnow
from kb.transaction import commit
from kb.urls import base_url

log = logging.getLogger(__name__)


class ModeratorDigest(db.Model):  # type: ignore[name-defined]
    """One daily digest sent to a moderator: at most one per moderator and day (UTC)."""

    __tablename__ = "moderator_digests"
    __table_args__ = (UniqueConstraint("user_id", "day", name="uq_moderator_digests_user_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    sent_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


@dataclass
class PendingWork:
    revisions: int = 0
    reported_sheets: int = 0
    duplicates: int = 0
    oldest: tuple[str, datetime, str] | None = None  # (what, since when, link path)

    @property
    def total(self) -> int:
        return self.revisions + self.reported_sheets + self.duplicates


@dataclass
class DigestRun:
    sent: list[User] = field(default_factory=list)
    already_sent: list[User] = field(default_factory=list)
    failed: list[tuple[User, str]] = field(default_factory=list)
    work: PendingWork = field(default_factory=PendingWork)


def pending_work() -> PendingWork:
    from kb.duplicates.models import CandidateStatus, DuplicateCandidate
    from kb.moderation import queries
    from kb.moderation.models import Report

    work = PendingWork(revisions=queries.pending_count(),
                       reported_sheets=queries.reported_sheet_count())
    work.duplicates = db.session.scalar(select(func.count(DuplicateCandidate.id)).where(
        DuplicateCandidate.status == CandidateStatus.OPEN.value)) or 0
    candidates: list[tuple[str, datetime, str]] = []
    oldest_revision = queries.pending_revisions(limit=1)
    if oldest_revision:
        rev = oldest_revision[0]
        candidates.append((f"la proposition « {rev.title} »", rev.created_at,
                           f"/moderation/revisions/{rev.id}"))
    report = db.session.scalar(select(Report).where(Report.closed_at.is_(None))
                               .order_by(Report.created_at, Report.id).limit(1))
    if report is not None:
        candidates.append((f"le signalement de « {report.sheet.title} »", report.created_at,
                           "/moderation/signalements"))
    if candidates:
        work.oldest = min(candidates, key=lambda c: c[1])
    return work


def moderators() -> list[User]:
    users = db.session.scalars(select(User).where(
        User.role.in_([Role.MODERATOR.value, Role.ADMIN.value]), User.email != SYSTEM_EMAIL)
        .order_by(User.id))
    return [u for u in users if wants_moderator_digest(u)]


def send_moderator_digests(now: datetime | None = None) -> DigestRun:
    now = now or utcnow()
    run = DigestRun(work=pending_work())
    if not run.work.total:
        return run
    today = now.date()
    for user in moderators():
        if db.session.scalar(select(ModeratorDigest.id).where(
                ModeratorDigest.user_id == user.id, ModeratorDigest.day == today)) is not None:
            run.already_sent.append(user)
            continue
        db.session.add(ModeratorDigest(user_id=user.id, day=today, sent_at=now))
        try:
            db.session.flush()
        except IntegrityError:  # another run got there first
            db.session.rollback()
            run.already_sent.append(user)
            continue
        subject = f"{run.work.total} élément(s) en attente de modération — Fiches initiatives"
        message = mail.render(user.email, subject, "mail/moderator_digest", user=user,
                              work=run.work, now=now, base_url=base_url())
        try:
            mail.send(message)
        except mail.MailError as exc:
            db.session.rollback()
            log.error("digest de modération non envoyé à %s : %s", user.email, exc)
            run.failed.append((user, str(exc)))
            continue
        commit()
        run.sent.append(user)
    return run
