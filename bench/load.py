"""Throughput under a mixed load: gunicorn with 4 workers, as the README runs it, on a
10,000-sheet SQLite base (the `sqlite` search engine), driven for a fixed time from 127.0.0.1.

    .venv/bin/python -m bench.load                       # 10,000 sheets, 30 s of mixed load
    .venv/bin/python -m bench.load --sheets 2000 --seconds 20 --clients 16

The base is bench.search's `zipf` corpus (250-500 words a sheet), written straight into a new
database, then indexed (`kb index rebuild`) and fingerprinted (`kb duplicates rebuild`). The
clients (threads of this process, one keep-alive connection each) then run:
- readers: searches (/recherche and /api/v1/search, one to three mid-frequency words; 55 % of
  the reads), sheet pages, API reads (one sheet, a page of the list), embed lists;
- writers (a quarter of the clients): read a sheet through the API, then PATCH it with the
  `base_revision` they read (a moderator's token: published at once, indexed in the commit).

`--profile readers` (issue 27): 16 anonymous readers on a reader's mix while one moderator
publishes an edit every 2 s (the hottest sheets, through the API). Readers ask what readers
ask: the home page, sheet pages, search pages, tag listings, embeds and API reads, the sheets,
queries and tags drawn from a Zipf law (a few are read much more than the rest). Each edit
writes a counter into the sheet's summary; a read of a sheet page, embed or API sheet that
started after an edit had committed and shows an older counter is counted stale. Prints the
readers' requests/s as a share of the trivial route in the same run, p95 per route, and the
stale count (goals: >= 50 %, read p95 <= 50 ms, 0 stale). Anonymous answers come from the
page cache (kb/cache): a file cache in the run's folder, or Redis with --cache redis.

    .venv/bin/python -m bench.load --profile readers
    .venv/bin/python -m bench.load --profile readers --database-url \
        postgresql+psycopg://postgres@127.0.0.1:5432/test        # a schema of its own, dropped

Baseline, same run, same clients, same server: the trivial route /robots.txt for the same
time. Prints requests/s, p50/p95 per kind, 5xx and other errors, and the ratio of the mixed
load's requests/s to the trivial route's (goal: at least 40 %, no error). Everything listens
on 127.0.0.1 only; gunicorn is stopped at the end, and the database removed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
READ_MIX = (("search_page", 0.275), ("search_api", 0.275), ("sheet_page", 0.2),
            ("api_sheet", 0.1), ("api_list", 0.05), ("embed_list", 0.1))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_base(folder: Path, sheets: int, env: dict[str, str]) -> dict[str, Any]:
    """The database the server will use, its queries, sheets and a moderator's API token."""
    os.environ.update(env)
    from bench.search import ZipfSampler, load_corpus, make_corpus, seed_frequencies
    from kb import create_app
    from kb.auth.operations import create_token, create_user
    from kb.duplicates import index as duplicates
    from kb.extensions import db
    from kb.planner import refresh_statistics
    from kb.search.service import rebuild_index
    from kb.transaction import commit

    app = create_app({"KB_CACHE": "none"})
    runner = app.test_cli_runner()
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    corpus, tags, _ = make_corpus("zipf", sheets, 20261122)
    started = time.perf_counter()
    with app.app_context():
        load_corpus(corpus, tags, 20261122)
        rebuild_index(background=True)
        duplicates.sync(duplicates.all_sheet_ids(), commit=db.session.commit)
        refresh_statistics()  # as `kb import` leaves the base
        user = create_user("charge@example.org", "mot-de-passe-solide", "moderator", "Charge")
        commit()
        token = create_token(user)
        commit()
        db.engine.dispose()
    words = ZipfSampler(seed_frequencies(), random.Random(3)).mid_frequency()
    return {"token": token, "tags": tags, "words": words, "sheets": sheets,
            "build_s": round(time.perf_counter() - started, 1)}


class Client:
    """One keep-alive HTTP connection, reopened when the server closes it."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.last_cache = ""  # X-Cache of the last answer: "hit", "miss" or ""

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        head = {"Content-Type": "application/json"} if data else {}
        head.update(headers or {})
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=head)
                response = self.conn.getresponse()
                self.last_cache = response.getheader("X-Cache") or ""
                return response.status, response.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.status: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.failures: list[str] = []
        self.hits: dict[str, int] = defaultdict(int)

    def add(self, kind: str, seconds: float, status: int) -> None:
        with self.lock:
            self.times[kind].append(seconds)
            self.status[kind][status] += 1


def reader_request(base: dict[str, Any], rng: random.Random) -> tuple[str, str, str]:
    kind = rng.choices([k for k, _ in READ_MIX], [w for _, w in READ_MIX])[0]
    slug = f"fiche-{rng.randint(1, base['sheets'])}"
    q = " ".join(rng.sample(base["words"], rng.randint(1, 3)))
    path = {
        "search_page": "/recherche?" + urlencode({"q": q}),
        "search_api": "/api/v1/search?" + urlencode({"q": q}),
        "sheet_page": f"/fiches/{slug}",
        "api_sheet": f"/api/v1/sheets/{slug}",
        "api_list": f"/api/v1/sheets?page={rng.randint(1, 50)}",
        "embed_list": "/embed/list?" + urlencode({"tag": rng.choice(base["tags"]), "limit": 10}),
    }[kind]
    return kind, "GET", path


# --- the readers profile (issue 27) --------------------------------------------------------

READERS_MIX = (("home", 0.10), ("sheet_page", 0.30), ("search_page", 0.15), ("tag_page", 0.15),
               ("embed_sheet", 0.05), ("embed_list", 0.05), ("api_sheet", 0.10),
               ("api_search", 0.05), ("api_list", 0.05))
SHOWS_SUMMARY = ("sheet_page", "embed_sheet", "api_sheet")  # where a stale edit would show
MARK = re.compile(rb"Edition-(\d+)-fin")
HOT = 5  # the moderator edits the most read sheets


def zipf_weights(n: int, s: float = 1.0) -> list[float]:
    return [1 / (rank ** s) for rank in range(1, n + 1)]


class Published:
    """What the moderator has committed: slug -> the counter of its last edit."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latest: dict[str, int] = {}
        self.stale: list[str] = []
        self.checked = 0

    def commit(self, slug: str, counter: int) -> None:
        with self.lock:
            self.latest[slug] = counter

    def committed(self, slug: str) -> int:
        with self.lock:
            return self.latest.get(slug, 0)


def readers_request(base: dict[str, Any], rng: random.Random) -> tuple[str, str, str | None]:
    from slugify import slugify

    kind = rng.choices([k for k, _ in READERS_MIX], [w for _, w in READERS_MIX])[0]
    sheets = min(base["sheets"], 2000)
    slug = f"fiche-{rng.choices(range(1, sheets + 1), base['sheet_weights'])[0]}"
    query = rng.choices(base["queries"], base["query_weights"])[0]
    tag = rng.choices(base["tags"], base["tag_weights"])[0]
    path = {
        "home": "/",
        "sheet_page": f"/fiches/{slug}",
        "search_page": "/recherche?" + urlencode({"q": query}),
        "tag_page": f"/tags/{slugify(tag, max_length=80)}",
        "embed_sheet": f"/embed/sheets/{slug}",
        "embed_list": "/embed/list?" + urlencode({"tag": tag, "limit": 10}),
        "api_sheet": f"/api/v1/sheets/{slug}",
        "api_search": "/api/v1/search?" + urlencode({"q": query}),
        "api_list": f"/api/v1/sheets?page={rng.choices(range(1, 21), zipf_weights(20))[0]}",
    }[kind]
    return kind, path, slug if kind in SHOWS_SUMMARY else None


def drive_readers(port: int, base: dict[str, Any], clients: int, seconds: float,
                  recorder: Recorder, published: Published, period: float = 2.0) -> float:
    """`clients` anonymous readers, and one moderator publishing an edit every `period` s."""
    stop = time.perf_counter() + seconds
    auth = {"Authorization": f"Bearer {base['token']}"}

    def timed(client: Client, kind: str, method: str, path: str, body: Any = None,
              headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        started = time.perf_counter()
        try:
            status, payload = client.request(method, path, body, headers)
        except (http.client.HTTPException, OSError) as exc:
            recorder.failures.append(f"{kind} {path}: {exc!r}")
            status, payload = 599, b""
        recorder.add(kind, time.perf_counter() - started, status)
        return status, payload

    def read(number: int) -> None:
        rng = random.Random(1000 + number)
        client = Client(port)
        while time.perf_counter() < stop:
            kind, path, slug = readers_request(base, rng)
            expected = published.committed(slug) if slug else 0  # committed before we ask
            status, payload = timed(client, kind, "GET", path)
            if client.last_cache == "hit":
                with recorder.lock:
                    recorder.hits[kind] += 1
            if slug and expected and status == 200:
                seen = MARK.search(payload)
                with published.lock:
                    published.checked += 1
                    if seen is None or int(seen.group(1)) < expected:
                        published.stale.append(f"{path}: {seen and seen.group(0)!r} < {expected}")

    def moderate() -> None:
        client = Client(port)
        counter = 0
        while time.perf_counter() < stop:
            started = time.perf_counter()
            counter += 1
            slug = f"fiche-{counter % HOT + 1}"
            status, payload = client.request("GET", f"/api/v1/sheets/{slug}", headers=auth)
            if status == 200:
                revision = json.loads(payload)["revision"]
                status, _ = timed(client, "api_edit", "PATCH", f"/api/v1/sheets/{slug}",
                                  {"base_revision": revision,
                                   "summary": f"Accueil et médiation, Edition-{counter}-fin."},
                                  auth)
                if status == 200:
                    published.commit(slug, counter)  # the answer comes after the commit
            time.sleep(max(0.0, min(period - (time.perf_counter() - started),
                                    stop - time.perf_counter())))

    threads = [threading.Thread(target=read, args=(n,)) for n in range(clients)]
    threads.append(threading.Thread(target=moderate))
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    return time.perf_counter() - started


def drive(port: int, base: dict[str, Any], clients: int, seconds: float, trivial: bool,
          recorder: Recorder) -> float:
    """Run the clients for `seconds`; returns the measured wall time."""
    stop = time.perf_counter() + seconds
    writers = 0 if trivial else max(1, clients // 4)
    auth = {"Authorization": f"Bearer {base['token']}"}

    def timed(client: Client, kind: str, method: str, path: str, body: Any = None,
              headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        started = time.perf_counter()
        try:
            status, payload = client.request(method, path, body, headers)
        except (http.client.HTTPException, OSError) as exc:
            recorder.failures.append(f"{kind} {path}: {exc!r}")
            status, payload = 599, b""
        recorder.add(kind, time.perf_counter() - started, status)
        return status, payload

    def run(number: int) -> None:
        rng = random.Random(number)
        client = Client(port)
        writer = number < writers
        while time.perf_counter() < stop:
            if trivial:
                timed(client, "trivial", "GET", "/robots.txt")
            elif writer:
                # Each writer edits its own sheets: conflicts would be the clients' doing.
                slug = f"fiche-{rng.randrange(number + 1, base['sheets'] + 1, writers)}"
                status, payload = timed(client, "api_sheet", "GET", f"/api/v1/sheets/{slug}")
                if status != 200:
                    continue
                revision = json.loads(payload)["revision"]
                timed(client, "api_edit", "PATCH", f"/api/v1/sheets/{slug}",
                      {"base_revision": revision,
                       "summary": f"Mise à jour {rng.randint(1, 10**9)} : accueil et médiation."},
                      auth)
            else:
                timed(client, *reader_request(base, rng))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    return time.perf_counter() - started


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))] * 1000, 1)


def summary(recorder: Recorder, wall: float) -> dict[str, Any]:
    kinds = {}
    for kind, samples in sorted(recorder.times.items()):
        status = recorder.status[kind]
        kinds[kind] = {"n": len(samples), "req_s": round(len(samples) / wall, 1),
                       "p50_ms": percentile(samples, 0.5), "p95_ms": percentile(samples, 0.95),
                       "mean_ms": round(statistics.fmean(samples) * 1000, 1),
                       "cache_hits": round(recorder.hits.get(kind, 0) / len(samples), 2),
                       "5xx": sum(n for s, n in status.items() if s >= 500),
                       "other_errors": sum(n for s, n in status.items() if 400 <= s < 500)}
    total = sum(k["n"] for k in kinds.values())
    return {"wall_s": round(wall, 1), "requests": total, "req_s": round(total / wall, 1),
            "5xx": sum(k["5xx"] for k in kinds.values()),
            "errors": sum(k["5xx"] + k["other_errors"] for k in kinds.values()),
            "kinds": kinds}


def wait_until_up(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit("gunicorn stopped while starting")
        try:
            status, _ = Client(port).request("GET", "/robots.txt")
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("gunicorn did not answer in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=["mixed", "readers"], default="mixed",
                        help="mixed: a quarter of writers (default); readers: anonymous readers "
                             "and one moderator publishing every 2 s (issue 27)")
    parser.add_argument("--sheets", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--backend", choices=["sqlite", "whoosh", "postgres"], default=None,
                        help="search engine (default: the database's)")
    parser.add_argument("--database-url", default="",
                        help="PostgreSQL URL: the run gets a schema of its own, dropped at the end "
                             "(default: a temporary SQLite file)")
    parser.add_argument("--cache", choices=["filesystem", "redis", "none"], default="filesystem",
                        help="the page cache of anonymous answers (kb/cache)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="seconds of load before measuring (readers: fills the page cache)")
    parser.add_argument("--publish-every", type=float, default=2.0,
                        help="readers profile: seconds between the moderator's edits")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="kb-load-"))
    port = free_port()
    database_url = f"sqlite:///{folder / 'kb.sqlite3'}"
    schema = ""
    if args.database_url:
        if not args.database_url.startswith("postgresql"):
            parser.error("--database-url: a postgresql+psycopg://… URL")
        schema = f"kb_load_{os.getpid()}"
        _schema(args.database_url, schema, create=True)
        database_url = f"{args.database_url}{'&' if '?' in args.database_url else '?'}" \
                       f"options=-csearch_path%3D{schema}"
    backend = args.backend or ("postgres" if schema else "sqlite")
    env = {"KB_DATABASE_URL": database_url,
           "KB_INDEX_DIR": str(folder / "index"), "KB_SEARCH_BACKEND": backend,
           "KB_SECRET_KEY": "load-bench", "KB_BASE_URL": f"http://127.0.0.1:{port}",
           "KB_CACHE": args.cache, "KB_CACHE_DIR": str(folder / "page-cache"),
           "KB_REDIS_URL": args.redis_url if args.cache == "redis" else "",
           # One client token makes every edit: the per-user submission limit is not the point.
           "KB_RATE_LIMIT_SUBMIT": "1000000 per minute"}
    if args.cache == "redis":
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()  # a database of its own (default 15)
    process: subprocess.Popen[bytes] | None = None
    published = Published()
    try:
        base = build_base(folder, args.sheets, env)
        rng = random.Random(27)
        base["queries"] = [" ".join(rng.sample(base["words"], rng.randint(1, 2)))
                           for _ in range(200)]
        base["query_weights"] = zipf_weights(len(base["queries"]))
        base["tag_weights"] = zipf_weights(len(base["tags"]))
        base["sheet_weights"] = zipf_weights(min(args.sheets, 2000))
        command = [str(Path(sys.executable).parent / "gunicorn"), "--workers", str(args.workers),
                   "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "kb:create_app()"]
        process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env,
                                                           "PYTHONPATH": str(ROOT)},
                                   start_new_session=True)
        wait_until_up(port, process)
        mixed = Recorder()
        if args.profile == "readers":
            drive_readers(port, base, args.clients, args.warmup, Recorder(), Published(),
                          args.publish_every)  # warm up: a serving site's cache is warm
            mixed_wall = drive_readers(port, base, args.clients, args.seconds, mixed, published,
                                       args.publish_every)
        else:
            drive(port, base, args.clients, args.warmup, False, Recorder())  # warm every worker
            mixed_wall = drive(port, base, args.clients, args.seconds, False, mixed)
        trivial = Recorder()
        trivial_wall = drive(port, base, args.clients, args.seconds, True, trivial)
    finally:
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # gunicorn and the workers it started
            process.wait(30)
        shutil.rmtree(folder, ignore_errors=True)
        if schema:
            _schema(args.database_url, schema, create=False)
    figures = {"profile": args.profile, "sheets": args.sheets, "backend": backend,
               "database": "postgresql" if schema else "sqlite", "cache": args.cache,
               "workers": args.workers, "clients": args.clients,
               "writers": 1 if args.profile == "readers" else max(1, args.clients // 4),
               "seconds": args.seconds, "warmup_s": args.warmup, "publish_every_s": args.publish_every,
               "base_build_s": base["build_s"],
               "mixed": summary(mixed, mixed_wall), "trivial": summary(trivial, trivial_wall),
               "cpus": os.cpu_count(), "load_average": os.getloadavg()}
    if args.profile == "readers":
        reads = {k: v for k, v in figures["mixed"]["kinds"].items() if k != "api_edit"}
        figures["reads_req_s"] = round(sum(k["n"] for k in reads.values()) / mixed_wall, 1)
        figures["ratio_mixed_vs_trivial"] = round(
            figures["reads_req_s"] / max(figures["trivial"]["req_s"], 0.01), 3)
        figures["read_p95_max_ms"] = max(k["p95_ms"] for k in reads.values())
        figures["edits_committed"] = figures["mixed"]["kinds"].get("api_edit", {}).get("n", 0)
        figures["stale_checked"] = published.checked
        figures["stale"] = len(published.stale)
        figures["goal_met"] = figures["ratio_mixed_vs_trivial"] >= 0.5 and \
            figures["read_p95_max_ms"] <= 50 and figures["stale"] == 0 and \
            figures["mixed"]["errors"] == 0 and figures["trivial"]["errors"] == 0
    else:
        figures["ratio_mixed_vs_trivial"] = round(
            figures["mixed"]["req_s"] / max(figures["trivial"]["req_s"], 0.01), 3)
        figures["goal_met"] = figures["ratio_mixed_vs_trivial"] >= 0.4 and \
            figures["mixed"]["errors"] == 0 and figures["trivial"]["errors"] == 0
    print(table(figures))
    print(json.dumps(figures, indent=2))
    if mixed.failures:
        print("failures:", *mixed.failures[:10], sep="\n  ")
    if published.stale:
        print("stale reads:", *published.stale[:10], sep="\n  ")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


def _schema(url: str, schema: str, create: bool) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        if create:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()


def table(figures: dict[str, Any]) -> str:
    mixed, trivial = figures["mixed"], figures["trivial"]
    lines = [f"kb load benchmark ({figures['profile']}): gunicorn x{figures['workers']}, "
             f"{figures['sheets']} sheets, {figures['database']}, engine {figures['backend']}, "
             f"page cache {figures['cache']}, {figures['clients']} clients "
             f"({figures['writers']} writer(s)), {figures['seconds']} s per phase",
             f"{'kind':14} {'n':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'5xx':>5} {'4xx':>5}"
             f" {'hits':>5}"]
    for kind, k in {**mixed["kinds"], **trivial["kinds"]}.items():
        lines.append(f"{kind:14} {k['n']:>7} {k['req_s']:>8} {k['p50_ms']:>8} {k['p95_ms']:>8} "
                     f"{k['5xx']:>5} {k['other_errors']:>5} {k['cache_hits']:>5}")
    met = "met" if figures["goal_met"] else "MISSED"
    if figures["profile"] == "readers":
        lines += [f"readers: {figures['reads_req_s']} req/s, {mixed['errors']} error(s); trivial "
                  f"route /robots.txt: {trivial['req_s']} req/s; ratio "
                  f"{figures['ratio_mixed_vs_trivial']}; worst read p95 "
                  f"{figures['read_p95_max_ms']} ms; stale reads {figures['stale']} of "
                  f"{figures['stale_checked']} checked after a publish (goal >= 0.5, <= 50 ms, "
                  f"0 stale, no error: {met})"]
    else:
        lines += [f"mixed load: {mixed['req_s']} req/s, {mixed['errors']} error(s); trivial "
                  f"route /robots.txt: {trivial['req_s']} req/s; ratio "
                  f"{figures['ratio_mixed_vs_trivial']} (goal >= 0.4 and no error: {met})"]
    lines.append(f"load average at the end: {', '.join(f'{x:.1f}' for x in figures['load_average'])}"
                 f" on {figures['cpus']} CPUs (shared with other work: figures vary)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
