"""`kb freshness remind|status`."""

from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.group("freshness")
def freshness() -> None:
    """Review dates: digest reminders to contributors, moderators' queues."""


@freshness.command("remind")
@with_appcontext
def remind() -> None:
    """Send each contributor one digest of their due sheets (at most once per period)."""
    from kb.freshness.operations import send_reminders

    run = send_reminders()
    for user, sheets in run.sent:
        click.echo(f"digest envoyé à {user.email} : {len(sheets)} fiche(s) — "
                   + ", ".join(s.slug for s in sheets))
    for user in run.already_reminded:
        click.echo(f"déjà relancé pendant la période : {user.email}")
    for user, error in run.failed:
        click.echo(f"échec pour {user.email} : {error}", err=True)
    for sheet in run.stale:
        click.echo(f"sans contributeur joignable (file « à reprendre » des modérateurs) : "
                   f"{sheet.slug}")
    click.echo(f"{len(run.sent)} digest(s) envoyé(s), {len(run.already_reminded)} déjà relancé(s), "
               f"{len(run.failed)} échec(s), {len(run.stale)} fiche(s) sans contributeur joignable.")
    if run.failed:
        raise SystemExit(1)


@freshness.command("status")
@with_appcontext
def status() -> None:
    """Print the counts moderators see on the dashboard."""
    from kb.freshness.operations import archive_candidates, due_sheets, stale_sheets

    click.echo(f"à actualiser : {len(due_sheets())}")
    click.echo(f"sans contributeur joignable : {len(stale_sheets())}")
    click.echo(f"à archiver (délai de grâce dépassé) : {len(archive_candidates())}")
