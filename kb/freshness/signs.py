"""Every sign of life, whichever domain wrote it, in one place.

A sheet's review date is `last_reviewed_at` + its interval. Three domains move it: an approved
edit (kb.sheets.operations.publish), a confirmation (kb.freshness), a question answered by the
team (kb.questions). Rather than have each of them call up into freshness (the lower ones may
not import it), one flush hook sees the column move and writes a ReviewEvent: the statistics
read those, and nothing can forget to report a sign.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import History

from kb.freshness.models import ReviewEvent
from kb.sheets.models import Sheet

# session.info key: {sheet id: kind} for the moves the freshness domain makes itself.
KINDS = "kb_review_kinds"
SIGN, CONFIRMATION, READERS = "sign", "confirmation", "readers"
_DUE = Sheet.review_due_at.fget  # type: ignore[attr-defined]  # the model's rule, on values


def note_kind(session: Any, sheet: Sheet, kind: str) -> None:
    """Say why the next move of this sheet's review date happens (default: SIGN)."""
    session.info.setdefault(KINDS, {})[sheet.id] = kind


def _record(session: Session, _context: Any, _instances: Any) -> None:
    kinds = session.info.get(KINDS, {})
    for obj in list(session.dirty):
        if not isinstance(obj, Sheet):
            continue
        history: History = inspect(obj).attrs.last_reviewed_at.history
        if not history.deleted or not history.added:
            continue
        before, after = history.deleted[0], history.added[0]
        if before is None or after is None or after <= before:
            continue
        interval: History = inspect(obj).attrs.review_interval_months.history
        months = interval.deleted[0] if interval.deleted else obj.review_interval_months
        due_before = _DUE(SimpleNamespace(last_reviewed_at=before, review_interval_months=months))
        session.add(ReviewEvent(sheet_id=obj.id, at=after, due_before=due_before,
                                kind=kinds.pop(obj.id, SIGN)))


def install() -> None:
    if not event.contains(Session, "before_flush", _record):
        event.listen(Session, "before_flush", _record)
