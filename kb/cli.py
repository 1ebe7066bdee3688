"""The `kb` commands, registered on the app by create_app() (the console script is kb/console.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from kb.config import PROJECT_ROOT
from kb.duplicates.cli import duplicates
from kb.schema import alembic_config
from kb.search.cli import index


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create or upgrade the database schema (Alembic migrations)."""
    from alembic import command

    command.upgrade(alembic_config(), "head")
    from kb.search.backend import SearchUnavailable
    from kb.search.service import get_backend, rebuild_index

    try:
        backend = get_backend()
        backend.ensure_schema()  # PostgreSQL search: extensions, text search configuration
        try:
            backend.stamps()
        except SearchUnavailable:  # no index yet (a new engine), or one of another version
            count = rebuild_index()
            click.echo(f"Index de recherche construit ({backend.name}) : {count} fiche(s).")
    except Exception as exc:  # noqa: BLE001 - e.g. no right to CREATE EXTENSION: say so, go on
        click.echo(f"Recherche : index non préparé ({exc}) ; `kb index rebuild` réessaiera.",
                   err=True)
    from kb.planner import refresh_statistics

    refresh_statistics()
    click.echo("Base de données à jour.")


@click.command("load-fixtures")
@click.option("--if-empty", is_flag=True, help="Only when the database has no sheet yet.")
@click.argument("path", required=False, type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def load_fixtures(if_empty: bool, path: str | None) -> None:
    """Load the demo data (fixtures/demo.json by default)."""
    from sqlalchemy import func, select

    from kb.extensions import db
    from kb.importers import run_import
    from kb.sheets.models import Sheet

    if if_empty and db.session.scalar(select(func.count(Sheet.id))):
        click.echo("Des fiches existent déjà : démo non chargée.")
        return
    run_import(Path(path or PROJECT_ROOT / "fixtures" / "demo.json"), "json", echo=click.echo)


@click.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", required=True,
              type=click.Choice(["bazar-text", "json", "jsonl", "csv", "data-inclusion"]),
              help="bazar-text: YesWiki/Bazar dump; json: full backup; jsonl: one sheet per "
                   "line (API objects); csv: one sheet per row; data-inclusion: services "
                   "(and structures) of data·inclusion's schema, drafts unless --publish.")
@click.option("--publish", is_flag=True,
              help="data-inclusion: publish at once instead of drafts for review.")
@with_appcontext
def import_command(path: str, fmt: str, publish: bool) -> None:
    """Import sheets from PATH; re-importing updates the same sheets."""
    from kb.importers import ImportFailed, run_import

    try:
        run_import(Path(path), fmt, echo=click.echo, publish=publish)
    except ImportFailed as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("export")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", required=True,
              type=click.Choice(["json", "jsonl", "csv", "csv-excel", "data-inclusion"]),
              help="json: full backup with history and accounts; jsonl: one published sheet "
                   "per line (API objects); csv: one published sheet per row; csv-excel: the "
                   "same rows for a spreadsheet in French (';' separator, UTF-8 BOM); "
                   "data-inclusion: {structures, services} valid against data·inclusion's "
                   "schema.")
@with_appcontext
def export_command(path: str, fmt: str) -> None:
    """Export to PATH ('-' for standard output)."""
    from kb.importers.exports import export

    if path == "-":
        count = export(sys.stdout, fmt)
    else:
        with open(path, "w", encoding="utf-8", newline="") as out:
            count = export(out, fmt)
    click.echo(f"{count} fiche(s) exportée(s).", err=True)


@click.command("repair-text")
@click.option("--dry-run", is_flag=True, help="List what would change, change nothing.")
@with_appcontext
def repair_text(dry_run: bool) -> None:
    """Replace lone surrogates ("\\ud800", text that is not valid UTF-8) stored before the API
    refused them: every page, feed and file showing them failed. They can only be in JSON
    columns (a text column refuses them); each becomes U+FFFD."""
    from sqlalchemy import JSON, select, update

    from kb.extensions import db
    from kb.text import without_lone_surrogates
    from kb.transaction import commit

    repairs = []
    for table in db.metadata.sorted_tables:
        keys = list(table.primary_key.columns)
        for column in (c for c in table.columns if isinstance(c.type, JSON)):
            if len(keys) != 1:
                continue
            rows = db.session.execute(select(keys[0], column).execution_options(yield_per=1000))
            for key, value in rows:
                repaired = without_lone_surrogates(value)
                if repaired != value:
                    repairs.append((table, keys[0], column, key, repaired))
    for table, key_column, column, key, repaired in repairs:
        click.echo(f"{table.name}.{column.name} {key_column.name}={key}")
        if not dry_run:
            db.session.execute(update(table).where(key_column == key)
                               .values({column.name: repaired}))
    if dry_run:
        click.echo(f"{len(repairs)} valeur(s) à réparer (rien n'est changé : --dry-run).")
        return
    commit()
    click.echo(f"{len(repairs)} valeur(s) réparée(s).")
    if repairs:
        click.echo("Reconstruisez l'index de recherche : kb index rebuild")


from kb.accounts.cli import moderation, tokens, users  # noqa: E402
from kb.follows.cli import follows  # noqa: E402
from kb.freshness.cli import freshness  # noqa: E402
from kb.letters.cli import letters_command  # noqa: E402
from kb.mail.cli import mail  # noqa: E402
from kb.ops.cli import backup_command, doctor_command, record_scheduled, restore_command  # noqa: E402
from kb.questions.cli import questions  # noqa: E402
from kb.serve import serve  # noqa: E402
from kb.territories.cli import territories  # noqa: E402
from kb.visits.cli import visits  # noqa: E402

mail.add_command(letters_command)  # `kb mail letters`: the letters sit above the outbox

COMMANDS = (init_db, load_fixtures, import_command, export_command, users, tokens, index,
            freshness, duplicates, moderation, questions, follows, territories, mail, serve,
            repair_text, visits, backup_command, restore_command, doctor_command)
record_scheduled(COMMANDS)  # `kb doctor` tells when a cron line stopped (kb/ops/runs.py)


def register_cli(app: Flask) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)
