"""`kb index rebuild|update|check|optimize`: the same commands for every backend."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from kb.planner import refresh_statistics
from kb.search.backend import IndexBusy, SearchUnavailable


@click.group("index")
def index() -> None:
    """Keep the search index in step with the database (the truth)."""


@index.command("rebuild")
@with_appcontext
def rebuild() -> None:
    """Build a new index from the database and swap it in atomically."""
    from kb.search.documents import published_stamps
    from kb.search.service import get_backend, rebuild_index

    total = len(published_stamps())
    with click.progressbar(length=total, label="Indexation des fiches") as bar:
        count = rebuild_index(bar.update, background=True)
    refresh_statistics()
    click.echo(f"Index reconstruit ({get_backend().name}) : {count} fiche(s).")


@index.command("update")
@with_appcontext
def update() -> None:
    """Reconcile: add, update and delete what differs between the database and the index."""
    from kb.search.service import get_backend, update_index

    try:
        drift = update_index()
    except (SearchUnavailable, IndexBusy) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Index à jour ({get_backend().name}) : {len(drift.missing)} ajoutée(s), "
               f"{len(drift.stale)} mise(s) à jour, {len(drift.extra)} retirée(s).")


@index.command("check")
@with_appcontext
def check() -> None:
    """Report drift between the database and the index; exit 1 when there is any."""
    from kb.search.service import check_index

    try:
        drift = check_index(thorough=True)
    except SearchUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    if not drift.total:
        click.echo("Index conforme à la base.")
        return
    for label, ids in (("absentes de l'index", drift.missing),
                       ("indexées dans une version périmée", drift.stale),
                       ("indexées mais plus publiées", drift.extra)):
        if ids:
            shown = ", ".join(map(str, ids[:20])) + (" …" if len(ids) > 20 else "")
            click.echo(f"{len(ids)} fiche(s) {label} : {shown}")
    click.echo("Lancez `kb index update` pour réparer.")
    raise SystemExit(1)


@index.command("optimize")
@with_appcontext
def optimize() -> None:
    """Merge the index into as few segments as possible and refresh the database's planner
    statistics (faster searches and listings)."""
    from kb.search.service import optimize_index

    try:
        optimize_index()
    except (SearchUnavailable, IndexBusy) as exc:
        raise click.ClickException(str(exc)) from exc
    refresh_statistics()
    click.echo("Index optimisé.")
