"""Readers' answers to "Cette fiche vous semble-t-elle toujours juste ?".

Asked of signed-in readers with standing (kb/moderation/standing.py) who are not the sheet's
contributors or moderators (those confirm it for real). One answer per reader per sheet per
review cycle. One reader's "Oui" changes nothing; three distinct readers' "Oui" (and no "Non")
move the review date once per cycle, by EXTENSION, never past today. A "Non" is an "outdated"
report: moderators see it in their queue, the sheet's contributors get it by mail.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime, timedelta

from sqlalchemy import select

from kb.auth.models import User
from kb.auth.permissions import Capability, can
from kb.errors import Conflict, PermissionDenied
from kb.extensions import db
from kb.freshness.models import FreshnessState, ReaderCheck
from kb.freshness.signs import READERS, note_kind
from kb.moderation.models import Action, ReportReason
from kb.moderation.operations import ModerationError, audit, report_sheet
from kb.moderation.standing import has_standing
from kb.sheets.models import Sheet
from kb.timeutil import utcnow
from kb.transaction import mark_changed

EXTENSION = timedelta(days=90)
READERS_TO_EXTEND = 3
COMMENT_MAX = 2000


def _state(sheet: Sheet) -> FreshnessState | None:
    return db.session.get(FreshnessState, sheet.id)


def extended_this_cycle(sheet: Sheet, state: FreshnessState | None) -> bool:
    return state is not None and state.extended_to is not None \
        and state.extended_to == sheet.last_reviewed_at


def cycle_start(sheet: Sheet, state: FreshnessState | None = None) -> datetime:
    """The last real sign of life: readers' extension does not start a new cycle."""
    state = state if state is not None else _state(sheet)
    if extended_this_cycle(sheet, state) and state is not None and state.cycle_start is not None:
        return state.cycle_start
    return sheet.last_reviewed_at


def may_answer(user: object, sheet: Sheet) -> bool:
    return sheet.is_published and has_standing(user) \
        and not can(user, Capability.CONFIRM_FRESH, sheet)


def answer_of(user: User, sheet: Sheet) -> ReaderCheck | None:
    """This reader's answer in the sheet's current cycle."""
    return db.session.scalar(select(ReaderCheck).where(
        ReaderCheck.sheet_id == sheet.id, ReaderCheck.user_id == user.id,
        ReaderCheck.cycle_start == cycle_start(sheet)))


def answer(sheet: Sheet, user: User, accurate: bool, comment: str = "", reporter_key: str = "",
           now: datetime | None = None) -> bool:
    """Record a reader's answer; True when it extended the review date."""
    now = now or utcnow()
    if not may_answer(user, sheet):
        raise PermissionDenied("cette question est posée aux lecteurs inscrits depuis quelques "
                               "jours ou ayant déjà contribué, hors contributeurs de la fiche")
    comment = comment.strip()
    if len(comment) > COMMENT_MAX:
        raise ModerationError(f"le commentaire fait au plus {COMMENT_MAX} caractères")
    if answer_of(user, sheet) is not None:
        raise Conflict("vous avez déjà répondu pour cette fiche depuis sa dernière relecture")
    db.session.add(ReaderCheck(sheet_id=sheet.id, user_id=user.id, cycle_start=cycle_start(sheet),
                               accurate=accurate, comment=comment, created_at=now))
    db.session.flush()
    if not accurate:
        # Their outdated report may already be open: the answer is recorded, that is all.
        with suppress(ModerationError):
            report_sheet(sheet, ReportReason.OUTDATED.value,
                         comment or "Un lecteur trouve que cette fiche n'est plus juste.",
                         user, reporter_key or f"user:{user.id}")
        return False
    return _maybe_extend(sheet, now)


def _maybe_extend(sheet: Sheet, now: datetime) -> bool:
    state = _state(sheet)
    if extended_this_cycle(sheet, state):
        return False
    start = cycle_start(sheet, state)
    answers = db.session.execute(select(ReaderCheck.user_id, ReaderCheck.accurate).where(
        ReaderCheck.sheet_id == sheet.id, ReaderCheck.cycle_start == start)).all()
    yes = {user_id for user_id, accurate in answers if accurate}
    if len(yes) < READERS_TO_EXTEND or any(not accurate for _, accurate in answers):
        return False
    moved = min(sheet.last_reviewed_at + EXTENSION, now)
    if moved <= sheet.last_reviewed_at:
        return False
    if state is None:
        state = FreshnessState(sheet_id=sheet.id, reminders=0)
        db.session.add(state)
    state.cycle_start, state.extended_to = start, moved
    days = (moved - sheet.last_reviewed_at).days
    note_kind(db.session, sheet, READERS)
    sheet.last_reviewed_at = moved
    mark_changed([sheet])
    audit(None, Action.READERS_EXTENDED, sheet=sheet,
          reason=f"{len(yes)} lecteurs la trouvent toujours juste : relecture repoussée de "
                 f"{days} jours")
    return True
