"""What "La lettre des fiches" lists about freshness, and the escalation it drives.

A sheet enters its owner's letter up to 30 days before its review date ("bientôt"), again in
the first letter once it is due ("à vérifier"), then in each later letter ("en retard"). The
letters engine calls `note_reminded` for the sheets of every letter it queues; once two letters
listed a due sheet without an answer its other contributors get it too, after two more the
moderators (with "Confirmer", "Archiver", "Relancer"). Any sign of life moves the review date,
and the count starts again (it belongs to one review date). docs/freshness.md says it in prose.

The people asked are the sheet's team (kb/structures/team.py) who can be mailed: its
contributors and the active members of the structure that carries it. The owner is its first
contributor who can be asked (not blocked, deleted, the import account, nor opted out of
reminders); its other contributors come next, in the order they first contributed, then the
structure's members (administrators first). With no contributor left, the first member owns
the sheet. A sheet with nobody left to ask goes to the moderators at once.

Moderators have no territory of their own yet: the escalated sheets are shared among the
moderators who receive the letter's moderation section, each sheet to one of them
(`_moderates` is where a territory would narrow it); /moderation/fraicheur lists them all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import blake2b
from typing import Any

from flask import current_app
from sqlalchemy import Select, func, select

from kb.auth.models import User
from kb.auth.permissions import ROLE_CAPABILITIES, Capability, can, check
from kb.auth.preferences import letter_sections
from kb.errors import LinkError
from kb.extensions import db
from kb.freshness.models import FreshnessState
from kb.moderation.models import Action
from kb.moderation.operations import audit
from kb.sheets.links import SheetLink, make_token, read_token
from kb.sheets.models import ACCEPTED, REVIEW_INTERVALS, Revision, Sheet, published_sheets
from kb.structures.models import Membership, MemberState
from kb.structures.team import members, reachable
from kb.territories.register import register
from kb.timeutil import utcnow

SOON, DUE, LATE = "bientôt", "à vérifier", "en retard"
AHEAD = timedelta(days=30)  # how long before its review date a sheet is announced
TO_CONTRIBUTORS = 1  # unanswered letters (while due) before the other contributors are asked
TO_MODERATORS = 3  # ... before the moderators are (both: KB_FRESHNESS_TO_* in the config)
# Letters queued within this time of each other are one round (one run of the letters engine
# lists a sheet to its owner and to its other contributors: that is one reminder, not two).
ROUND = timedelta(hours=20)
CONFIRM, ARCHIVE, RELAUNCH = "confirmer", "archiver", "relancer"
ACTION_LABELS = {CONFIRM: "Confirmer", ARCHIVE: "Archiver", RELAUNCH: "Relancer"}
_SALT = "kb-freshness-action"
_DAYS_PER_MONTH = 30.44


@dataclass(frozen=True)
class FreshnessItem:
    sheet_id: int
    title: str
    url: str  # absolute URL of the sheet page
    state: str  # SOON, DUE or LATE
    actions: tuple[tuple[str, str], ...]  # (French label, absolute signed one-click URL)


# --- who is asked ----------------------------------------------------------------------------

def askable(user: User) -> bool:
    return reachable(user)  # the team's rule (kb.structures.team)


def people_to_ask(sheet_ids: Iterable[int]) -> dict[int, list[User]]:
    """Per sheet, its team who can be asked: its contributors, the owner (first contributor)
    first, then the members of its structure. Nobody: the moderators' (escalated at once)."""
    ids = list(sheet_ids)
    result: dict[int, list[User]] = defaultdict(list)
    if not ids:
        return result
    rows = db.session.execute(
        select(Revision.sheet_id, Revision.author_id, func.min(Revision.id).label("first"))
        .where(Revision.sheet_id.in_(ids), Revision.status.in_(ACCEPTED))
        .group_by(Revision.sheet_id, Revision.author_id)).all()
    users = {u.id: u for u in db.session.scalars(
        select(User).where(User.id.in_({r.author_id for r in rows})))}
    for row in sorted(rows, key=lambda r: (r.sheet_id, r.first)):
        user = users.get(row.author_id)
        if user is not None and askable(user):
            result[row.sheet_id].append(user)
    for sheet_id, people in members(ids).items():
        known = {u.id for u in result[sheet_id]}
        result[sheet_id].extend(u for u in people if u.id not in known and askable(u))
    return result


def _moderates(user: User, sheet: Sheet) -> bool:
    """Whether this moderator hears of this sheet: the moderators of its territory, that is
    those whose account names a commune (« Mon compte ») of the sheet's département, and
    those who name none (they cover every territory)."""
    if not can(user, Capability.MODERATE):
        return False
    commune = register().commune(user.commune_code) if user.commune_code else None
    return commune is None or not sheet.department or commune.department == sheet.department


def _letter_moderators() -> list[User]:
    """Moderators whose letter has the moderation section (not blocked, confirmed, not opted
    out): the people the escalated sheets are shared among."""
    roles = [role for role, granted in ROLE_CAPABILITIES.items() if Capability.MODERATE in granted]
    moderators = db.session.scalars(select(User).where(User.role.in_(roles)).order_by(User.id))
    return [u for u in moderators
            if can(u, Capability.MODERATE) and "moderation" in letter_sections(u)]


def _weight(sheet_id: int, user_id: int) -> bytes:
    return blake2b(f"{sheet_id}:{user_id}".encode(), digest_size=8).digest()


def _assignee(sheet: Sheet, moderators: list[User]) -> User | None:
    """The one moderator whose letter lists this sheet. Rendezvous hashing: the choice depends
    only on the sheet and who may take it, so a sheet stays with the same person from one
    letter to the next, and when a moderator leaves or opts out only their sheets move (a
    modulo over the list would reshuffle everyone's)."""
    # A territory no moderator covers falls to them all: a sheet never reaches nobody.
    able = [u for u in moderators if _moderates(u, sheet)] or moderators
    return max(able, key=lambda u: _weight(sheet.id, u.id), default=None)


# --- state of one sheet ----------------------------------------------------------------------

def _states(sheet_ids: Iterable[int]) -> dict[int, FreshnessState]:
    ids = list(sheet_ids)
    if not ids:
        return {}
    return {s.sheet_id: s for s in db.session.scalars(
        select(FreshnessState).where(FreshnessState.sheet_id.in_(ids)))}


def reminders(sheet: Sheet, state: FreshnessState | None) -> int:
    """Letters that listed the sheet since its current review date passed."""
    return state.reminders if state is not None and state.due_at == sheet.review_due_at else 0


def thresholds() -> tuple[int, int]:
    """Unanswered letters before the other contributors, then the moderators, are asked."""
    config = current_app.config
    return (int(config.get("KB_FRESHNESS_TO_CONTRIBUTORS", TO_CONTRIBUTORS)),
            int(config.get("KB_FRESHNESS_TO_MODERATORS", TO_MODERATORS)))


def state_of(sheet: Sheet, state: FreshnessState | None, now: datetime,
             ahead: timedelta = AHEAD) -> str | None:
    due = sheet.review_due_at
    if now < due - ahead:
        return None
    if now < due:
        return SOON
    return DUE if reminders(sheet, state) == 0 else LATE


def _candidates(now: datetime, query: Select[Any] | None = None,
                ahead: timedelta = AHEAD) -> list[Sheet]:
    """Published sheets whose review date is at most `ahead` away (or past)."""
    # SQL narrows with the shortest interval; the exact date is the model's (as due_sheets).
    horizon = now + ahead - timedelta(days=min(REVIEW_INTERVALS) * _DAYS_PER_MONTH)
    base = published_sheets() if query is None else query
    sheets = db.session.scalars(base.where(Sheet.last_reviewed_at <= horizon)
                                .order_by(Sheet.id)).unique()
    return sorted((s for s in sheets if s.review_due_at - ahead <= now),
                  key=lambda s: (s.review_due_at, s.id))


# --- the letters' items ----------------------------------------------------------------------

def letter_items_for_owner(user: User, now: datetime, next_letter: datetime | None = None
                           ) -> list[FreshnessItem]:
    """Sheets this person should confirm: theirs (from 30 days before the review date, or
    from the last letter before it when the next one comes later: `next_letter`), and overdue
    sheets escalated to them as another contributor. A pure read."""
    if not askable(user):
        return []
    # A monthly period lasts 28 or 35 days: a sheet falling due 31 to 35 days after a letter
    # would otherwise get its first mail when already overdue.
    ahead = max(AHEAD, next_letter - now) if next_letter is not None else AHEAD
    # Sheets they contributed to, and the sheets of the structures they are active members of.
    mine = published_sheets().where(
        Sheet.id.in_(select(Revision.sheet_id).where(
            Revision.author_id == user.id, Revision.status.in_(ACCEPTED)))
        | Sheet.structure_id.in_(select(Membership.structure_id).where(
            Membership.user_id == user.id, Membership.state == MemberState.ACTIVE.value)))
    sheets = _candidates(now, mine, ahead)
    people = people_to_ask(s.id for s in sheets)
    states = _states(s.id for s in sheets)
    to_others = thresholds()[0]
    items = []
    for sheet in sheets:
        asked = people.get(sheet.id, [])
        if not asked:
            continue
        label = state_of(sheet, states.get(sheet.id), now, ahead)
        is_owner = asked[0].id == user.id
        escalated = label != SOON and reminders(sheet, states.get(sheet.id)) >= to_others
        if label is not None and (is_owner or (escalated and any(u.id == user.id for u in asked))):
            items.append(_item(sheet, label, user, (CONFIRM,), now))
    return items


def letter_items_for_moderator(user: User, now: datetime) -> list[FreshnessItem]:
    """This moderator's share of the overdue sheets escalated to the moderators (nobody
    answered four letters, or nobody can be asked at all), the longest overdue first. Each
    sheet goes to one of the moderators who receive the moderation section: listing every
    sheet to all of them meant, with the section capped at 5, that three moderators saw the
    same 5 sheets a month between them. A pure read."""
    if not can(user, Capability.MODERATE):
        return []
    moderators = _letter_moderators()
    if user.id not in {u.id for u in moderators}:
        return []  # no moderation section in their letter: their share went to the others
    sheets = [s for s in _candidates(now) if s.review_due_at <= now]
    people = people_to_ask(s.id for s in sheets)
    states = _states(s.id for s in sheets)
    to_moderators = thresholds()[1]
    items = []
    for sheet in sheets:
        owned = bool(people.get(sheet.id))
        if owned and reminders(sheet, states.get(sheet.id)) < to_moderators:
            continue
        assignee = _assignee(sheet, moderators)
        if assignee is None or assignee.id != user.id:
            continue
        actions = (CONFIRM, ARCHIVE, RELAUNCH) if owned else (CONFIRM, ARCHIVE)
        items.append(_item(sheet, LATE, user, actions, now))
    return items


def note_reminded(sheet_ids: Iterable[int], now: datetime) -> None:
    """The letters engine listed these sheets in a letter it queued (in its transaction)."""
    ids = sorted(set(sheet_ids))
    states = _states(ids)
    for sheet in db.session.scalars(select(Sheet).where(Sheet.id.in_(ids))):
        state = states.get(sheet.id)
        if state is None:
            state = FreshnessState(sheet_id=sheet.id, reminders=0)
            db.session.add(state)
        due = sheet.review_due_at
        if state.due_at != due:  # a sign of life since: a new count
            state.due_at, state.reminders = due, 0
        last = state.last_reminded_at
        if now >= due and (last is None or last < due or now - last >= ROUND):
            state.reminders = (state.reminders or 0) + 1
        state.last_reminded_at = now


def relaunch(sheet: Sheet, moderator: User, now: datetime | None = None) -> None:
    """"Relancer": the escalation starts again. The owner's next letter lists the sheet as
    "à vérifier" (a new first reminder); the others, then the moderators, get it back after two,
    then four, more unanswered letters."""
    check(moderator, Capability.MODERATE)
    state = _states([sheet.id]).get(sheet.id)
    if state is None or reminders(sheet, state) == 0:
        raise LinkError("Cette fiche a déjà été relancée ou confirmée.", 410)
    state.reminders = 0
    state.last_reminded_at = None
    audit(moderator, Action.FRESHNESS_RELAUNCH, sheet=sheet,
          reason="relance de la personne qui tient la fiche")


# --- signed one-click links ------------------------------------------------------------------

def _stamp(sheet: Sheet) -> int:
    """The review cycle a link belongs to: once the sheet is confirmed, its links are spent."""
    return int(sheet.last_reviewed_at.replace(tzinfo=UTC).timestamp())


def action_url(sheet: Sheet, user: User, action: str, now: datetime) -> str:
    """A link doing `action` on `sheet` as `user`, without signing in (kb/sheets/links.py);
    the review cycle in it makes it single use."""
    token = make_token(_SALT, sheet, user, action, _stamp(sheet), now)
    return f"{current_app.config['KB_BASE_URL']}/fraicheur/action/{token}"


def _item(sheet: Sheet, state: str, user: User, actions: tuple[str, ...],
          now: datetime) -> FreshnessItem:
    return FreshnessItem(
        sheet_id=sheet.id, title=sheet.title, state=state,
        url=f"{current_app.config['KB_BASE_URL']}/fiches/{sheet.slug}",
        actions=tuple((ACTION_LABELS[a], action_url(sheet, user, a, now)) for a in actions))


def load_action(token: str, viewer: object, now: datetime | None = None) -> SheetLink:
    """What a link allows, or LinkError. `viewer` is whoever is signed in (or anonymous)."""
    link = read_token(_SALT, token, ACTION_LABELS, viewer, now or utcnow())
    if link.stamp != _stamp(link.sheet):
        raise LinkError("Déjà fait : la fiche a été confirmée depuis l'envoi de ce lien.", 410)
    return link
