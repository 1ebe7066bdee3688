"""What an account's word is worth: whether its proposals and reports count.

An account counts once its owner confirmed the e-mail address (accounts made by an admin or
before confirmation existed count from the start). Until then it may read and draft, but its
proposals wait outside the moderation queue, its reports never hide a sheet and it cannot be
made trusted. *Standing* is more: a confirmed account older than KB_STANDING_DAYS or with an
approved contribution, or a trusted one. Only reporters with standing count towards hiding a
sheet automatically, so that throw-away accounts (or anonymous reports) alone only queue it
for review.

The rules read the account; where a role matters they ask the capability table
(kb/auth/permissions.py), which itself withholds publishing from unconfirmed accounts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, select

from kb.auth.models import User
from kb.extensions import db
from kb.timeutil import utcnow

DEFAULT_STANDING_DAYS = 3


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
    from kb.sheets.models import Revision, RevisionStatus

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
