"""`kb backup|restore`: a consistent copy of the whole database, taken while the site serves.

SQLite: the online backup API (a read transaction sees one committed state while writers go
on, WAL). PostgreSQL: `pg_dump` in its custom format, `pg_restore` back (the client tools must
be on the PATH). The copy holds everything, the search index of SQLite included."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import make_url

from kb.extensions import db


class SnapshotError(Exception):
    """A backup or restore that cannot be made; the message is French."""


@dataclass
class Verified:
    kind: str                          # "sqlite" or "pg_dump"
    schema: str = ""                   # Alembic revision in the copy
    counts: dict[str, int] = field(default_factory=dict)  # rows per table (SQLite)
    entries: int = 0                   # objects listed (pg_dump)


def _dialect() -> str:
    return db.engine.dialect.name


def _sqlite_path() -> Path:
    database = make_url(str(db.engine.url)).database
    if not database or database == ":memory:":
        raise SnapshotError("base SQLite en mémoire : rien à sauvegarder")
    return Path(database)


def _libpq_url() -> str:
    # libpq speaks "postgresql://", not SQLAlchemy's "postgresql+psycopg://".
    url = make_url(str(db.engine.url)).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise SnapshotError(f"« {name} » est introuvable dans le PATH : installez le client "
                            "PostgreSQL (paquet postgresql-client, de la version du serveur ou "
                            "plus récente), puis relancez")
    return found


def _run(args: list[str]) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SnapshotError(f"{Path(args[0]).name} a échoué : {done.stderr.strip()[:500]}")
    return done.stdout


def backup(target: Path) -> Verified:
    """Write a snapshot to `target` (atomically: a temporary file renamed at the end)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partiel")
    partial.unlink(missing_ok=True)
    try:
        if _dialect() == "sqlite":
            source = sqlite3.connect(_sqlite_path(), timeout=30)
            copy = sqlite3.connect(partial)
            try:
                with copy:
                    source.backup(copy)  # one read transaction: one committed state
                # One self-contained file (no -wal beside it).
                copy.execute("PRAGMA journal_mode=DELETE")
            finally:
                copy.close()
                source.close()
        elif _dialect() == "postgresql":
            _run([_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={partial}",
                  f"--dbname={_libpq_url()}"])
        else:
            raise SnapshotError(f"base « {_dialect()} » non prise en charge")
        result = verify(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return result


def verify(path: Path) -> Verified:
    """Open the snapshot and check it: SQLite's integrity check, the schema revision and the
    rows of each table; for a pg_dump file, its table of contents."""
    path = Path(path)
    if not path.is_file():
        raise SnapshotError(f"{path} : fichier introuvable")
    with path.open("rb") as handle:
        magic = handle.read(16)
    if magic.startswith(b"PGDMP"):
        listing = _run([_tool("pg_restore"), "--list", str(path)])
        entries = [line for line in listing.splitlines() if line and not line.startswith(";")]
        if not any(" TABLE DATA " in line and " sheets " in line for line in entries):
            raise SnapshotError(f"{path} : la sauvegarde ne contient pas la table des fiches")
        return Verified("pg_dump", entries=len(entries))
    if not magic.startswith(b"SQLite format 3"):
        raise SnapshotError(f"{path} n'est ni une base SQLite ni une sauvegarde pg_dump")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        status = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if status != "ok":
            raise SnapshotError(f"{path} est endommagée : {status}")
        tables = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        if "sheets" not in tables or "alembic_version" not in tables:
            raise SnapshotError(f"{path} n'est pas une base de la base de connaissances")
        schema = ", ".join(row[0] for row in conn.execute("SELECT version_num FROM "
                                                          "alembic_version"))
        counts = {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
                  for name in sorted(db.metadata.tables) if name in tables}
    except sqlite3.DatabaseError as exc:
        raise SnapshotError(f"{path} illisible : {exc}") from exc
    finally:
        conn.close()
    return Verified("sqlite", schema=schema, counts=counts)


def instance_rows() -> int:
    """Rows in the tables that hold content (runs of commands aside): 0 for a new instance."""
    existing = set(inspect(db.engine).get_table_names())
    total = 0
    for table in db.metadata.sorted_tables:
        if table.name in existing and table.name != "command_runs":
            total += db.session.scalar(select(func.count()).select_from(table)) or 0
    db.session.rollback()
    return total


def restore(source: Path, force: bool = False) -> Verified:
    """Replace this instance's database by the snapshot. Refuses an instance that holds
    data unless `force`."""
    checked = verify(source)
    if not force and instance_rows():
        raise SnapshotError("cette instance contient déjà des données : la restauration les "
                            "remplacerait. Restaurez dans une instance vide, ou ajoutez --force")
    if checked.kind == "pg_dump":
        if _dialect() != "postgresql":
            raise SnapshotError("une sauvegarde pg_dump se restaure dans une base PostgreSQL "
                                "(pour passer de l'une à l'autre : kb export --format json)")
        db.session.remove()
        db.engine.dispose()
        _run([_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--exit-on-error",
              f"--dbname={_libpq_url()}", str(source)])
        return checked
    if _dialect() != "sqlite":
        raise SnapshotError("une sauvegarde SQLite se restaure dans une base SQLite (pour "
                            "passer de l'une à l'autre : kb export --format json)")
    db.session.remove()
    db.engine.dispose()
    target = _sqlite_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    copy = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    live = sqlite3.connect(target, timeout=30)
    try:
        with live:
            copy.backup(live)  # page by page, under the target's write lock
        live.execute("PRAGMA journal_mode=WAL")
    finally:
        live.close()
        copy.close()
    return checked
