"""`kb duplicates scan|rebuild`."""

from __future__ import annotations

import os
import sys
import time

import click
from click._termui_impl import ProgressBar
from flask.cli import with_appcontext

from kb.duplicates.similarity import SCAN
from kb.wording import french_number

OPTIMIZE_AFTER = 1000  # rewritten sheets after which planner statistics are refreshed


def _bar(length: int, label: str, quiet: bool = False) -> ProgressBar[int]:
    return click.progressbar(length=length, label=label,
                             file=open(os.devnull, "w") if quiet else sys.stderr)  # noqa: SIM115


@click.group("duplicates")
def duplicates() -> None:
    """Find duplicate sheets (the moderators' queue is /moderation/doublons)."""


@duplicates.command("scan")
@click.option("--min-score", type=click.FloatRange(0, 1), default=SCAN, show_default=True,
              help="Queue pairs scoring at least this much.")
@click.option("--rebuild", is_flag=True, help="Recompute the whole lookup index first.")
@click.option("--quiet", is_flag=True,
              help="No progress bars, and a summary only when new pairs are queued (cron).")
@with_appcontext
def scan(min_score: float, rebuild: bool, quiet: bool) -> None:
    """Find candidate pairs across the whole base and add them to the moderators' queue.

    The lookup index is repaired first (sheets changed while it was not kept up to date);
    pairs already in the queue or judged "pas un doublon" are not proposed again. Each
    publication is already compared with the base as it happens; run this on a schedule
    (cron, see the README) to catch the rest (bulk imports, repaired drift).
    """
    from kb.duplicates import index, operations
    from kb.transaction import commit

    started = time.monotonic()
    stale = index.all_sheet_ids() if rebuild else index.stale_sheet_ids()
    if stale:
        with _bar(len(stale), "Index des doublons", quiet) as bar:
            index.sync(stale, progress=bar.update, commit=commit)
        if len(stale) >= OPTIMIZE_AFTER:
            index.optimize()
    known = operations.known_pairs()
    total = len(index.indexed_ids())
    new = found = 0
    with _bar(total, "Recherche des doublons", quiet) as bar:
        batch: list[tuple[int, int, float]] = []
        for pair in index.pairs(min_score, progress=bar.update):
            found += 1
            batch.append(pair)
            if len(batch) >= 200:
                new += operations.add_scanned(batch, known)
                commit()
                batch = []
        new += operations.add_scanned(batch, known)
        commit()
    if not quiet or new:
        click.echo(f"{french_number(total)} fiche(s) analysée(s) en "
                   f"{french_number(time.monotonic() - started, 1)} s : "
                   f"{found} paire(s) semblable(s), {new} nouvelle(s) dans la file des "
                   "modérateurs.")


@duplicates.command("rebuild")
@with_appcontext
def rebuild() -> None:
    """Recompute the similarity index of every published sheet from the database."""
    from kb.duplicates import index
    from kb.transaction import commit

    ids = index.all_sheet_ids()
    with _bar(len(ids), "Index des doublons") as bar:
        index.sync(ids, progress=bar.update, commit=commit)
    index.optimize()
    click.echo(f"{len(index.indexed_ids())} fiche(s) indexée(s).")
