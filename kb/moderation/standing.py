"""What an account's word is worth: whether its proposals and reports count.

An account counts once its owner confirmed the e-mail address (accounts made by an admin or
before confirmation existed count from the start). Until then it may read and draft, but its
proposals wait outside the moderation queue, its reports never hide a sheet and it cannot be
made trusted. *Standing* is more: a confirmed account older than KB_STANDING_DAYS or with an
approved contribution, or a trusted one. Only reporters with standing count towards hiding a
sheet automatically, so that throw-away accounts (or anonymous reports) alone only queue it
for review.

*Automatic trust* (publishing without review) needs the most: moderator decisions, not saved
revisions, are counted (one approval is one contribution, a replaced proposal none), at least
KB_AUTO_APPROVE_AFTER of them on at least TRUST_MIN_SHEETS different sheets, an account older
than KB_STANDING_DAYS, never blocked and never withdrawn trust (both read in the moderation
journal, which is append-only). FlaggedRevs' autopromote weighs days, edits, distinct pages and
"never blocked" the same way.

The rules read the account; where a role matters they ask the capability table
(kb/auth/permissions.py), which itself withholds publishing from unconfirmed accounts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, func, select

from kb.auth.models import User
from kb.extensions import db
from kb.moderation.models import Action, AuditEntry
from kb.sheets.models import ACCEPTED, Revision, RevisionStatus
from kb.timeutil import utcnow
from kb.wording import plural

DEFAULT_STANDING_DAYS = 3
# Approved contributions must be spread over this many sheets before trust is automatic.
TRUST_MIN_SHEETS = 3


def is_confirmed(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and bool(
        getattr(user, "is_confirmed", False))


def counts_as_contributor(user: Any) -> bool:
    """Whether the account's proposals enter the moderation queue and may be published at once
    (with the role or trust that allows it): confirmed, neither blocked nor deleted."""
    return is_confirmed(user) and not user.blocked


def may_be_trusted(user: Any) -> bool:
    """Trust (and a moderator role) is for confirmed accounts only."""
    return counts_as_contributor(user)


def standing_days() -> int:
    return int(current_app.config.get("KB_STANDING_DAYS", DEFAULT_STANDING_DAYS))


def has_standing(user: Any, now: datetime | None = None) -> bool:
    """Whether this account's report counts towards hiding a sheet without a moderator."""
    if not counts_as_contributor(user):
        return False
    from kb.auth.permissions import Capability, can

    if can(user, Capability.PUBLISH):  # trusted, or staff
        return True
    if user.created_at is not None \
            and user.created_at <= (now or utcnow()) - timedelta(days=standing_days()):
        return True
    return db.session.scalar(select(Revision.id).where(
        Revision.author_id == user.id,
        Revision.status == RevisionStatus.APPROVED.value).limit(1)) is not None


def reporters_with_standing(reporters: Iterable[User | None]) -> int:
    """How many distinct accounts among `reporters` have standing (None: anonymous)."""
    seen: set[int] = set()
    for user in reporters:
        if user is not None and user.id not in seen and has_standing(user):
            seen.add(user.id)
    return len(seen)


def counted_author(author_id: Any) -> ColumnElement[bool]:
    """SQL condition on an author id column: the author's proposals count (confirmed account).
    Used by the moderation queue and the moderators' digest."""
    return author_id.in_(select(User.id).where(User.email_confirmed_at.is_not(None),
                                               User.deleted_at.is_(None)))


# --- automatic trust ------------------------------------------------------------------------

def auto_trust_threshold() -> int:
    """KB_AUTO_APPROVE_AFTER: approvals before automatic trust (0: never automatic)."""
    return int(current_app.config.get("KB_AUTO_APPROVE_AFTER", 0))


@dataclass(frozen=True)
class TrustProgress:
    """Where an account stands against the automatic trust rule."""

    approvals: int  # moderators' approvals of its proposals, one per decision
    sheets: int  # distinct sheets among them
    old_enough: bool  # older than the standing period
    ever_blocked: bool
    trust_withdrawn: bool  # a moderator took trust back once: their word wins over counters
    threshold: int

    @property
    def meets_rule(self) -> bool:
        return (self.threshold > 0 and self.approvals >= self.threshold
                and self.sheets >= TRUST_MIN_SHEETS and self.old_enough
                and not self.ever_blocked and not self.trust_withdrawn)

    @property
    def summary(self) -> str:
        return (plural(self.approvals, "contribution approuvée", "contributions approuvées")
                + " sur " + plural(self.sheets, "fiche", "fiches"))


def _approvals(user: User) -> tuple[int, set[int]]:
    """The approvals of `user`'s proposals in the journal, and the sheets they are on. Read in
    the journal: one entry per moderator decision, whatever the number of revisions."""
    rows = db.session.execute(
        select(AuditEntry.id, Revision.sheet_id)
        .join(Revision, Revision.id == AuditEntry.revision_id)
        .where(AuditEntry.action == Action.APPROVE.value, Revision.author_id == user.id,
               Revision.status.in_(ACCEPTED),
               func.coalesce(AuditEntry.actor_id, 0) != user.id)).all()
    return len({entry for entry, _ in rows}), {sheet for _, sheet in rows}


def _in_journal(user: User, action: Action) -> bool:
    return db.session.scalar(select(AuditEntry.id).where(
        AuditEntry.target_user_id == user.id, AuditEntry.action == action.value).limit(1)) \
        is not None


def trust_progress(user: User, now: datetime | None = None,
                   approving: Revision | None = None) -> TrustProgress:
    """`user` against the automatic trust rule; with `approving` (a pending revision of theirs),
    as it would be once a moderator approves it."""
    approvals, sheets = _approvals(user)
    if approving is not None:
        approvals += 1
        sheets.add(approving.sheet_id)
    created = user.created_at
    return TrustProgress(
        approvals=approvals, sheets=len(sheets),
        old_enough=created is not None
        and created <= (now or utcnow()) - timedelta(days=standing_days()),
        ever_blocked=bool(user.blocked) or _in_journal(user, Action.BLOCK),
        trust_withdrawn=_in_journal(user, Action.TRUST_REVOKED),
        threshold=auto_trust_threshold())


def could_become_trusted(user: User) -> bool:
    """Whether the counter applies at all: a confirmed account that does not publish yet."""
    from kb.auth.permissions import Capability, can

    return auto_trust_threshold() > 0 and may_be_trusted(user) \
        and not can(user, Capability.PUBLISH)


def approval_makes_trusted(revision: Revision) -> TrustProgress | None:
    """For the review page: the author's progress if approving this pending proposal would make
    them trusted (None otherwise)."""
    author = revision.author
    if revision.status != RevisionStatus.PENDING.value or not could_become_trusted(author):
        return None
    if trust_progress(author).meets_rule:
        return None  # already meets it (trust withdrawn and given back, say): nothing new
    after = trust_progress(author, approving=revision)
    return after if after.meets_rule else None
