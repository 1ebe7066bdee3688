"""Runs of the scheduled commands: each cron line's command records when it last started and
finished, so that `kb doctor` and the dashboard can say that a line stopped running."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from kb.extensions import db
from kb.timeutil import utcnow


@dataclass(frozen=True)
class Scheduled:
    name: str          # the command after `kb`
    every: str         # how the README's cron block runs it (French)
    late_after: timedelta  # a run older than this: the line has stopped


# The README's cron block, one row per line (docs/operations.md).
SCHEDULED = (
    Scheduled("mail send", "chaque minute", timedelta(minutes=15)),
    Scheduled("mail letters", "chaque heure", timedelta(hours=3)),
    Scheduled("visits decide", "chaque heure", timedelta(hours=3)),
    Scheduled("questions remind", "chaque jour", timedelta(days=2)),
    Scheduled("duplicates scan", "chaque nuit", timedelta(days=2)),
    Scheduled("index optimize", "chaque semaine", timedelta(days=8)),
    Scheduled("backup", "chaque jour", timedelta(days=2)),
)


def _write(name: str, **values: Any) -> None:
    # Its own connection and transaction: the command's own work (or its failure) is apart.
    from kb.ops.models import CommandRun

    table = CommandRun.__table__
    with db.engine.begin() as conn:
        updated = conn.execute(table.update().where(table.c.name == name).values(**values))
        if not updated.rowcount:
            conn.execute(table.insert().values(name=name, **{
                "started_at": utcnow(), "ok": True, "error": "", **values}))


def recorded(name: str, callback: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command's callback so that each run is recorded. A failure to record (a
    database not migrated yet) never stops the command itself."""

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        safe(name, started_at=utcnow(), finished_at=None)
        try:
            result = callback(*args, **kwargs)
        except SystemExit as exc:
            ok = exc.code in (0, None)
            safe(name, finished_at=utcnow(), ok=ok,
                 error="" if ok else f"code de sortie {exc.code}")
            raise
        except BaseException as exc:
            safe(name, finished_at=utcnow(), ok=False, error=f"{type(exc).__name__}: {exc}"[:500])
            raise
        safe(name, finished_at=utcnow(), ok=True, error="")
        return result

    return run


def safe(name: str, **values: Any) -> None:
    # No table yet (a database not migrated): the command runs all the same.
    with contextlib.suppress(Exception):
        _write(name, **values)


def last_runs() -> dict[str, Any]:
    from kb.ops.models import CommandRun

    return {run.name: run for run in db.session.scalars(select(CommandRun))}
