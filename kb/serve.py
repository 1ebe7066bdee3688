"""`kb serve`: what `make run` does, saying only what matters.

Migrates the database, loads the demo sheets into an empty one, repairs the search index,
then serves and prints one line: "Prêt : http://HOST:PORT". A first start also says what it
created; a start with nothing to do says nothing else. Request lines follow as usual.
"""

from __future__ import annotations

import errno
import logging
import socket
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, inspect, select
from werkzeug.serving import make_server

from kb.config import PROJECT_ROOT
from kb.urls import port_mismatch, remember_served, served_url


def _quiet_migrate() -> str:
    """Apply the migrations; say in a few words what changed ('' when nothing did)."""
    # Alembic logs its plugins and "Context impl SQLiteImpl." at every start: noise here.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    from kb.extensions import db
    from kb.schema import alembic_config

    def current() -> str | None:
        with db.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    before = current()
    created = before is None and not inspect(db.engine).get_table_names()
    command.upgrade(alembic_config(), "head")
    after = current()
    if created:
        return "Base de données créée."
    if before != after:
        return f"Base de données mise à jour ({before} → {after})."
    return ""


def _cannot_listen(host: str, port: int) -> str:
    """Why the server could not listen there ('' if it can), in French."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return ("ce port est déjà utilisé par un autre programme ; choisissez-en un "
                        f"autre, par exemple : make run PORT={port + 1}")
            if exc.errno == errno.EACCES:
                return (f"le port {port} demande les droits d'administrateur ; choisissez un "
                        "port au-dessus de 1024, par exemple : make run PORT=5000")
            return (f"adresse indisponible sur cette machine ({exc.strerror or exc}) ; par "
                    "exemple : make run HOST=127.0.0.1, ou HOST=0.0.0.0 pour toutes les interfaces")
    return ""


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Adresse d'écoute (0.0.0.0 : toutes les interfaces).")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535),
              help="Port d'écoute (0 : un port libre, choisi par le système).")
@click.option("--demo/--no-demo", default=True, show_default=True,
              help="Charger les fiches de démonstration dans une base vide.")
@with_appcontext
def serve(host: str, port: int, demo: bool) -> None:
    """Prepare the database (migrations, demo sheets, search index) and serve the site."""
    from kb.extensions import db
    from kb.importers import run_import
    from kb.search.backend import IndexBusy, SearchUnavailable
    from kb.search.service import get_backend, update_index
    from kb.sheets.models import Sheet

    said = _quiet_migrate()
    if said:
        click.echo(said)
    try:
        get_backend().ensure_schema()
    except Exception as exc:  # noqa: BLE001 - e.g. no right to CREATE EXTENSION: say so, go on
        click.echo(f"Recherche : schéma non préparé ({exc}) ; `kb index rebuild` réessaiera.", err=True)
    if demo and not db.session.scalar(select(func.count(Sheet.id))):
        run_import(Path(PROJECT_ROOT / "fixtures" / "demo.json"), "json", echo=lambda *a, **k: None)
        count = db.session.scalar(select(func.count(Sheet.id)))
        click.echo(f"Démonstration chargée : {count} fiches.")
    try:
        drift = update_index()
    except (SearchUnavailable, IndexBusy) as exc:
        click.echo(f"Recherche : {exc}", err=True)
    else:
        repaired = len(drift.missing) + len(drift.stale) + len(drift.extra)
        if repaired:
            click.echo(f"Index de recherche réparé : {repaired} fiche(s).")
    db.session.remove()

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    problem = _cannot_listen(host, port)  # werkzeug would say it in English, then exit
    if problem:
        raise click.ClickException(f"impossible d'écouter sur {host}:{port} : {problem}")
    server = make_server(host, port, app, threaded=True)
    everywhere = host in ("0.0.0.0", "::", "")
    url = served_url(host, server.server_port)
    # Without KB_BASE_URL, links follow what is served (kb/urls.py): requests their own host,
    # commands run outside a request (kb export) this address, kept in instance/.
    app.config["KB_SERVED_URL"] = url
    remember_served(Path(app.config["KB_SERVED_URL_FILE"]), url)
    warning = port_mismatch(str(app.config.get("KB_BASE_URL") or ""), host, server.server_port)
    if warning:
        click.echo(warning, err=True)
    click.echo(f"Prêt : {url}"
               + (f" (à l'écoute sur toutes les interfaces, {host or '0.0.0.0'})" if everywhere else ""))
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("\nArrêté.")
    finally:
        server.server_close()
