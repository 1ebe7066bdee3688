"""Issue 28: a backup that restores everything. `kb backup` takes a consistent snapshot while
requests run and `kb restore` brings it back into a new instance with every table's rows and
the API's answers equal; the portable `json` export (version 2) carries every table but the
derived ones and restores them too; version 1 files still import."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from kb import create_app
from kb.extensions import db
from kb.importers import run_import
from kb.importers.backup import EXCLUDED, exported_tables, write_backup_v1
from kb.importers.exports import export
from kb.ops import snapshot
from kb.sheets.models import Revision, Sheet
from tests.backup_helpers import all_rows, api_answers, fill_every_table
from tests.conftest import PG_URL, sheet_data

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="builds several SQLite instances")


@contextmanager
def instance(app_config: dict[str, Any], folder: Path, tables: bool = True) -> Iterator[Flask]:
    """Another instance, empty, its own database and index."""
    folder.mkdir(parents=True, exist_ok=True)
    other = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/kb.sqlite3",
                        "KB_INDEX_DIR": str(folder / "index")})
    with other.app_context():
        if tables:
            db.create_all()
        yield other
        db.session.remove()
        db.engine.dispose()


def stamp_head() -> None:
    from alembic import command

    from kb.schema import alembic_config

    command.stamp(alembic_config(), "head")  # type: ignore[arg-type]


def test_every_table_is_exported_or_excluded_with_a_reason():
    exported = {t.name for t in exported_tables()}
    for table in db.metadata.sorted_tables:
        assert table.name in exported or EXCLUDED.get(table.name), table.name
    assert set(EXCLUDED) <= set(db.metadata.tables), "an exclusion names a table that is gone"
    for name in ("questions", "follows", "reports", "audit_entries", "duplicate_candidates",
                 "api_tokens", "outbox", "visit_slots", "visit_registrations", "structures",
                 "structure_members", "identities", "sheet_availability", "letters"):
        assert name in exported, name


def test_json_v2_restores_every_table_and_the_same_api_answers(app, app_config, make_sheet,
                                                               make_user, tmp_path):
    fill_every_table(make_sheet, make_user)
    names = [t.name for t in exported_tables()]
    before = all_rows(names)
    assert all(before[name] for name in names), [n for n in names if not before[n]]
    answers = api_answers(app)
    path = tmp_path / "sauvegarde.json"
    result = app.test_cli_runner().invoke(args=["export", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(path.read_text())["version"] == 2

    with instance(app_config, tmp_path / "b") as other:
        result = other.test_cli_runner().invoke(args=["import", str(path), "--format", "json"])
        assert result.exit_code == 0, result.output
        assert "Instance restaurée" in result.output
        after = all_rows(names)
        # The readers' cache versions move forward: whatever a cache holds from before the
        # restore is never served for the restored text (kb/cache).
        versions = "publication_versions"
        assert [row[:2] for row in after.pop(versions)] == [row[:2] for row in before[versions]]
        assert after == {name: rows for name, rows in before.items() if name != versions}
        assert api_answers(other) == answers
        check = other.test_cli_runner().invoke(args=["index", "check"])
        assert check.exit_code == 0, check.output
        # New rows after a restore get new ids (sequences follow the loaded ids).
        from kb.sheets import operations
        from kb.transaction import commit

        operations.create_sheet(sheet_data(title="Après restauration"),
                                operations.system_user())
        commit()


def test_a_version_1_file_still_imports(app, app_config, make_sheet, contributor, tmp_path):
    from kb.sheets import operations
    from kb.transaction import commit

    first = make_sheet()
    operations.edit_sheet(first.sheet, {"city": "Quimper"}, contributor, first.id, "ville")
    commit()
    moderator = first.author.email
    out = io.StringIO()
    write_backup_v1(out)
    path = tmp_path / "v1.json"
    path.write_text(out.getvalue())
    assert json.loads(out.getvalue())["version"] == 1

    with instance(app_config, tmp_path / "b"):
        counts = run_import(path, "json", echo=lambda _: None)
        assert counts["created"] == 1
        revisions = db.session.scalars(select(Revision).order_by(Revision.id)).all()
        assert [(r.status, r.author.email, r.data["city"]) for r in revisions] == [
            ("approved", moderator, "Brest"),
            ("pending", "contrib@example.org", "Quimper")]


def test_a_v2_file_into_an_instance_with_data_merges_users_and_sheets(
        app, app_config, make_sheet, tmp_path):
    make_sheet(title="Jardin partagé")
    out = io.StringIO()
    export(out, "json")
    path = tmp_path / "v2.json"
    path.write_text(out.getvalue())
    with instance(app_config, tmp_path / "b") as other:
        operations_user = other.test_cli_runner().invoke(
            args=["users", "create", "deja@example.org", "--password", "mot-de-passe-solide"])
        assert operations_user.exit_code == 0
        messages: list[str] = []
        counts = run_import(path, "json", echo=messages.append)
        assert counts["created"] == 1
        assert "seuls les comptes et les fiches" in messages[0]
        assert db.session.scalar(select(Sheet.slug)) == "jardin-partage"


def _writer(app: Flask, stop: threading.Event, done: list[int]) -> None:
    """Requests while the backup runs: sheets created through the API, pages read."""
    from kb.auth.models import User
    from tests.conftest import token_for

    with app.app_context():
        user = db.session.scalar(select(User).where(User.role == "moderator"))
        assert user is not None
        headers = {"Authorization": f"Bearer {token_for(user)}"}
        db.session.commit()
    client = app.test_client()
    n = 0
    while not stop.is_set() and n < 200:
        n += 1
        answer = client.post("/api/v1/sheets", json=sheet_data(title=f"Fiche concurrente {n}"),
                             headers=headers)
        assert answer.status_code == 201, answer.get_json()
        assert client.get("/api/v1/sheets").status_code == 200
        done.append(n)


def test_backup_while_requests_run_then_restore_on_a_fresh_instance(
        app, app_config, make_sheet, make_user, tmp_path):
    stamp_head()
    fill_every_table(make_sheet, make_user)
    stop, done = threading.Event(), []
    writer = threading.Thread(target=_writer, args=(app, stop, done))
    writer.start()
    try:
        while len(done) < 3:
            threading.Event().wait(0.05)
        path = tmp_path / "sauvegardes" / "kb.sqlite3"
        result = app.test_cli_runner().invoke(args=["backup", str(path)])
        during = len(done)
    finally:
        stop.set()
        writer.join()
    assert result.exit_code == 0, result.output
    from kb.ops.checks import schema_heads

    assert f"base SQLite intègre, schéma {schema_heads()[0]}" in result.output
    assert not path.with_name("kb.sqlite3.partiel").exists()
    verified = app.test_cli_runner().invoke(args=["backup", "--verify", str(path)])
    assert verified.exit_code == 0 and "intègre" in verified.output

    with instance(app_config, tmp_path / "b", tables=False) as other:
        result = other.test_cli_runner().invoke(args=["restore", str(path)])
        assert result.exit_code == 0, result.output
        # A consistent state: whole sheets, each with its approved revision, index clean.
        concurrent = db.session.scalar(select(func.count()).where(
            Sheet.slug.like("fiche-concurrente-%")))
        assert 3 <= concurrent <= during + 1
        assert db.session.scalar(select(func.count()).where(
            Sheet.approved_revision_id.is_(None))) == 0
        check = other.test_cli_runner().invoke(args=["index", "check"])
        assert check.exit_code == 0, check.output

    # Quiet now: a second snapshot equals the instance, table by table and answer by answer.
    quiet = tmp_path / "calme.sqlite3"
    assert app.test_cli_runner().invoke(args=["backup", str(quiet)]).exit_code == 0
    # (command_runs: the backup's own run ends after its snapshot.)
    tables = [t.name for t in db.metadata.sorted_tables if t.name != "command_runs"]
    before, answers = all_rows(tables), api_answers(app)
    with instance(app_config, tmp_path / "c", tables=False) as other:
        assert other.test_cli_runner().invoke(args=["restore", str(quiet)]).exit_code == 0
        assert all_rows(tables) == before
        assert api_answers(other) == answers


def test_restore_refuses_an_instance_with_data_unless_forced(app, app_config, make_sheet,
                                                             tmp_path):
    stamp_head()
    make_sheet(title="Dans la sauvegarde")
    path = tmp_path / "s.sqlite3"
    snapshot.backup(path)
    with instance(app_config, tmp_path / "b") as other:
        stamp_head()
        from kb.sheets import operations
        from kb.transaction import commit

        operations.create_sheet(sheet_data(title="Déjà là"), operations.system_user())
        commit()
        refused = other.test_cli_runner().invoke(args=["restore", str(path)])
        assert refused.exit_code == 1
        assert "contient déjà des données" in refused.output and "--force" in refused.output
        assert db.session.scalar(select(Sheet.slug)) == "deja-la"
        forced = other.test_cli_runner().invoke(args=["restore", str(path), "--force"])
        assert forced.exit_code == 0, forced.output
        assert list(db.session.scalars(select(Sheet.slug))) == ["dans-la-sauvegarde"]


def test_verify_refuses_what_is_not_a_snapshot(app, tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"bonjour")
    result = app.test_cli_runner().invoke(args=["backup", "--verify", str(junk)])
    assert result.exit_code == 1
    assert "n'est ni une base SQLite ni une sauvegarde pg_dump" in result.output
    damaged = tmp_path / "damaged.sqlite3"
    stamp_head()
    snapshot.backup(damaged)
    raw = bytearray(damaged.read_bytes())
    raw[4096:8192] = b"\xff" * 4096  # a page of the file overwritten
    damaged.write_bytes(bytes(raw))
    result = app.test_cli_runner().invoke(args=["backup", "--verify", str(damaged)])
    assert result.exit_code == 1, result.output


def test_pg_dump_missing_is_named_in_french(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(snapshot.SnapshotError) as failure:
        snapshot._tool("pg_dump")
    assert "« pg_dump » est introuvable dans le PATH" in str(failure.value)
    assert "postgresql-client" in str(failure.value)
