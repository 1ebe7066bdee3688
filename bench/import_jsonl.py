"""Import speed: `kb import --format jsonl` of N synthetic sheets into a fresh SQLite database.

Baseline, same run, same rows: a bare sqlite3 executemany of the sheet rows and their JSON
(no validation, no revisions, no tags) -- the floor any importer could reach.

    .venv/bin/python -m bench.import_jsonl --sheets 10000
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

from bench.corpus import make_sheets


def baseline(rows: list[dict[str, object]], folder: Path) -> float:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sheets", type=int, default=10_000)
    args = parser.parse_args()

    from kb import create_app
    from kb.extensions import db
    from kb.importers import run_import

    rows = make_sheets(args.sheets)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "sheets.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        base = baseline(rows, folder)
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'kb.sqlite3'}",
                          "SECRET_KEY": "bench", "KB_INDEX_DIR": str(folder / "index")})
        with app.app_context():
            db.create_all()
            start = time.perf_counter()
            first = run_import(path, "jsonl", echo=lambda _: None)
            created = time.perf_counter() - start
            start = time.perf_counter()
            second = run_import(path, "jsonl", echo=lambda _: None)
            again = time.perf_counter() - start
            db.engine.dispose()
    result = {"sheets": args.sheets, "import_s": round(created, 2),
              "reimport_unchanged_s": round(again, 2), "baseline_executemany_s": round(base, 3),
              "ratio_import_vs_baseline": round(created / base, 1),
              "created": first["created"], "unchanged": second["unchanged"]}
    print(json.dumps(result))
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
