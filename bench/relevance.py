"""Search relevance: precision and recall on the relevance set, the previous analysis (Snowball
stemming twice) against the current one (kb/search/analysis.py), in the same run on the same
engine and the same sheets.

    .venv/bin/python -m bench.relevance                       # SQLite FTS5
    .venv/bin/python -m bench.relevance --backend whoosh
    .venv/bin/python -m bench.relevance --backend postgres \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/kb_bench

The set is tests/data/relevance.json: queries and the sheets a reader expects, among
fixtures/demo.json and tests/data/relevance_sheets.jsonl (word families such as mobilité,
mobilier, mobiliser, mobile). A query's results count when the page says every word was found
(a page that names a missing word, or shows sheets with only some of the words, retrieved
nothing); the figures are sets, not ranks. Precision and recall are micro-averaged (summed
over the queries); a query with no relevant sheet and no result scores 1. Prints a table,
then the figures as JSON. tests/test_search_relevance.py uses the same functions.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import snowballstemmer
from sqlalchemy import text

from kb.config import PROJECT_ROOT

DATA = PROJECT_ROOT / "tests" / "data" / "relevance.json"
SHEETS = PROJECT_ROOT / "tests" / "data" / "relevance_sheets.jsonl"
DEMO = PROJECT_ROOT / "fixtures" / "demo.json"


def relevance_set() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DATA.read_text(encoding="utf-8"))
    by_query = {q["q"]: q for q in data["queries"]}
    for query in data["queries"]:  # "same_as": another spelling expects the same sheets
        if "same_as" in query:
            query["relevant"] = by_query[query["same_as"]]["relevant"]
    return data


def load_sheets() -> None:
    """The demo sheets and the word-family sheets, published and indexed (app context)."""
    from kb.importers import run_import

    run_import(DEMO, "json", echo=lambda _: None)
    run_import(SHEETS, "jsonl", echo=lambda _: None)


@dataclass
class Score:
    q: str
    relevant: set[str]
    retrieved: set[str]
    issue: bool

    @property
    def hits(self) -> int:
        return len(self.relevant & self.retrieved)

    @property
    def precision(self) -> float:
        return self.hits / len(self.retrieved) if self.retrieved else 1.0

    @property
    def recall(self) -> float:
        return self.hits / len(self.relevant) if self.relevant else 1.0


def retrieved(q: str) -> set[str]:
    """The titles the search page presents as having every word of `q`."""
    from kb.search.service import search_sheets

    result = search_sheets(q, per_page=100)
    if result["unmatched_terms"] or result["message"]:
        return set()
    return {item["title"] for item in result["items"]}


def evaluate(data: dict[str, Any]) -> list[Score]:
    return [Score(q["q"], set(q["relevant"]), retrieved(q["q"]), bool(q.get("issue")))
            for q in data["queries"]]


def summary(scores: list[Score]) -> dict[str, float]:
    hits = sum(s.hits for s in scores)
    found = sum(len(s.retrieved) for s in scores)
    relevant = sum(len(s.relevant) for s in scores)
    return {"precision": round(hits / found, 3) if found else 1.0,
            "recall": round(hits / relevant, 3) if relevant else 1.0,
            "exact_queries": sum(1 for s in scores if s.relevant == s.retrieved),
            "queries": len(scores)}


# -- the previous analysis, for comparison ---------------------------------------------------

_snowball = snowballstemmer.stemmer("french")


@lru_cache(maxsize=100_000)
def snowball_twice(word: str) -> str:
    """kb/search/analysis.py's stem() until schema version 9: Snowball on the folded word,
    then again on its stem."""
    once = _snowball.stemWord(word)
    return str(_snowball.stemWord(once)) if once != word else str(once)


@contextmanager
def stemmer(stem: Callable[[str], str]) -> Iterator[None]:
    """Every kb.search module stems with `stem` meanwhile (they import the function by name)."""
    from kb.search import analysis

    current = analysis.stem
    modules = [m for name, m in sys.modules.items()
               if name.startswith("kb.search") and getattr(m, "stem", None) is current]
    analysis._TERMS.clear()  # word -> term, cached
    for module in modules:
        module.stem = stem  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module in modules:
            module.stem = current  # type: ignore[attr-defined]
        analysis._TERMS.clear()


def compare(backend: str, database_url: str = "") -> dict[str, Any]:
    """Both analyses on one engine: the index rebuilt with each, the same queries."""
    import kb.models  # noqa: F401
    from kb import create_app
    from kb.extensions import db
    from kb.search import analysis, service

    workdir = Path(tempfile.mkdtemp(prefix="kb-relevance-"))
    url = database_url or f"sqlite:///{workdir / 'kb.sqlite3'}"
    app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url,
                      "KB_INDEX_DIR": str(workdir / "index"), "KB_SEARCH_BACKEND": backend,
                      "KB_BASE_URL": "http://127.0.0.1:5000", "RATELIMIT_ENABLED": False})
    data = relevance_set()
    figures: dict[str, Any] = {"backend": backend, "queries": {}}
    try:
        with app.app_context():
            if url.startswith("postgresql"):
                with db.engine.begin() as conn:
                    conn.execute(text("DROP SCHEMA public CASCADE"))
                    conn.execute(text("CREATE SCHEMA public"))
            db.create_all()
            load_sheets()
            for name, stem in (("snowball_twice", snowball_twice), ("current", analysis.stem)):
                with stemmer(stem):
                    service.rebuild_index()
                    scores = evaluate(data)
                figures[name] = summary(scores)
                for s in scores:
                    figures["queries"].setdefault(s.q, {"relevant": len(s.relevant)})[name] = {
                        "found": len(s.retrieved), "hits": s.hits,
                        "missed": sorted(s.relevant - s.retrieved),
                        "wrong": sorted(s.retrieved - s.relevant)}
            db.session.remove()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


def table(figures: dict[str, Any]) -> str:
    lines = [f"search relevance, backend {figures['backend']}: found/hits per query "
             f"({DATA.relative_to(PROJECT_ROOT)})",
             f"{'query':<26}{'relevant':>9}{'snowball x2':>14}{'current':>10}"]
    for q, row in figures["queries"].items():
        old, new = row["snowball_twice"], row["current"]
        lines.append(f"{q[:25]:<26}{row['relevant']:>9}"
                     f"{old['found']:>9}/{old['hits']:<4}{new['found']:>6}/{new['hits']:<4}")
    for name in ("snowball_twice", "current"):
        f = figures[name]
        lines.append(f"{name:<16} precision {f['precision']:.3f}  recall {f['recall']:.3f}  "
                     f"exact {f['exact_queries']}/{f['queries']} queries")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "whoosh", "postgres"], default="sqlite")
    parser.add_argument("--database-url", default="",
                        help="PostgreSQL URL for --backend postgres (its public schema is "
                             "dropped and recreated)")
    args = parser.parse_args()
    if args.backend == "postgres" and not args.database_url:
        parser.error("--backend postgres needs --database-url")
    figures = compare(args.backend, args.database_url)
    print(table(figures))
    print(json.dumps({k: v for k, v in figures.items() if k != "queries"}, indent=2))


if __name__ == "__main__":
    main()
