"""Listing pages (/fiches, tag and scale pages) over HTTP, against the bare listing they replace.

    .venv/bin/python -m bench.listing                     # 10,000 sheets on SQLite
    .venv/bin/python -m bench.listing --sheets 100000
    .venv/bin/python -m bench.listing --database-url postgresql+psycopg://postgres@127.0.0.1:5432/kb_bench

The baseline, measured in the same run on the same base, is what /fiches did before it had
filters, facets and sorting: one count and one page of 20 sheets, rendered as cards. The
listing pages add the facet counts (one grouped query per filter) and the sort.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from flask import render_template_string, request

from bench.search import load_corpus, make_corpus
from kb import create_app
from kb.extensions import db
from kb.sheets.models import Sheet, published_sheets
from kb.sheets.queries import paginate

BASELINE = """{% from "_macros.html" import sheet_card %}<p>{{ page.total }}</p>
{% for sheet in page.items %}{{ sheet_card(sheet) }}{% endfor %}"""


def make_app(url: str | None, tmp: Path) -> Any:
    app = create_app({"SQLALCHEMY_DATABASE_URI": url or f"sqlite:///{tmp / 'bench.sqlite3'}",
                      "SECRET_KEY": "bench", "KB_INDEX_DIR": str(tmp / "index"),
                      "TESTING": True, "RATELIMIT_ENABLED": False})

    @app.get("/bench/baseline")
    def baseline() -> str:
        page = paginate(published_sheets().order_by(Sheet.updated_at.desc()),
                        request.args.get("page"), 20)
        return render_template_string(BASELINE, page=page)

    with app.app_context():
        if url:
            db.drop_all()
        db.create_all()
    return app


def timed(client: Any, url: str, rounds: int) -> tuple[float, float]:
    assert client.get(url).status_code == 200, url  # warm-up, and the page works
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sheets", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(args.database_url, Path(tmp))
        with app.app_context():
            started = time.perf_counter()
            corpus, tags, _ = make_corpus("seeds", args.sheets, 11)
            load_corpus(corpus, tags, 11)
            print(f"{args.sheets:,} sheets loaded in {time.perf_counter() - started:.0f} s "
                  f"({db.engine.dialect.name})")
            client = app.test_client()
            base50, base95 = timed(client, "/bench/baseline", args.rounds)
            print(f"{'page':46} {'p50 ms':>8} {'p95 ms':>8} {'p50 ratio':>10}")
            print(f"{'baseline: count + 20 cards (old /fiches)':46} {base50:8.1f} {base95:8.1f}"
                  f" {1:10.2f}")
            for url in ("/fiches", "/fiches?page=50", "/fiches?sort=title",
                        "/fiches?scale=commune&department=29", "/tags/accueil",
                        "/tags/accueil?sort=freshness&actor_type=association",
                        "/echelle/quartier"):
                p50, p95 = timed(client, url, args.rounds)
                print(f"{url:46} {p50:8.1f} {p95:8.1f} {p50 / base50:10.2f}")


if __name__ == "__main__":
    main()
