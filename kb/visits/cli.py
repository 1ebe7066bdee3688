"""`kb visits decide` (cron, hourly)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.group("visits")
def visits() -> None:
    """Visites apprenantes : décision au minimum de participants, rappels."""


@visits.command("decide")
@with_appcontext
def decide() -> None:
    """Confirm or cancel the slots whose decision date has come, remind registrants two days
    before; idempotent (run it hourly)."""
    from kb.visits.operations import decide as run

    report = run()
    click.echo(f"{report.warned} accueil(s) prévenu(s) du minimum non atteint, "
               f"{report.confirmed} créneau(x) confirmé(s), {report.cancelled} annulé(s) "
               f"faute de participants, {report.reminded} rappel(s), {report.done} terminé(s).")
