"""Entry by problem (issue 23): the home page's tiles, their family counts, a thématique page
ordered by proximity to a commune, the data·inclusion services export and the quality ranking,
each as a ratio to a trivial route measured in the same run.

    .venv/bin/python -m bench.entry                        # 5,000 sheets on SQLite
    .venv/bin/python -m bench.entry --sheets 20000 --rounds 20
    .venv/bin/python -m bench.entry --database-url postgresql+psycopg://postgres@127.0.0.1:5432/kb_bench

The trivial route answers "ok" through the whole application (sessions, limits, the API's
checks, the page cache's bookkeeping): what any request costs here, so that the ratios travel
between machines. The page cache is off (KB_CACHE=none): these are the costs of a miss. The
corpus is bench.search's, each sheet given one or two thématiques, a public and a zone
d'éligibilité (a département, or the whole country) drawn at random.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bench.search import load_corpus, make_corpus
from kb import create_app
from kb.extensions import db

DEPARTMENTS = ("29", "22", "35", "56", "44", "75", "13", "69", "59", "33")


def make_app(url: str | None, tmp: Path) -> Any:
    app = create_app({"SQLALCHEMY_DATABASE_URI": url or f"sqlite:///{tmp / 'bench.sqlite3'}",
                      "SECRET_KEY": "bench", "KB_INDEX_DIR": str(tmp / "index"),
                      "KB_CACHE": "none", "RATELIMIT_ENABLED": False,
                      "KB_BASE_URL": "http://bench.local"})

    @app.get("/bench/trivial")
    def trivial() -> str:
        return "ok"

    with app.app_context():
        if url:
            db.drop_all()
        db.create_all()
    return app


def orient(corpus: list[dict[str, Any]], seed: int) -> None:
    """Give every sheet data·inclusion's vocabulary, as a writer of the form would."""
    from kb.sheets.fields import FIELDS_BY_NAME

    rng = random.Random(seed)
    thematiques = list(FIELDS_BY_NAME["thematiques"].choice_values)
    publics = [p for p in FIELDS_BY_NAME["publics"].choice_values if p != "tous-publics"]
    for data in corpus:
        data["thematiques"] = sorted(rng.sample(thematiques, rng.choice((1, 2))))
        data["publics"] = [rng.choice(publics)]
        data["zone_eligibilite"] = ["france"] if rng.random() < 0.1 else [rng.choice(DEPARTMENTS)]
        data["modes_mobilisation"] = ["telephoner"]
        data["frais"] = rng.choice(("gratuit", "payant", ""))


def write_keys(corpus: list[dict[str, Any]]) -> None:
    """sheet_keys as publish() writes them (load_corpus's fast path skips it)."""
    from kb.sheets.filters import multi_keys
    from kb.sheets.models import sheet_keys

    rows = [{"sheet_id": n, "field": name, "key": key}
            for n, data in enumerate(corpus, start=1)
            for name, keys in multi_keys(data).items() for key in keys]
    for start in range(0, len(rows), 5000):
        db.session.execute(insert(sheet_keys), rows[start:start + 5000])
    db.session.commit()


def measure(run: Callable[[], Any], rounds: int) -> tuple[float, float]:
    run()  # warm-up
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def get(client: Any, url: str) -> Callable[[], Any]:
    def run() -> None:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sheets", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--heavy-rounds", type=int, default=3,
                        help="rounds of the whole-base figures (full export, quality ranking)")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    from kb.importers import datainclusion
    from kb.sheets.queries import family_counts

    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(args.database_url, Path(tmp))
        with app.app_context():
            started = time.perf_counter()
            corpus, tags, _ = make_corpus("seeds", args.sheets, 11)
            orient(corpus, 11)
            load_corpus(corpus, tags, 11)
            write_keys(corpus)
            print(f"{args.sheets:,} sheets loaded in {time.perf_counter() - started:.0f} s "
                  f"({db.engine.dialect.name})")
            client = app.test_client()
            base50, base95 = measure(get(client, "/bench/trivial"), args.rounds)
            print(f"{'figure':58} {'p50 ms':>8} {'p95 ms':>8} {'p50 ratio':>10}")
            trivial = "trivial route (GET /bench/trivial, 'ok')"
            print(f"{trivial:58} {base50:8.2f} {base95:8.2f} {1:10.1f}")
            rows: list[tuple[str, Callable[[], Any], int]] = [
                ("home page (16 tiles with counts, latest, map)", get(client, "/"), args.rounds),
                ("family counts alone (family_counts())", family_counts, args.rounds),
                ("thématique page, by proximity (?pres=Brest)",
                 get(client, "/thematiques/mobilite?pres=Brest"), args.rounds),
                ("same page, commune from the cookie",
                 get(client, "/thematiques/mobilite"), args.rounds),
                ("data·inclusion services, one API page of 100",
                 get(client, "/api/v1/data-inclusion/services?per_page=100&page=3"),
                 args.rounds),
                ("data·inclusion structures, one API page of 100",
                 get(client, "/api/v1/data-inclusion/structures?per_page=100&page=3"),
                 args.rounds),
                (f"services export, whole base ({args.sheets:,} services + structures)",
                 lambda: datainclusion.export(io.StringIO()), args.heavy_rounds),
                ("quality ranking, whole base (lowest_quality())",
                 datainclusion.lowest_quality, args.heavy_rounds),
            ]
            for label, run, rounds in rows:
                p50, p95 = measure(run, rounds)
                print(f"{label:58} {p50:8.1f} {p95:8.1f} {p50 / base50:10.1f}")


if __name__ == "__main__":
    main()
