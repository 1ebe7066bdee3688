"""`kb backup PATH [--verify]`, `kb restore PATH [--force]`, `kb doctor`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from kb.ops import snapshot
from kb.ops.runs import SCHEDULED, recorded


def _summary(result: snapshot.Verified) -> str:
    if result.kind == "pg_dump":
        return f"sauvegarde pg_dump lisible : {result.entries} élément(s)"
    rows = sum(result.counts.values())
    return (f"base SQLite intègre, schéma {result.schema or 'inconnu'}, "
            f"{result.counts.get('sheets', 0)} fiche(s), {rows} ligne(s) en tout")


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--verify", "verify_only", is_flag=True,
              help="Open the existing snapshot PATH and check it instead of writing one.")
@with_appcontext
def backup_command(path: str, verify_only: bool) -> None:
    """Snapshot the whole database to PATH while the site serves (SQLite online backup, or
    pg_dump's custom format on PostgreSQL). Run it daily (README)."""
    try:
        result = snapshot.verify(Path(path)) if verify_only else snapshot.backup(Path(path))
    except snapshot.SnapshotError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{path} : {_summary(result)}.")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="Replace an instance that already holds data.")
@with_appcontext
def restore_command(path: str, force: bool) -> None:
    """Restore a `kb backup` snapshot into this (empty) instance."""
    try:
        result = snapshot.restore(Path(path), force=force)
    except snapshot.SnapshotError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Restauré depuis {path} : {_summary(result)}.")
    # An index outside the database (Whoosh) follows the restored rows.
    from kb.search.service import update_index

    try:
        drift = update_index()
    except Exception as exc:  # noqa: BLE001 - the data is back; the index can be rebuilt later
        click.echo(f"Index de recherche non remis à jour ({exc}) : lancez `kb index rebuild`.",
                   err=True)
    else:
        if drift.total:
            click.echo(f"Index de recherche remis à jour : {drift.total} fiche(s).")


@click.command("doctor")
@with_appcontext
def doctor_command() -> None:
    """Check the instance: schema, search index, pending mail, scheduled commands, settings,
    mail server. Exit status 1 when something needs an operator."""
    from kb.ops.checks import run_checks

    results = run_checks()
    for check in results:
        mark = "ok  " if check.ok else "ÉCHEC"
        click.echo(f"{mark} {check.label} : {check.detail}")
    failing = [c for c in results if not c.ok]
    if failing:
        click.echo(f"{len(failing)} problème(s) à régler.")
        raise SystemExit(1)
    click.echo("Tout est en ordre.")


def record_scheduled(commands: Any) -> None:
    """Record each run of the README's cron commands (kb/ops/runs.py), once per process."""
    by_name = {command.name: command for command in commands}
    for item in SCHEDULED:
        words = item.name.split()
        command = by_name.get(words[0])
        for word in words[1:]:
            command = command.commands.get(word) if isinstance(command, click.Group) else None
        if command is None or command.callback is None or \
                getattr(command.callback, "kb_recorded", False):
            continue
        command.callback = recorded(item.name, command.callback)
        command.callback.kb_recorded = True
