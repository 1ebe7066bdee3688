"""Who may do what. Views and the API ask here, never compare roles themselves."""

from __future__ import annotations

from typing import Any

from kb.auth.models import User
from kb.sheets.models import Revision


def is_moderator(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and bool(user.is_moderator)


def auto_approves(user: User) -> bool:
    """Moderators, admins and trusted contributors are published at once."""
    return user.is_moderator or user.trusted


def can_see_revision(user: Any, revision: Revision) -> bool:
    if revision.status == "approved":
        return True
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(user.is_moderator or revision.author_id == user.id)
