"""A sheet's team: who is asked about it (freshness letters, questions). Its structure's members
(active, the account neither blocked nor deleted) plus its reachable contributors. A member who
leaves drops out; the sheet keeps the rest."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import select

from kb.auth.models import User
from kb.extensions import db
from kb.moderation.queries import reachable_contributors
from kb.sheets.models import Sheet
from kb.structures.models import Membership, MemberState


def teams(sheet_ids: Iterable[int]) -> dict[int, list[User]]:
    """Per sheet id, its team (contributors first, then members; each person once)."""
    ids = list(sheet_ids)
    result: dict[int, list[User]] = defaultdict(list)
    for sheet_id, people in reachable_contributors(ids).items():
        result[sheet_id].extend(people)
    if not ids:
        return result
    rows = db.session.execute(
        select(Sheet.id, User).join(Membership, Membership.structure_id == Sheet.structure_id)
        .join(User, User.id == Membership.user_id)
        .where(Sheet.id.in_(ids), Membership.state == MemberState.ACTIVE.value,
               User.blocked.is_(False), User.deleted_at.is_(None))
        .order_by(Sheet.id, User.id))
    for sheet_id, user in rows:
        if all(u.id != user.id for u in result[sheet_id]):
            result[sheet_id].append(user)
    return result


def sheet_team(sheet: Sheet) -> list[User]:
    return teams([sheet.id]).get(sheet.id, [])
