"""The one commit point. Listeners (the search index...) hear of changed sheets after commit."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from blinker import Namespace
from flask import current_app

from kb.extensions import db

log = logging.getLogger(__name__)
_signals = Namespace()

# Sent after a successful commit with `sheet_ids`: sheets whose published state may have changed.
sheets_changed = _signals.signal("sheets-changed")

_CHANGED = "kb_changed_sheets"


def mark_changed(sheet_ids: Iterable[int]) -> None:
    db.session.info.setdefault(_CHANGED, set()).update(sheet_ids)


def commit() -> None:
    changed: set[int] = db.session.info.pop(_CHANGED, set())
    try:
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    if changed:
        # The database is the truth: a listener's failure must not undo or hide the commit.
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        for receiver in sheets_changed.receivers_for(app):
            try:
                receiver(app, sheet_ids=sorted(changed))
            except Exception:  # noqa: BLE001
                log.exception("after-commit listener failed; `kb index update` will reconcile")
