"""`kb territories backfill`."""

from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.group("territories")
def territories() -> None:
    """Official territories (communes, EPCI, départements, régions) of the sheets."""


@territories.command("backfill")
@click.option("--dry-run", is_flag=True, help="Report only, change nothing.")
@with_appcontext
def backfill_command(dry_run: bool) -> None:
    """Derive the official codes of existing sheets and report what stays unresolved.

    For sheets written before the register, or after a newer register was installed: each
    approved place (commune name or code, département, région) is resolved as a new write
    would be; ambiguous names are never guessed and are listed for a moderator to fix.
    """
    from kb.sheets.places import backfill
    from kb.transaction import commit

    report = backfill(dry_run=dry_run)
    if not dry_run:
        commit()
    click.echo(f"Résolues : {len(report.resolved)} fiche(s) "
               f"({len(report.updated)} {'à mettre' if dry_run else 'mise(s)'} à jour).")
    click.echo(f"Ambiguës : {len(report.ambiguous)} fiche(s).")
    for slug, name, labels in report.ambiguous:
        click.echo(f"  {slug} : « {name} » peut être {', '.join(labels)} ; "
                   "choisissez la commune sur /moderation/lieux.")
    click.echo(f"Inconnues : {len(report.unknown)} fiche(s).")
    for slug, name in report.unknown:
        click.echo(f"  {slug} : « {name} » n'est pas une commune du registre officiel.")
    click.echo(f"Sans lieu : {len(report.no_place)} fiche(s).")
