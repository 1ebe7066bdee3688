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

    app = create_app()
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

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        head = {"Content-Type": "application/json"} if data else {}
        head.update(headers or {})
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=head)
                response = self.conn.getresponse()
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
    parser.add_argument("--sheets", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--backend", choices=["sqlite", "whoosh"], default="sqlite")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="kb-load-"))
    port = free_port()
    env = {"KB_DATABASE_URL": f"sqlite:///{folder / 'kb.sqlite3'}",
           "KB_INDEX_DIR": str(folder / "index"), "KB_SEARCH_BACKEND": args.backend,
           "KB_SECRET_KEY": "load-bench", "KB_BASE_URL": f"http://127.0.0.1:{port}",
           # One client token makes every edit: the per-user submission limit is not the point.
           "KB_RATE_LIMIT_SUBMIT": "1000000 per minute"}
    process: subprocess.Popen[bytes] | None = None
    try:
        base = build_base(folder, args.sheets, env)
        command = [str(Path(sys.executable).parent / "gunicorn"), "--workers", str(args.workers),
                   "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "kb:create_app()"]
        process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env},
                                   start_new_session=True)
        wait_until_up(port, process)
        drive(port, base, args.clients, 3, False, Recorder())  # warm every worker
        mixed = Recorder()
        mixed_wall = drive(port, base, args.clients, args.seconds, False, mixed)
        trivial = Recorder()
        trivial_wall = drive(port, base, args.clients, args.seconds, True, trivial)
    finally:
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # gunicorn and the workers it started
            process.wait(30)
        shutil.rmtree(folder, ignore_errors=True)
    figures = {"sheets": args.sheets, "backend": args.backend, "workers": args.workers,
               "clients": args.clients, "writers": max(1, args.clients // 4),
               "seconds": args.seconds, "base_build_s": base["build_s"],
               "mixed": summary(mixed, mixed_wall), "trivial": summary(trivial, trivial_wall),
               "load_average": os.getloadavg()}
    figures["ratio_mixed_vs_trivial"] = round(
        figures["mixed"]["req_s"] / max(figures["trivial"]["req_s"], 0.01), 3)
    figures["goal_met"] = figures["ratio_mixed_vs_trivial"] >= 0.4 and \
        figures["mixed"]["errors"] == 0 and figures["trivial"]["errors"] == 0
    print(table(figures))
    print(json.dumps(figures, indent=2))
    if mixed.failures:
        print("failures:", *mixed.failures[:10], sep="\n  ")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


def table(figures: dict[str, Any]) -> str:
    mixed, trivial = figures["mixed"], figures["trivial"]
    lines = [f"kb load benchmark: gunicorn x{figures['workers']}, {figures['sheets']} sheets, "
             f"engine {figures['backend']}, {figures['clients']} clients "
             f"({figures['writers']} writers), {figures['seconds']} s per phase",
             f"{'kind':14} {'n':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'5xx':>5} {'4xx':>5}"]
    for kind, k in {**mixed["kinds"], **trivial["kinds"]}.items():
        lines.append(f"{kind:14} {k['n']:>7} {k['req_s']:>8} {k['p50_ms']:>8} {k['p95_ms']:>8} "
                     f"{k['5xx']:>5} {k['other_errors']:>5}")
    lines += [f"mixed load: {mixed['req_s']} req/s, {mixed['errors']} error(s); trivial route "
              f"/robots.txt: {trivial['req_s']} req/s; ratio {figures['ratio_mixed_vs_trivial']}"
              f" (goal >= 0.4 and no error: {'met' if figures['goal_met'] else 'MISSED'})",
              f"load average at the end: {', '.join(f'{x:.1f}' for x in figures['load_average'])}"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
