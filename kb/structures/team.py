"""A sheet's team: who is asked about it (freshness letters, questions). Its structure's members
(active, the account neither blocked nor deleted) plus its reachable contributors. A member who
leaves drops out; the sheet keeps the rest.

"Reachable" for the freshness letters and their escalation (kb.freshness.letters) is this team
narrowed to the people who can be mailed (`reachable`): a sheet whose team has nobody left goes
to the moderators at once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import select

from kb.auth.models import SYSTEM_EMAIL, User
from kb.auth.preferences import reminder_period
from kb.extensions import db
from kb.moderation.queries import reachable_contributors
from kb.sheets.models import Sheet
from kb.structures.models import Membership, MemberState


def reachable(user: User) -> bool:
    """Whether a letter can ask this person: the account is confirmed (letters go to confirmed
    addresses only), neither blocked, deleted nor the import account, and accepts mail (not
    "jamais" for reminders in "Mon compte")."""
    return (user.is_confirmed and not user.blocked and user.email != SYSTEM_EMAIL
            and reminder_period(user) is not None)


def members(sheet_ids: Iterable[int]) -> dict[int, list[User]]:
    """Per sheet id, the active members of the structure that carries it whose account is
    neither blocked nor deleted (administrators first, then by joining order). One query."""
    ids = list(sheet_ids)
    result: dict[int, list[User]] = defaultdict(list)
    if not ids:
        return result
    rows = db.session.execute(
        select(Sheet.id, User).join(Membership, Membership.structure_id == Sheet.structure_id)
        .join(User, User.id == Membership.user_id)
        .where(Sheet.id.in_(ids), Membership.state == MemberState.ACTIVE.value,
               User.blocked.is_(False), User.deleted_at.is_(None))
        .order_by(Sheet.id, Membership.role, Membership.id))
    for sheet_id, user in rows:
        result[sheet_id].append(user)
    return result


def teams(sheet_ids: Iterable[int]) -> dict[int, list[User]]:
    """Per sheet id, its team (contributors first, then members; each person once)."""
    ids = list(sheet_ids)
    result: dict[int, list[User]] = defaultdict(list)
    for sheet_id, people in reachable_contributors(ids).items():
        result[sheet_id].extend(people)
    for sheet_id, people in members(ids).items():
        for user in people:
            if all(u.id != user.id for u in result[sheet_id]):
                result[sheet_id].append(user)
    return result


def sheet_team(sheet: Sheet) -> list[User]:
    return teams([sheet.id]).get(sheet.id, [])
