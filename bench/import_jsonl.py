"""Import speed: `kb import --format jsonl` of N synthetic sheets into a fresh SQLite database,
end to end (sheets, revisions, search index, duplicates lookup rows), then the same file again
(every row unchanged).

Baseline, same run, same rows: a bare sqlite3 executemany of the sheet rows and their JSON
(no validation, no revisions, no tags, no index) -- the floor any importer could reach.

    .venv/bin/python -m bench.import_jsonl --sheets 10000                  # the issue's corpus
    .venv/bin/python -m bench.import_jsonl --sheets 10000 --backend whoosh
    .venv/bin/python -m bench.import_jsonl --profile short --existing 2000  # into a used base

Profiles: `zipf` (bench.search's: 250-500 words, Zipf over the seeds' vocabulary), `short`
(bench.corpus: ~300 words). `--existing N` first imports N other sheets, so that every new row
is also looked up among existing sheets for duplicates. Wall and CPU seconds are printed: on
a shared machine, CPU time is the better estimate of an idle run.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any


def baseline(rows: list[dict[str, Any]], folder: Path) -> float:
    conn = sqlite3.connect(folder / "baseline.sqlite3")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE sheets (id INTEGER PRIMARY KEY, slug TEXT UNIQUE, data TEXT)")
    start = time.perf_counter()
    conn.executemany("INSERT INTO sheets (slug, data) VALUES (?, ?)",
                     ((f"s{i}", json.dumps(r, ensure_ascii=False)) for i, r in enumerate(rows)))
    conn.commit()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def rows_of(profile: str, count: int, seed: int) -> list[dict[str, Any]]:
    if profile == "zipf":
        from bench.search import make_corpus

        return make_corpus("zipf", count, seed)[0]
    from bench.corpus import make_sheets

    return make_sheets(count, seed)


def timed_import(path: Path) -> tuple[dict[str, int], float, float]:
    from kb.importers import run_import

    wall, cpu = time.perf_counter(), time.process_time()
    counts = run_import(path, "jsonl", echo=lambda _: None)
    return counts, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sheets", type=int, default=10_000)
    parser.add_argument("--profile", choices=["zipf", "short"], default="zipf")
    parser.add_argument("--backend", choices=["sqlite", "whoosh"], default="sqlite")
    parser.add_argument("--existing", type=int, default=0,
                        help="sheets imported before (duplicates lookups against them)")
    args = parser.parse_args()

    from kb import create_app
    from kb.extensions import db
    from kb.search.service import check_index, update_index

    rows = rows_of(args.profile, args.sheets, 42)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "sheets.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        base = baseline(rows, folder)
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'kb.sqlite3'}",
                          "SECRET_KEY": "bench", "KB_INDEX_DIR": str(folder / "index"),
                          "KB_SEARCH_BACKEND": args.backend})
        with app.app_context():
            db.create_all()
            update_index()  # an empty index, as `kb init-db` leaves it
            if args.existing:
                other = folder / "existing.jsonl"
                other.write_text("".join(
                    json.dumps({**r, "title": f"{r['title']} (base {n})"}, ensure_ascii=False)
                    + "\n" for n, r in enumerate(rows_of(args.profile, args.existing, 7))))
                timed_import(other)
            first, created_s, created_cpu = timed_import(path)
            second, again_s, again_cpu = timed_import(path)
            drift = check_index().total
            db.engine.dispose()
    result = {"sheets": args.sheets, "profile": args.profile, "backend": args.backend,
              "existing": args.existing,
              "import_s": round(created_s, 2), "import_cpu_s": round(created_cpu, 2),
              "reimport_unchanged_s": round(again_s, 2),
              "reimport_unchanged_cpu_s": round(again_cpu, 2),
              "baseline_executemany_s": round(base, 3),
              "ratio_import_vs_baseline": round(created_s / base, 1),
              "created": first["created"], "unchanged": second["unchanged"],
              "index_drift_after": drift, "goal_import_s": 20.0,
              "goal_met": created_s <= 20.0}
    print(json.dumps(result))
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
