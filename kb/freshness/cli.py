"""`kb freshness remind|status` (remind: an alias of `kb mail letters`)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from kb.letters.cli import alias


@click.group("freshness")
def freshness() -> None:
    """Review dates: reminders (through the letter), moderators' queues."""


# The digest of sheets to check now comes through the letter ("À vérifier"): the former
# command runs `kb mail letters`, so existing crontabs keep working.
freshness.add_command(alias("remind", "digest des fiches à relire"))


@freshness.command("status")
@with_appcontext
def status() -> None:
    """Print the counts moderators see on the dashboard."""
    from kb.freshness.operations import archive_candidates, due_sheets, stale_sheets

    click.echo(f"à actualiser : {len(due_sheets())}")
    click.echo(f"sans contributeur joignable : {len(stale_sheets())}")
    click.echo(f"à archiver (délai de grâce dépassé) : {len(archive_candidates())}")
