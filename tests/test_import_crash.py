"""Issue 28: `kb import` killed with SIGKILL at any point leaves whole batches of sheets or
none (one transaction per batch, the SQLite index written in the same transaction), `kb index
check` finds nothing to repair, and running the import again completes it without
duplicates. Several seeds, each killing the import at a different moment."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bench.corpus import make_sheets
from kb import create_app
from kb.extensions import db
from kb.search.service import check_index, update_index
from kb.sheets.models import Revision, Sheet
from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parent.parent
BATCH = 30  # KB_IMPORT_BATCH: small batches, so that a kill falls between or inside them
SHEETS = 10 * BATCH  # room after the kill point: the kill must land inside the import


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "fiches.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for sheet in make_sheets(SHEETS, seed=7):
            out.write(json.dumps(sheet, ensure_ascii=False) + "\n")
    return path


def _import(url: str, path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KB_DATABASE_URL": url, "KB_SECRET_KEY": "x" * 32,
           "KB_IMPORT_BATCH": str(BATCH), "KB_INDEX_DIR": str(path.parent / "index"),
           "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", "from kb.console import main; main()", "import",
                             str(path), "--format", "jsonl"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _sheets(folder: Path) -> int:
    """Sheets committed so far, read beside the importer (WAL: readers never block it)."""
    conn = sqlite3.connect(f"file:{folder / 'kb.sqlite3'}?mode=ro", uri=True, timeout=10)
    try:
        return int(conn.execute("SELECT count(*) FROM sheets").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


@pytest.mark.skipif(bool(PG_URL), reason="one SQLite file per seed")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_import_killed_at_a_random_point_leaves_whole_batches_and_completes_on_rerun(
        seed, corpus, app_config, tmp_path):
    url = f"sqlite:///{tmp_path / 'kb.sqlite3'}"
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        db.create_all()
        update_index()
        db.session.remove()
        db.engine.dispose()

    # The seed picks how many batches to let through, then a moment inside the next one.
    rng = random.Random(seed)
    batches, pause = rng.randint(0, 3), rng.uniform(0.0, 0.6)
    process = _import(url, corpus)
    deadline = time.monotonic() + 240
    while process.poll() is None and _sheets(tmp_path) < batches * BATCH \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(pause)
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait()
    killed = process.returncode == -signal.SIGKILL

    with app.app_context():
        sheets = db.session.scalar(select(func.count(Sheet.id)))
        revisions = db.session.scalar(select(func.count(Revision.id)))
        assert killed, "the import ended before the kill: the test proves nothing"
        assert sheets % BATCH == 0 and sheets < SHEETS, (seed, sheets)  # whole batches
        assert revisions == sheets  # every sheet with its revision, nothing half-written
        assert db.session.scalar(select(func.count()).where(
            Sheet.approved_revision_id.is_(None))) == 0
        assert check_index(thorough=True).total == 0
        print(f"seed {seed}: killed after {batches} batch(es) + {pause:.2f} s: {sheets} sheet(s)")
        db.session.remove()
        db.engine.dispose()

    again = _import(url, corpus)
    assert again.wait(timeout=300) == 0, again.stderr.read() if again.stderr else ""
    with app.app_context():
        assert db.session.scalar(select(func.count(Sheet.id))) == SHEETS
        assert db.session.scalar(select(func.count(Revision.id))) == SHEETS
        assert check_index(thorough=True).total == 0
        db.session.remove()
        db.engine.dispose()
