"""Bulk imports do per batch what can be done per batch: the number of statements grows with
the batches, not with the rows; the batched computations give the per-row results."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from datasketch import MinHash
from sqlalchemy import event

from bench.corpus import make_sheets
from kb.duplicates import index
from kb.duplicates.similarity import (
    BANDS,
    HIGH,
    NUM_PERM,
    ROWS,
    Fingerprint,
    _permutations,
    band_keys_batch,
)
from kb.extensions import db
from kb.importers import run_import
from kb.search.service import check_index, search_sheets
from kb.sheets.models import Revision


@contextmanager
def counted_statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def write(path: Path, sheets: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in sheets),
                    encoding="utf-8")
    return path


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("kb.importers.tabular.BATCH", 10)


def test_reimporting_unchanged_rows_reads_heads_per_batch(app: Any, tmp_path: Path,
                                                         small_batches: None) -> None:
    path = write(tmp_path / "a.jsonl", make_sheets(40, seed=3))
    assert run_import(path, "jsonl", echo=lambda _: None)["created"] == 40
    revisions = db.session.query(Revision).count()
    with counted_statements() as statements:
        counts = run_import(path, "jsonl", echo=lambda _: None)
    assert counts["unchanged"] == 40
    assert db.session.query(Revision).count() == revisions  # no empty revision
    # A handful per batch of 10 (sheets, heads, commit), never one or two per row.
    assert len(statements) <= 4 * 6, statements


def test_a_changed_row_after_an_unchanged_one_still_makes_a_revision(
        app: Any, tmp_path: Path, small_batches: None) -> None:
    sheets = make_sheets(12, seed=4)
    path = write(tmp_path / "a.jsonl", sheets)
    run_import(path, "jsonl", echo=lambda _: None)
    sheets[11] = {**sheets[11], "summary": "Un résumé tout neuf sur les zeppelins."}
    counts = run_import(write(path, sheets), "jsonl", echo=lambda _: None)
    assert counts["unchanged"] == 11 and counts["updated"] == 1
    assert [i["title"] for i in search_sheets("zeppelins")["items"]] == [sheets[11]["title"]]
    assert check_index().total == 0


def test_new_rows_are_matched_for_duplicates_per_batch(app: Any, tmp_path: Path,
                                                       small_batches: None) -> None:
    existing = make_sheets(30, seed=5)
    run_import(write(tmp_path / "base.jsonl", existing), "jsonl", echo=lambda _: None)
    fresh = make_sheets(30, seed=6)
    with counted_statements() as statements:
        counts = run_import(write(tmp_path / "new.jsonl", fresh), "jsonl", echo=lambda _: None)
    assert counts["created"] == 30
    lookups = [s for s in statements if "FROM duplicate_features" in s
               and "duplicate_features.feature IN" in s]
    assert len(lookups) <= 2 * 3  # counts and postings, once per batch of 10 (not per row)


def test_batched_duplicate_lookups_find_what_single_lookups_find(app: Any, tmp_path: Path) -> None:
    base = make_sheets(40, seed=8)
    run_import(write(tmp_path / "base.jsonl", base), "jsonl", echo=lambda _: None)
    index.sync(index.all_sheet_ids())
    copies = [{**s, "title": s["title"] + " (copie)"} for s in base[:10]] + make_sheets(10, seed=9)
    fingerprints = [Fingerprint.of(s) for s in copies]
    batched = index.similar_many(fingerprints, limit=3, min_score=0.2)
    single = [index.similar(fp, limit=3, min_score=0.2) for fp in fingerprints]
    assert batched == single
    assert all(found and found[0].score >= HIGH for found in batched[:10])


def test_minhash_bands_of_a_batch_are_datasketch_ones() -> None:
    rng = np.random.default_rng(1)
    bodies = [np.unique(rng.integers(0, 2**32, size=int(n), dtype=np.uint32))
              for n in rng.integers(0, 600, size=60)]

    def one(body: np.ndarray) -> list[str]:
        if len(body) < 4:
            return []
        minhash = MinHash(num_perm=NUM_PERM, seed=7, hashfunc=int,
                          permutations=_permutations(), scheme="affine32")
        minhash.update_batch(body.tolist())
        values = minhash.hashvalues
        return [f"{band}:{values[band * ROWS:(band + 1) * ROWS].tobytes().hex()}"
                for band in range(BANDS)]

    assert band_keys_batch(bodies) == [one(body) for body in bodies]


def test_import_writes_the_search_rows_in_each_batch_commit(
        app: Any, tmp_path: Path, small_batches: None) -> None:
    from sqlalchemy.orm import Session

    from kb.search.service import get_backend

    if get_backend().name != "sqlite":
        pytest.skip("the SQLite engine writes in the batch's transaction")
    run_import(write(tmp_path / "one.jsonl", make_sheets(1, seed=1)), "jsonl",
               echo=lambda _: None)  # the index exists from here
    seen: list[int] = []

    def count_rows(session: Session) -> None:  # runs after the index hook, before COMMIT
        if session is db.session():
            seen.append(session.connection().exec_driver_sql(
                "SELECT count(*) FROM search_fts_rows").scalar() or 0)

    event.listen(Session, "before_commit", count_rows)
    try:
        run_import(write(tmp_path / "a.jsonl", make_sheets(25, seed=10)), "jsonl",
                   echo=lambda _: None)
    finally:
        event.remove(Session, "before_commit", count_rows)
    # Each batch's commit carries its sheets and their search rows together.
    assert sorted(set(seen)) == [11, 21, 26]
