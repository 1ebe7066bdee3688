"""Notification settings chosen in "Mon compte", read by every domain that mails people.

Mails about the account itself (confirmation, password, address change) are never optional;
everything else is: decisions on one's contributions and reports on one's sheets, the
freshness digest, the moderators' daily digest.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app

from kb.auth.models import SYSTEM_EMAIL, User

# Choices offered for the freshness digest, in days (0: never; None: the site default).
REMINDER_PERIODS = (7, 14, 30, 60, 90, 180)


def _mailable(user: User) -> bool:
    return user.is_active and user.email != SYSTEM_EMAIL


def wants_contribution_mail(user: User) -> bool:
    """Decisions on their proposals, reports about their sheets."""
    return _mailable(user) and bool(user.notify_contributions)


def reminder_period(user: User) -> timedelta | None:
    """Time between two freshness digests for this person; None: they opted out."""
    if not _mailable(user):
        return None
    days = user.reminder_period_days
    if days is None:
        days = int(current_app.config["KB_REMINDER_PERIOD_DAYS"])
    return timedelta(days=days) if days > 0 else None


def wants_moderator_digest(user: Any) -> bool:
    from kb.auth.permissions import Capability, can

    return _mailable(user) and can(user, Capability.REVIEW) and bool(user.moderator_digest) \
        and bool(user.is_confirmed)


def opt_out_of_everything(user: User) -> None:
    user.notify_contributions = False
    user.reminder_period_days = 0
    user.moderator_digest = False
