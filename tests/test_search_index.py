"""Index lifecycle: the database is the truth; the index follows commits, and drift is reported
and repaired by `kb index check|update|rebuild` on every backend."""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from kb.extensions import db
from kb.importers import run_import
from kb.search.documents import load_documents
from kb.search.service import get_backend, search_sheets
from kb.sheets import operations
from kb.sheets.models import Revision, SheetState
from kb.transaction import commit, mark_changed
from tests.search_helpers import BACKENDS


@pytest.fixture(params=BACKENDS)
def app_config(request: pytest.FixtureRequest, app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "KB_SEARCH_BACKEND": request.param}


@contextmanager
def listener_off() -> Iterator[None]:
    """Commits made here never reach the index: for an index outside the database, a crash
    right after the commit; for one inside (sqlite), a tool writing behind the application."""
    import kb.search.views as views

    original = views.index_changed
    views.index_changed = lambda *args, **kwargs: None
    db.session.info["kb_search_off"] = True
    try:
        yield
    finally:
        views.index_changed = original
        db.session.info.pop("kb_search_off", None)


def titles(q: str) -> list[str]:
    return [item["title"] for item in search_sheets(q)["items"]]


def kb(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["index", *args])


def set_version(app: Flask, version: str | None) -> None:
    """Pretend the index was written by another version of the software (or never built)."""
    backend = get_backend()
    if backend.name == "whoosh":
        root = Path(app.config["KB_INDEX_DIR"])
        current = root / (root / "CURRENT").read_text().strip()
        if version is None:
            (root / "CURRENT").unlink()
        else:
            (current / "kb_schema_version").write_text(version)
    elif backend.name == "sqlite":
        with db.engine.begin() as conn:
            if version is None:
                conn.execute(text("DELETE FROM search_fts_meta"))
            else:
                conn.execute(text("UPDATE search_fts_meta SET value = :v"), {"v": version})
    else:
        with db.engine.begin() as conn:
            comment = "NULL" if version is None else f"'kb-search-schema {version}'"
            conn.execute(text(f"COMMENT ON TABLE search_documents IS {comment}"))
    app.extensions.pop("kb_search")  # a new process: nothing cached


def test_the_index_follows_commits(make_sheet: Callable[..., Revision], moderator: Any) -> None:
    revision = make_sheet(title="Ressourcerie solidaire")
    assert titles("ressourcerie") == ["Ressourcerie solidaire"]
    operations.edit_sheet(revision.sheet, {"title": "Recyclerie solidaire"}, moderator,
                          revision.id)
    commit()
    assert titles("ressourcerie") == []
    assert titles("recyclerie") == ["Recyclerie solidaire"]


def test_a_failed_index_write_keeps_the_commit_and_update_repairs(
        app: Flask, make_sheet: Callable[..., Revision], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    make_sheet(title="Première fiche")  # the index exists from here

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disque plein")

    if get_backend().name == "sqlite":  # documents are built inside the commit
        monkeypatch.setattr("kb.search.sqlite_backend.load_documents", broken)
    else:
        monkeypatch.setattr(type(get_backend()), "index", broken)
    revision = make_sheet(title="Ressourcerie solidaire")
    assert revision.id is not None and revision.sheet.is_published  # committed all the same
    assert "kb index update" in caplog.text
    assert titles("ressourcerie") == []
    monkeypatch.undo()

    check = kb(app, "check")
    assert check.exit_code == 1 and "1 fiche(s) absentes de l'index" in check.output
    assert kb(app, "update").exit_code == 0
    assert kb(app, "check").exit_code == 0
    assert titles("ressourcerie") == ["Ressourcerie solidaire"]


def test_writes_that_bypassed_the_listener_are_reported_then_repaired(
        app: Flask, make_sheet: Callable[..., Revision], moderator: Any) -> None:
    kept = make_sheet(title="Fiche stable")
    edited = make_sheet(title="Ancien titre")
    hidden = make_sheet(title="Fiche masquée")
    with listener_off():  # as if the process had died right after the commit
        make_sheet(title="Fiche oubliée")
        operations.edit_sheet(edited.sheet, {"title": "Nouveau titre"}, moderator, edited.id)
        hidden.sheet.state = SheetState.HIDDEN.value
        mark_changed([hidden.sheet_id])
        commit()
    check = kb(app, "check")
    assert check.exit_code == 1
    assert "1 fiche(s) absentes" in check.output
    assert "1 fiche(s) indexées dans une version périmée" in check.output
    assert "1 fiche(s) indexées mais plus publiées" in check.output
    update = kb(app, "update")
    assert update.exit_code == 0 and "1 ajoutée(s), 1 mise(s) à jour, 1 retirée(s)" in update.output
    assert kb(app, "check").exit_code == 0
    assert titles("oubliee") == ["Fiche oubliée"]
    assert titles("nouveau titre") == ["Nouveau titre"]
    assert titles("masquee") == []
    assert titles("stable") == [kept.sheet.title]


CRASHING_WRITER = """
import json, os, sys
from kb import create_app
from kb.search.documents import load_documents
from kb.search.service import get_backend, rebuild_index

config, ids, what = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
app = create_app(config)
with app.app_context():
    backend = get_backend()
    if backend.name == "whoosh":
        import whoosh.writing
        whoosh.writing.SegmentWriter.commit = lambda self, *a, **k: os._exit(9)
    elif backend.name == "sqlite":
        import kb.search.sqlite_backend as sqlite_backend
        write = sqlite_backend._write
        def write_then_die(*args, **kwargs):
            write(*args, **kwargs)
            os._exit(9)
        sqlite_backend._write = write_then_die
    else:
        from kb.search.postgres_backend import PostgresBackend
        write = PostgresBackend._write
        def write_then_die(*args, **kwargs):
            write(*args, **kwargs)
            os._exit(9)
        PostgresBackend._write = staticmethod(write_then_die)
    if what == "rebuild":
        rebuild_index()
    else:
        backend.index(load_documents, ids)
"""


@pytest.mark.parametrize("what", ["index", "rebuild"])
def test_a_process_killed_while_indexing_leaves_a_readable_index_that_update_repairs(
        app: Flask, app_config: dict[str, Any], make_sheet: Callable[..., Revision],
        moderator: Any, what: str) -> None:
    revision = make_sheet(title="Épicerie sociale")
    with listener_off():
        operations.edit_sheet(revision.sheet, {"title": "Épicerie solidaire"}, moderator,
                              revision.id)
        commit()
    config = {**app_config, "SQLALCHEMY_DATABASE_URI": str(db.engine.url.render_as_string(
        hide_password=False))}
    killed = subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER, json.dumps(config),
         json.dumps([revision.sheet_id]), what], capture_output=True, timeout=120)
    assert killed.returncode == 9, killed.stderr.decode()[-2000:]

    # The index is still the old one (the database no longer says "sociale").
    assert [i["slug"] for i in search_sheets("sociale")["items"]] == [revision.sheet.slug]
    check = kb(app, "check")
    assert check.exit_code == 1 and "version périmée" in check.output
    assert kb(app, "update").exit_code == 0
    assert kb(app, "check").exit_code == 0
    assert titles("solidaire") == ["Épicerie solidaire"]
    make_sheet(title="Après la panne")  # the writer lock was released by the dead process
    assert titles("panne") == ["Après la panne"]


def test_writers_in_parallel_never_fail(app: Flask, make_sheet: Callable[..., Revision]) -> None:
    ids = [make_sheet(title=f"Fiche parallèle {n}").sheet_id for n in range(6)]
    errors: list[BaseException] = []

    def write(chunk: list[int]) -> None:
        with app.app_context():
            try:
                for _ in range(3):
                    get_backend().index(load_documents, chunk)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=write, args=(ids[n::3],)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert search_sheets("parallele")["total"] == 6
    assert kb(app, "check").exit_code == 0


def test_a_busy_writer_lock_times_out_into_drift_not_an_error(
        app: Flask, client: FlaskClient, make_sheet: Callable[..., Revision],
        login: Callable[[Any], None], moderator: Any) -> None:
    make_sheet(title="Première fiche")
    backend = get_backend()
    if backend.name != "whoosh":
        pytest.skip("the file lock belongs to the Whoosh backend")
    backend.lock_timeout = 0.2  # type: ignore[attr-defined]
    with open(Path(app.config["KB_INDEX_DIR"]) / "write.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another worker writing for a long time
        login(moderator)
        from tests.conftest import sheet_data
        response = client.post("/fiches/nouvelle", data={
            **{k: v if not isinstance(v, list) else ", ".join(v)
               for k, v in sheet_data(  # its own content, or the duplicates check steps in
                   title="Garage solidaire", summary="", stakes="", method="", results="",
                   actor_name="", partners=[], tags=["mobilité"],
                   context="Des voitures réparées à prix coûtant.").items()}, "comment": "x"})
        assert response.status_code == 302
        fcntl.flock(held, fcntl.LOCK_UN)
    assert titles("garage") == []
    assert kb(app, "update").exit_code == 0
    assert titles("garage") == ["Garage solidaire"]


def test_a_schema_version_mismatch_says_rebuild(app: Flask, client: FlaskClient,
                                                make_sheet: Callable[..., Revision]) -> None:
    make_sheet(title="Accueil de jour")
    set_version(app, "999")
    page = client.get("/recherche?q=accueil")
    assert page.status_code == 200
    assert "en cours de reconstruction" in page.get_data(as_text=True)
    api = client.get("/api/v1/search?q=accueil")
    assert api.status_code == 503 and "reconstruction" in api.json["message"]
    assert client.get("/").status_code == 200  # the rest of the site still works
    check = kb(app, "check")
    assert check.exit_code != 0 and "kb index rebuild" in check.output
    update = kb(app, "update")
    assert update.exit_code != 0 and "kb index rebuild" in update.output
    rebuild = kb(app, "rebuild")
    assert rebuild.exit_code == 0 and "1 fiche(s)" in rebuild.output
    assert titles("accueil") == ["Accueil de jour"]


def test_a_missing_index_is_rebuilt_from_the_database(
        app: Flask, client: FlaskClient, make_sheet: Callable[..., Revision]) -> None:
    make_sheet(title="Accueil de jour")
    if get_backend().name == "whoosh":
        shutil.rmtree(app.config["KB_INDEX_DIR"])
        app.extensions.pop("kb_search")
    else:
        set_version(app, None)
    page = client.get("/recherche?q=accueil")
    assert page.status_code == 200 and "en cours de reconstruction" in page.get_data(as_text=True)
    make_sheet(title="Bagagerie solidaire")  # the next write rebuilds everything
    assert search_sheets("")["total"] == 2
    assert titles("bagagerie") == ["Bagagerie solidaire"]


def test_a_corrupt_index_does_not_stop_the_site(app: Flask, client: FlaskClient,
                                                make_sheet: Callable[..., Revision]) -> None:
    make_sheet(title="Accueil de jour")
    if get_backend().name == "postgres":
        pytest.skip("PostgreSQL keeps its own files consistent")
    if get_backend().name == "sqlite":  # FTS5's pages overwritten behind its back
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE search_fts_data SET block = x'00ff00ff'"))
    else:
        root = Path(app.config["KB_INDEX_DIR"])
        current = root / (root / "CURRENT").read_text().strip()
        for path in current.iterdir():
            if path.name != "kb_schema_version":
                path.write_bytes(b"\x00garbage" * 10)
    app.extensions.pop("kb_search")
    page = client.get("/recherche?q=accueil")
    assert page.status_code == 200
    if get_backend().name == "whoosh":
        assert "en cours de reconstruction" in page.get_data(as_text=True)
        assert client.get("/api/v1/search?q=accueil").status_code == 503
    else:  # FTS5 reads what it can; its integrity check tells
        assert client.get("/api/v1/search?q=accueil").status_code in (200, 503)
    check = kb(app, "check")
    assert check.exit_code != 0 and "kb index rebuild" in check.output
    assert kb(app, "rebuild").exit_code == 0
    assert titles("accueil") == ["Accueil de jour"]


def test_rebuild_swaps_a_new_index_in(app: Flask, make_sheet: Callable[..., Revision]) -> None:
    for n in range(3):
        make_sheet(title=f"Fiche {n} de la maison")
    first = kb(app, "rebuild")
    assert first.exit_code == 0 and "3 fiche(s)" in first.output
    assert kb(app, "rebuild").exit_code == 0
    assert search_sheets("maison")["total"] == 3
    if get_backend().name == "whoosh":
        root = Path(app.config["KB_INDEX_DIR"])
        generations = sorted(p.name for p in root.iterdir() if p.name.startswith("gen-"))
        assert len(generations) == 2  # the live one and the previous one, no more
        assert (root / "CURRENT").read_text().strip() in generations
    assert kb(app, "optimize").exit_code == 0
    assert search_sheets("maison")["total"] == 3


def test_an_import_batch_is_indexed_in_one_writer_commit(
        app: Flask, tmp_path: Path, make_sheet: Callable[..., Revision],
        monkeypatch: pytest.MonkeyPatch) -> None:
    make_sheet(title="Première fiche")
    monkeypatch.setattr("kb.importers.tabular.BATCH", 5)
    backend = get_backend()
    calls: list[int] = []
    # An index in the database is written inside the batch's own commit, others after it.
    method = "write_in_session" if backend.name == "sqlite" else "index"
    original = getattr(type(backend), method)

    def counting(self: Any, load: Any, sheet_ids: Any) -> None:
        calls.append(len(sheet_ids))
        original(self, load, sheet_ids)

    monkeypatch.setattr(type(backend), method, counting)
    path = tmp_path / "sheets.jsonl"
    titles_ = ("Bibliothèque de rue", "Garage solidaire", "Repair café", "Épicerie sociale",
               "Jardin partagé", "Bus numérique", "Café des aidants", "Permanence juridique",
               "Ressourcerie", "Auto-école sociale", "Bricothèque", "Atelier vélo")
    # Distinct initiatives: near-identical ones would be matched as duplicates by the import.
    path.write_text("\n".join(json.dumps({"title": title}) for title in titles_),
                    encoding="utf-8")
    run_import(path, "jsonl", echo=lambda _: None)
    assert calls == [5, 5, 2]
    assert search_sheets("bibliotheque")["total"] == 1
    assert kb(app, "check").exit_code == 0


def test_ensure_schema_is_idempotent_and_an_empty_base_searches(app: Flask) -> None:
    assert search_sheets("accueil")["total"] == 0
    backend = get_backend()
    backend.ensure_schema()
    backend.ensure_schema()
    update = kb(app, "update")
    assert update.exit_code == 0, update.output
    assert kb(app, "check").exit_code == 0
    assert search_sheets("accueil")["total"] == 0
    assert search_sheets("")["unavailable"] is False


def test_rows_edited_behind_the_application_are_reported_then_repaired(
        app: Flask, make_sheet: Callable[..., Revision], moderator: Any) -> None:
    """An index in the database cannot miss a commit of the application; `kb index check`
    still catches what another program did to the tables."""
    import sqlite3

    if get_backend().name != "sqlite":
        pytest.skip("the index tables are SQLite's")
    first = make_sheet(title="Recyclerie du port")
    second = make_sheet(title="Laverie solidaire")
    third = make_sheet(title="Jardin des plantes")
    fourth = make_sheet(title="Cantine des aînés")
    operations.edit_sheet(second.sheet, {"title": "Laverie sociale"}, moderator, second.id)
    commit()
    assert kb(app, "check").exit_code == 0
    outside = sqlite3.connect(str(db.engine.url.database))
    with outside:  # another program, knowing nothing of the index
        outside.execute("UPDATE sheets SET state = 'hidden' WHERE id = ?", (first.sheet_id,))
        outside.execute("UPDATE sheets SET approved_revision_id = ? WHERE id = ?",
                        (second.id, second.sheet_id))
        outside.execute("DELETE FROM search_fts_rows WHERE sheet_id = ?", (third.sheet_id,))
        outside.execute("DELETE FROM search_fts WHERE rowid = ?", (fourth.sheet_id,))
    outside.close()
    assert titles("recyclerie") == []  # readers never see a sheet that is not published
    check = kb(app, "check")
    assert check.exit_code == 1
    assert "1 fiche(s) indexées mais plus publiées" in check.output
    assert "3 fiche(s) indexées dans une version périmée" in check.output
    assert kb(app, "update").exit_code == 0
    assert kb(app, "check").exit_code == 0
    assert titles("laverie solidaire") == ["Laverie sociale"]  # the revision the sheet points at
    assert titles("jardin") == ["Jardin des plantes"]
    assert titles("cantine") == ["Cantine des aînés"]


def test_init_db_builds_the_index_of_an_existing_base(app_config: dict[str, Any],
                                                      tmp_path: Path) -> None:
    """An install upgrading from Whoosh: `kb init-db` (run by `make run`) builds the SQLite
    index from the database, and search works at once."""
    from kb import create_app

    if app_config["KB_SEARCH_BACKEND"] != "sqlite":
        pytest.skip("the upgrade goes to the SQLite engine")
    url = f"sqlite:///{tmp_path / 'upgraded.sqlite3'}"
    old = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": url, "KB_SEARCH_BACKEND": "whoosh"})
    assert old.test_cli_runner().invoke(args=["init-db"]).exit_code == 0
    with old.app_context():
        author = operations.system_user()
        operations.create_sheet({"title": "Bagagerie solidaire à Lyon"}, author)
        commit()
        db.session.remove()
        db.engine.dispose()
    new = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": url})
    with new.app_context():
        assert search_sheets("bagagerie")["unavailable"] is True  # not built yet
        result = new.test_cli_runner().invoke(args=["init-db"])
        assert result.exit_code == 0, result.output
        assert [i["title"] for i in search_sheets("bagagerie")["items"]] == \
            ["Bagagerie solidaire à Lyon"]
        db.session.remove()
        db.engine.dispose()
