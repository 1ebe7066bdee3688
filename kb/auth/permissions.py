"""Who may do what. Views and the API ask here, never compare roles themselves."""

from __future__ import annotations

from typing import Any

from kb.auth.models import User
from kb.sheets.models import Revision


def is_moderator(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and bool(user.is_moderator)


def auto_approves(user: User) -> bool:
    """Moderators, admins and trusted contributors are published at once; a blocked account never.

    Trust is granted by a moderator or automatically when the KB_AUTO_APPROVE_AFTER-th revision
    is approved (kb.moderation.operations.approve), which sets `trusted`.
    """
    return not user.blocked and (user.is_moderator or user.trusted)


def is_sheet_contributor(user: Any, sheet: Any) -> bool:
    """Whether `user` wrote an approved revision of `sheet`."""
    if not getattr(user, "is_authenticated", False):
        return False
    from sqlalchemy import select

    from kb.extensions import db

    return db.session.scalar(select(Revision.id).where(
        Revision.sheet_id == sheet.id, Revision.author_id == user.id,
        Revision.status == "approved").limit(1)) is not None


def can_review_freshness(user: Any, sheet: Any) -> bool:
    """Confirm a sheet "toujours à jour" or change its review interval: its contributors and
    moderators."""
    if not getattr(user, "is_authenticated", False) or user.blocked:
        return False
    return bool(user.is_moderator) or is_sheet_contributor(user, sheet)


def can_see_revision(user: Any, revision: Revision) -> bool:
    if revision.status == "approved":
        return True
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(user.is_moderator or revision.author_id == user.id)
