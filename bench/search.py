"""Search benchmark: a synthetic corpus, full rebuild time, query latency (service and HTTP),
against SQLite FTS5 measured in the same run on the same corpus.

    .venv/bin/python -m bench.search                           # seeds profile, 10,000 sheets, sqlite
    .venv/bin/python -m bench.search --profile zipf            # the issue's corpus (see below)
    .venv/bin/python -m bench.search --profile zipf --sheets 100000
    .venv/bin/python -m bench.search --profile zipf --backend whoosh
    .venv/bin/python -m bench.search --profile zipf --backend postgres \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/kb_bench

Profiles:
- `seeds`: each seed word keeps its observed frequency, a Zipf tail of rarer derived words gives
  the vocabulary a realistic size; 18 queries covering the query language (common and rare
  words, phrases, typos, OR, NOT, filters alone). Baseline: FTS5 top 20 with snippets, total and
  one facet.
- `zipf`: sheets of 250-500 words drawn with a Zipf law (weight 1/rank) over the seeds'
  vocabulary; 60 queries of one to three mid-frequency words (AND), half typed without
  accents. Baseline: FTS5 (`unicode61 remove_diacritics 2`, bm25) exact count + top 10.

HTTP figures go through the whole Flask stack in-process (test client). Prints a table, then
the figures as JSON.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text, update

from kb.config import PROJECT_ROOT

# ../shared/seeds from the project root (the repository is cloned next to shared/); a git
# worktree one level deeper finds it one level up.
SEEDS = next((p for p in (PROJECT_ROOT.parent / "shared" / "seeds",
                          PROJECT_ROOT.parent.parent / "shared" / "seeds") if p.is_dir()),
             PROJECT_ROOT.parent / "shared" / "seeds")
# Each city with its département, so that the sheets are valid ones (an edit through the API
# checks that the commune lies in the département).
DEPARTMENT_OF = {
    "Brest": "29", "Quimper": "29", "Nantes": "44", "Saint-Denis": "93", "Lyon": "69",
    "Lille": "59", "Rennes": "35", "Marseille": "13", "Toulouse": "31", "Bordeaux": "33",
    "Montpellier": "34", "Strasbourg": "67", "Grenoble": "38", "Dijon": "21", "Angers": "49",
    "Saint-Méen-le-Grand": "35", "Saint-Gaudens": "31", "Besançon": "25", "Limoges": "87",
    "Poitiers": "86", "Amiens": "80", "Le Mans": "72", "Nîmes": "30", "Orléans": "45",
    "Rouen": "76", "Caen": "14", "Metz": "57", "Pau": "64", "Vannes": "56", "Lorient": "56"}
CITIES = list(DEPARTMENT_OF)
SCALES = ["quartier", "commune", "intercommunalite", "departement", "region", "national"]
ACTORS = ["commune", "departement", "region", "etat", "association", "entreprise", "collectif"]

# A fixed query set: common and rare words, two words, a phrase, typos, no accents, OR, NOT,
# a filter alone (the "par échelle" and tag pages) and a filter with words.
QUERIES: list[tuple[str, dict[str, str]]] = [
    ("accueil", {}),
    ("mediation numerique", {}),
    ('"design de service"', {}),
    ("acceuil des usagers", {}),
    ("partagee", {}),
    ("accompagnement insertion", {}),
    ("agents usagers mairie", {}),
    ("accueillir", {}),
    ("numérique OR inclusion", {}),
    ("accueil -mairie", {}),
    ("experimentation", {}),
    ("dematerialisation", {}),
    ("prototypes", {}),
    ("acompagnement", {}),
    ("accueil", {"scale": "commune"}),
    ("", {"scale": "quartier"}),
    ("", {"tag": "accueil"}),
    ("usagers", {"department": "29"}),
]


# -- corpus ----------------------------------------------------------------------------------

def seed_frequencies() -> Counter[str]:
    words: Counter[str] = Counter()
    for path in sorted(SEEDS.glob("*.txt")):
        text_ = path.read_text(encoding="utf-8", errors="replace").lower()
        words.update(w for w in re.findall(r"[^\W\d_]+", text_) if len(w) > 1)
    if not words:
        raise SystemExit(f"no seed text under {SEEDS}")
    return words


class WordSampler:
    """Seed words with their frequencies, plus a Zipf tail of derived rarer words."""

    def __init__(self, frequencies: Counter[str], rng: random.Random, tail: int = 30_000):
        self.rng = rng
        ranked = [w for w, _ in frequencies.most_common()]
        weights = [float(frequencies[w]) for w in ranked]
        suffixes = ["tion", "ment", "age", "ité", "eur", "ique", "isme", "ance", "oir", "iste"]
        stems = [w[:max(3, len(w) - 3)] for w in ranked if len(w) > 5]
        base = min(weights)
        seen = set(ranked)
        for rank in range(1, tail + 1):
            word = rng.choice(stems) + rng.choice(suffixes)
            if word in seen:
                continue
            seen.add(word)
            ranked.append(word)
            weights.append(base / (1 + rank / 50))  # Zipf-like: rarer than any seed word
        self.words = ranked
        self.cumulative: list[float] = []
        total = 0.0
        for weight in weights:
            total += weight
            self.cumulative.append(total)
        self.common = [w for w in frequencies if frequencies[w] >= 3 and len(w) > 4]

    def text(self, low: int, high: int) -> str:
        count = self.rng.randint(low, high)
        words = self.rng.choices(self.words, cum_weights=self.cumulative, k=count)
        sentences, start = [], 0
        while start < len(words):
            end = start + self.rng.randint(8, 20)
            sentence = " ".join(words[start:end])
            sentences.append(sentence[:1].upper() + sentence[1:] + ".")
            start = end
        return " ".join(sentences)


class ZipfSampler:
    """The seeds' vocabulary ranked by frequency, drawn with weight 1/rank (the `zipf` profile)."""

    def __init__(self, frequencies: Counter[str], rng: random.Random):
        self.rng = rng
        self.words = [w for w, _ in frequencies.most_common()]
        total = 0.0
        self.cumulative = []
        for rank in range(1, len(self.words) + 1):
            total += 1.0 / rank
            self.cumulative.append(total)
        self.common = [w for w in self.words[150:900] if len(w) > 4]

    def draw(self, count: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cumulative, k=count)

    def text(self, low: int, high: int) -> str:
        return sentences(self.rng, self.draw(self.rng.randint(low, high)))

    def mid_frequency(self) -> list[str]:
        """Words of rank 150-900 (a few percent to a fifth of the sheets), not stop words."""
        from kb.search.analysis import fold, is_stop

        return [w for w in self.words[150:900] if len(w) >= 5 and not is_stop(fold(w))]


def sentences(rng: random.Random, words: list[str]) -> str:
    out, start = [], 0
    while start < len(words):
        end = start + rng.randint(8, 20)
        sentence = " ".join(words[start:end])
        out.append(sentence[:1].upper() + sentence[1:] + ".")
        start = end
    return " ".join(out)


def zipf_sheet_data(sampler: ZipfSampler, n: int, tags: list[str]) -> dict[str, Any]:
    """250-500 words: short fields first, the rest spread over the long ones."""
    rng = sampler.rng
    city = rng.choice(CITIES)
    budget = rng.randint(250, 500)
    title = sampler.draw(rng.randint(4, 8))
    summary = sampler.draw(rng.randint(15, 30))
    actor = sampler.draw(rng.randint(2, 4))
    partners = [sampler.draw(rng.randint(2, 3)) for _ in range(rng.randint(0, 2))]
    rest = budget - len(title) - len(summary) - len(actor) - sum(map(len, partners))
    long_fields = ("context", "stakes", "convictions", "method", "results")
    cuts = sorted(rng.sample(range(1, max(rest, 6)), len(long_fields) - 1))
    sizes = [b - a for a, b in zip([0, *cuts], [*cuts, max(rest, 6)], strict=True)]
    data: dict[str, Any] = {
        "title": f"{' '.join(title).capitalize()} à {city}"[:190],
        "summary": sentences(rng, summary)[:480],
        **{name: sentences(rng, sampler.draw(size)) for name, size in zip(long_fields, sizes,
                                                                         strict=True)},
        "contacts": f"contact{n}@example.org",
        "actor_name": " ".join(actor).title()[:190],
        "sheet_author": "",
        "actor_type": rng.choice(ACTORS),
        "scale": rng.choice(SCALES),
        "city": city,
        "department": DEPARTMENT_OF[city],
        "tags": sorted(set(rng.sample(tags, rng.randint(1, 4)))),
        "partners": [" ".join(p).title() for p in partners],
        "website": "",
        "further_reading": "",
    }
    return data


def zipf_queries(sampler: ZipfSampler, count: int = 60) -> list[tuple[str, dict[str, str]]]:
    """One to three mid-frequency words (all required); every other query without accents."""
    from kb.search.analysis import fold

    rng = random.Random(7)
    pool = sampler.mid_frequency()
    queries = []
    for n in range(count):
        q = " ".join(rng.sample(pool, rng.randint(1, 3)))
        queries.append((fold(q) if n % 2 else q, {}))
    return queries


def sheet_data(sampler: WordSampler, n: int, tags: list[str]) -> dict[str, Any]:
    rng = sampler.rng
    city = rng.choice(CITIES)
    return {
        "title": f"{sampler.text(3, 7).rstrip('.')} à {city}"[:190],
        "summary": sampler.text(15, 30)[:480],
        "context": sampler.text(60, 150),
        "stakes": sampler.text(30, 80),
        "convictions": sampler.text(10, 50),
        "method": sampler.text(80, 200),
        "results": sampler.text(40, 120),
        "contacts": f"contact{n}@example.org",
        "actor_name": sampler.text(2, 4).rstrip(".")[:190],
        "sheet_author": "",
        "actor_type": rng.choice(ACTORS),
        "scale": rng.choice(SCALES),
        "city": city,
        "department": DEPARTMENT_OF[city],
        "tags": sorted(set(rng.sample(tags, rng.randint(1, 4)))),
        "partners": [sampler.text(2, 4).rstrip(".") for _ in range(rng.randint(0, 3))],
        "website": "",
        "further_reading": "",
    }


def make_corpus(profile: str, count: int, seed: int
                ) -> tuple[list[dict[str, Any]], list[str], list[tuple[str, dict[str, str]]]]:
    """(sheets, tag names, queries) of a profile, the same for a given seed."""
    rng = random.Random(seed)
    sampler: WordSampler | ZipfSampler
    if profile == "zipf":
        sampler = ZipfSampler(seed_frequencies(), rng)
    else:
        sampler = WordSampler(seed_frequencies(), rng)
    tag_names = sorted({w for w in sampler.common})[:150] + ["accueil", "numérique", "insertion"]
    tag_names = sorted(set(tag_names))
    if isinstance(sampler, ZipfSampler):
        sheets = [zipf_sheet_data(sampler, n, tag_names) for n in range(count)]
        return sheets, tag_names, zipf_queries(sampler)
    return [sheet_data(sampler, n, tag_names) for n in range(count)], tag_names, QUERIES


@functools.cache
def _place_columns(city: str, department: str, actor_type: str, scale: str
                   ) -> tuple[tuple[str, str], ...]:
    from kb.sheets.filters import projection
    from kb.territories.places import derive

    data = {"city": city, "department": department, "actor_type": actor_type, "scale": scale}
    place = derive(data)
    return (*projection({**data, **place.codes()}).items(), ("city", place.city or city))


def projected(data: dict[str, Any]) -> dict[str, str]:
    """The sheet's filter columns as publish() writes them (codes of the commune, EPCI...)."""
    return dict(_place_columns(data["city"], data["department"], data["actor_type"],
                               data["scale"]))


def load_corpus(corpus: list[dict[str, Any]], tag_names: list[str], seed: int) -> None:
    """Write approved, published sheets straight into the database (fast path)."""
    from slugify import slugify

    from kb.extensions import db
    from kb.sheets.models import Revision, Sheet, Tag, sheet_tags
    from kb.sheets.operations import system_user
    from kb.timeutil import utcnow

    rng = random.Random(seed)
    count = len(corpus)
    author = system_user()
    tag_ids: dict[str, int] = {}
    for name in tag_names:
        tag = Tag(name=name, slug=slugify(name, max_length=80))
        db.session.add(tag)
        db.session.flush()
        tag_ids[name] = tag.id
    author_id = author.id
    db.session.commit()
    now = utcnow()
    for start in range(0, count, 1000):
        sheets, revisions, links = [], [], []
        for n in range(start, min(count, start + 1000)):
            data = corpus[n]
            when = now - timedelta(days=rng.randint(0, 900))
            sheets.append({"id": n + 1, "slug": f"fiche-{n + 1}", "state": "active",
                           "created_at": when, "updated_at": when, "review_interval_months": 12,
                           "last_reviewed_at": when, "title": data["title"],
                           **projected(data)})
            revisions.append({"id": n + 1, "sheet_id": n + 1, "author_id": author_id,
                              "created_at": when, "comment": "bench", "data": data,
                              "status": "approved", "reviewed_by_id": author_id,
                              "reviewed_at": when, "review_reason": ""})
            links += [{"sheet_id": n + 1, "tag_id": tag_ids[t]} for t in data["tags"]]
        db.session.execute(insert(Sheet.__table__), sheets)
        db.session.execute(insert(Revision.__table__), revisions)
        db.session.execute(insert(sheet_tags), links)
    db.session.execute(update(Sheet.__table__).values(approved_revision_id=Sheet.__table__.c.id))
    if db.engine.dialect.name == "postgresql":
        for table in ("sheets", "revisions"):
            db.session.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {count + 1})"))
    db.session.commit()


# -- measuring -------------------------------------------------------------------------------

def percentiles(samples: list[float], prefix: str = "") -> dict[str, float]:
    ordered = sorted(samples)

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))] * 1000, 2)

    return {f"{prefix}p50_ms": at(0.50), f"{prefix}p95_ms": at(0.95),
            f"{prefix}mean_ms": round(statistics.fmean(ordered) * 1000, 2), "n": len(ordered)}


def timed(run: Callable[[str, dict[str, str]], Any], queries: list[tuple[str, dict[str, str]]],
          rounds: int) -> dict[str, float]:
    """Wall-clock percentiles, and this process's CPU time per query: on a shared machine the
    CPU time is the better estimate of an idle run (it leaves out the PostgreSQL server)."""
    for q, filters in queries:  # warm caches (searchers, stems, query plans)
        run(q, filters)
    samples, cpu = [], []
    for _ in range(rounds):
        for q, filters in queries:
            start, start_cpu = time.perf_counter(), time.process_time()
            run(q, filters)
            samples.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    return {**percentiles(cpu, "cpu_"), **percentiles(samples)}


# -- the FTS5 baseline ------------------------------------------------------------------------

FTS_COLUMNS = ("title", "tags", "actor_name", "city", "summary", "body")
FTS_WEIGHTS = (5.0, 4.0, 3.0, 3.0, 2.0, 1.0)  # the declaration's boosts, as bm25() weights


def fts_rows(corpus: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    for n, data in enumerate(corpus, start=1):
        body = " ".join(data[k] for k in ("context", "stakes", "convictions", "method",
                                          "results", "contacts", "further_reading"))
        yield (n, data["title"], " ".join(data["tags"]), data["actor_name"], data["city"],
               data["summary"], body, data["scale"], data["department"])


def fts_build(corpus: list[dict[str, Any]], path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.execute(f"CREATE VIRTUAL TABLE fts USING fts5({', '.join(FTS_COLUMNS)}, scale UNINDEXED,"
                 " department UNINDEXED, tokenize = 'unicode61 remove_diacritics 2')")
    conn.executemany("INSERT INTO fts (rowid, title, tags, actor_name, city, summary, body, "
                     "scale, department) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", fts_rows(corpus))
    conn.commit()
    conn.execute("INSERT INTO fts(fts) VALUES ('optimize')")
    conn.commit()
    return conn


def fts_match(q: str) -> str:
    """The query in FTS5 syntax: quoted words (AND), phrases, OR, NOT."""
    parts: list[str] = []
    for chunk in re.findall(r'"[^"]*"|\S+', q):
        if chunk == "OR":
            parts.append("OR")
        elif chunk.startswith("-") and len(chunk) > 1:
            parts.append('NOT "' + chunk[1:].replace('"', "") + '"')
        else:
            parts.append('"' + chunk.strip('"').replace('"', "") + '"')
    return " ".join(parts)


def fts_count_top10(conn: sqlite3.Connection, q: str, filters: dict[str, str]) -> Any:
    """The issue's baseline: exact count and the ten best by bm25."""
    match = fts_match(q)
    rank = f"bm25(fts, {', '.join(map(str, FTS_WEIGHTS))})"
    total = conn.execute("SELECT count(*) FROM fts WHERE fts MATCH ?", (match,)).fetchone()
    rows = conn.execute(f"SELECT rowid, {rank} AS r FROM fts WHERE fts MATCH ? ORDER BY r "
                        "LIMIT 10", (match,)).fetchall()
    return total, rows


def fts_search(conn: sqlite3.Connection, q: str, filters: dict[str, str]) -> Any:
    """Top 20 with snippets, the total, and two facet counts: a fair share of kb's work."""
    where, params = [], []
    if q:
        where.append("fts MATCH ?")
        params.append(fts_match(q))
    for name in ("scale", "department"):
        if name in filters:
            where.append(f"{name} = ?")
            params.append(filters[name])
    if "tag" in filters:
        where.append("fts MATCH ?")
        params.append('tags:"' + filters["tag"] + '"')
    clause = " AND ".join(where) or "1"
    rank = f"bm25(fts, {', '.join(map(str, FTS_WEIGHTS))})"
    rows = conn.execute(
        f"SELECT rowid, title, snippet(fts, 5, '<mark>', '</mark>', '…', 30), {rank} AS r "
        f"FROM fts WHERE {clause} ORDER BY r LIMIT 20", params).fetchall()
    total = conn.execute(f"SELECT count(*) FROM fts WHERE {clause}", params).fetchone()
    facets = conn.execute(f"SELECT scale, count(*) FROM fts WHERE {clause} GROUP BY scale",
                          params).fetchall()
    return rows, total, facets


# -- the run ----------------------------------------------------------------------------------

def goals(figures: dict[str, Any], backend: str, sheets: int) -> dict[str, Any]:
    """The issue's goals for this engine and size, met or not."""
    http_p95 = max(figures["http_page"]["p95_ms"], figures["http_api"]["p95_ms"])
    rebuilt = figures["rebuild_s"]
    out: dict[str, Any] = {"rebuild_s": 60.0,
                           "rebuild_met": None if rebuilt is None else rebuilt <= 60.0}
    if backend == "sqlite":
        limit = 50.0 if sheets <= 10_000 else 100.0
        cpu_p95 = max(figures["http_page"]["cpu_p95_ms"], figures["http_api"]["cpu_p95_ms"])
        out.update(http_p95_ms=limit, http_p95_met=http_p95 <= limit,
                   http_cpu_p95_met=cpu_p95 <= limit, api_p95_vs_fts5=10.0,
                   api_p95_vs_fts5_met=figures["ratio_http_api_p95_vs_fts5"] <= 10.0)
    elif backend == "postgres":
        out.update(http_p95_ms=50.0, http_p95_met=http_p95 <= 50.0)
    else:
        out.update(http_p95_ms=150.0, http_p95_met=http_p95 <= 150.0)
    return out


def _corpus_name(db: Any) -> str | None:
    """The corpus this database holds (--reuse), None when it holds none."""
    with db.engine.connect() as conn:
        try:
            return conn.execute(text("SELECT name FROM bench_corpus")).scalar()
        except Exception:  # noqa: BLE001 - no such table: nothing to reuse
            return None


def _index_current(service: Any) -> bool:
    try:
        return not service.check_index().total
    except service.SearchUnavailable:
        return False


def run(args: argparse.Namespace) -> dict[str, Any]:
    import kb.models  # noqa: F401
    from kb import create_app
    from kb.extensions import db
    from kb.planner import refresh_statistics
    from kb.search import service

    workdir = Path(tempfile.mkdtemp(prefix="kb-bench-"))
    # --reuse: the loaded corpus is kept under that directory (SQLite) or in the given
    # PostgreSQL database, and found again by its name (profile, size, seed): a 100,000-sheet
    # corpus is built once. Its index is rebuilt only when the code expects another one.
    name = f"{args.profile}-{args.sheets}-{args.seed}"
    if args.reuse:
        args.reuse.mkdir(parents=True, exist_ok=True)
    kept = args.reuse or workdir
    database_url = args.database_url or f"sqlite:///{kept / f'kb-{name}.sqlite3'}"
    app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": database_url,
                      "KB_INDEX_DIR": str(kept / f"index-{name}"), "KB_SEARCH_BACKEND": args.backend,
                      "KB_BASE_URL": "http://127.0.0.1:5000", "RATELIMIT_ENABLED": False,
                      # Queries the readers' cache has not seen (issue 27): measure the search.
                      "KB_CACHE": "none"})
    corpus, tag_names, queries = make_corpus(args.profile, args.sheets, args.seed)
    figures: dict[str, Any] = {"profile": args.profile, "sheets": args.sheets,
                               "backend": args.backend,
                               "database": database_url.split(":", 1)[0].split("+")[0],
                               "queries": len(queries), "rounds": args.rounds,
                               "words_per_sheet": round(statistics.fmean(
                                   sum(len(str(v).split()) for v in d.values()) for d in corpus))}
    with app.app_context():
        reused = bool(args.reuse) and _corpus_name(db) == name
        if not reused:
            if database_url.startswith("postgresql"):
                with db.engine.begin() as conn:
                    conn.execute(text("DROP SCHEMA public CASCADE"))
                    conn.execute(text("CREATE SCHEMA public"))
            db.create_all()
            started = time.perf_counter()
            load_corpus(corpus, tag_names, args.seed)
            figures["load_s"] = round(time.perf_counter() - started, 2)
        figures["reused"] = reused
        figures["rebuild_s"] = None
        if not reused or not _index_current(service):
            started = time.perf_counter()
            service.rebuild_index(background=True)  # as `kb index rebuild` does
            figures["rebuild_s"] = round(time.perf_counter() - started, 2)
            started = time.perf_counter()
            refresh_statistics()  # as `kb index rebuild` and `kb import` do
            figures["analyze_s"] = round(time.perf_counter() - started, 2)
        if args.reuse and not reused:
            with db.engine.begin() as conn:
                conn.execute(text("CREATE TABLE bench_corpus (name VARCHAR(200))"))
                conn.execute(text("INSERT INTO bench_corpus VALUES (:n)"), {"n": name})

        def through_service(q: str, filters: dict[str, str]) -> None:
            result = service.search_sheets(q, filters)
            assert not result["unavailable"], result["message"]

        client = app.test_client()

        def through_page(q: str, filters: dict[str, str]) -> None:
            assert client.get("/recherche", query_string={"q": q, **filters}).status_code == 200

        def through_api(q: str, filters: dict[str, str]) -> None:
            assert client.get("/api/v1/search", query_string={"q": q, **filters}).status_code == 200

        figures["totals"] = {f"{q} {json.dumps(f) if f else ''}".strip():
                             service.search_sheets(q, f)["total"] for q, f in queries}
        figures["service"] = timed(through_service, queries, args.rounds)
        figures["http_page"] = timed(through_page, queries, args.rounds)
        figures["http_api"] = timed(through_api, queries, args.rounds)

    started = time.perf_counter()
    fts_path = kept / f"fts-{name}.sqlite3"
    if args.reuse and fts_path.exists():
        fts = sqlite3.connect(fts_path)
        figures["fts5_build_s"] = None
    else:
        fts_path.unlink(missing_ok=True)
        fts = fts_build(corpus, fts_path)
        figures["fts5_build_s"] = round(time.perf_counter() - started, 2)
    baseline = fts_count_top10 if args.profile == "zipf" else fts_search
    figures["fts5"] = timed(lambda q, f: baseline(fts, q, f), queries, args.rounds)
    figures["ratio_service_p95_vs_fts5"] = round(
        figures["service"]["p95_ms"] / max(figures["fts5"]["p95_ms"], 0.01), 1)
    figures["ratio_http_api_p95_vs_fts5"] = round(
        figures["http_api"]["p95_ms"] / max(figures["fts5"]["p95_ms"], 0.01), 1)
    figures["ratio_rebuild_vs_fts5_build"] = (
        round(figures["rebuild_s"] / max(figures["fts5_build_s"], 0.01), 1)
        if figures["rebuild_s"] and figures["fts5_build_s"] else None)
    figures["goals"] = goals(figures, args.backend, args.sheets)
    figures["load_average"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


def table(figures: dict[str, Any]) -> str:
    lines = [f"kb search benchmark: profile {figures['profile']}, {figures['sheets']} sheets "
             f"(~{figures['words_per_sheet']} words), backend {figures['backend']} "
             f"({figures['database']}), {figures['queries']} queries x {figures['rounds']} rounds",
             f"{'measure':34} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9} {'CPU p50':>9} "
             f"{'CPU p95':>9}"]
    for key, label in (("service", "kb search_sheets()"), ("http_page", "kb HTTP /recherche"),
                       ("http_api", "kb HTTP /api/v1/search"), ("fts5", "SQLite FTS5 baseline")):
        f = figures[key]
        lines.append(f"{label:34} {f['p50_ms']:>9} {f['p95_ms']:>9} {f['mean_ms']:>9} "
                     f"{f['cpu_p50_ms']:>9} {f['cpu_p95_ms']:>9}")
    g = figures["goals"]
    met = {True: "met", False: "MISSED", None: "not measured (corpus reused)"}
    lines += [
        f"load average during the run: {figures['load_average']} (CPU columns: this process "
        "only; the better estimate on a busy machine" + (", the PostgreSQL server excluded)"
                                                          if figures["backend"] == "postgres"
                                                          else ")"),
        f"{'full rebuild (s)':34} {figures['rebuild_s'] or '-':>9}   FTS5 build {figures['fts5_build_s']} s"
        f"  (ratio {figures['ratio_rebuild_vs_fts5_build']})",
        f"{'p95 ratio kb/FTS5':34} service {figures['ratio_service_p95_vs_fts5']}, "
        f"API {figures['ratio_http_api_p95_vs_fts5']}",
        f"goals: HTTP p95 <= {g['http_p95_ms']} ms: {met[g['http_p95_met']]}"
        + (f" (on CPU time: {met[g['http_cpu_p95_met']]}); " if "http_cpu_p95_met" in g
           else "; ")
        + (f"API p95 <= 10x FTS5: {met[g['api_p95_vs_fts5_met']]}; "
           if "api_p95_vs_fts5_met" in g else "")
        + f"rebuild <= 60 s: {met[g['rebuild_met']]}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=["seeds", "zipf"], default="seeds")
    parser.add_argument("--sheets", type=int, default=10_000)
    parser.add_argument("--backend", choices=["sqlite", "whoosh", "postgres"], default="sqlite")
    parser.add_argument("--database-url", default="",
                        help="default: a temporary SQLite file (needed for --backend postgres; "
                             "its public schema is dropped and recreated)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary databases")
    parser.add_argument("--reuse", type=Path, metavar="DIR",
                        help="keep the loaded corpus (SQLite files under DIR; with "
                             "--database-url, that PostgreSQL database) and reuse it in the "
                             "next runs of the same profile, size and seed")
    args = parser.parse_args()
    if args.backend == "postgres" and not args.database_url.startswith("postgresql"):
        parser.error("--backend postgres needs --database-url postgresql+psycopg://...")
    figures = run(args)
    print(table(figures))
    print(json.dumps(figures, ensure_ascii=False, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
