"""API search latency on a corpus already loaded by `bench.search --reuse` (no load, no
rebuild): the seeds profile's 18 queries through `GET /api/v1/search` in process, warmed once,
then `--rounds` times each; wall-clock and this process's CPU percentiles as JSON. Quick
before/after comparisons on the same database (issue 27).

    .venv/bin/python -m bench.search_probe sqlite:////tmp/corpus/kb-seeds-100000-20261122.sqlite3 sqlite
    .venv/bin/python -m bench.search_probe postgresql+psycopg://postgres@127.0.0.1:5432/kb_bench postgres
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time


def main() -> None:
    import kb.models  # noqa: F401
    from bench.search import QUERIES, percentiles
    from kb import create_app

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database_url")
    parser.add_argument("backend", choices=["sqlite", "postgres", "whoosh"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--per-query", action="store_true",
                        help="also each query's slowest wall-clock time, slowest first")
    args = parser.parse_args()
    app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": args.database_url,
                      "KB_INDEX_DIR": tempfile.mkdtemp(prefix="kb-probe-"),
                      "KB_SEARCH_BACKEND": args.backend, "RATELIMIT_ENABLED": False,
                      "KB_BASE_URL": "http://127.0.0.1:5000",
                      # Queries the readers' cache has not seen (issue 27): measure the search.
                      "KB_CACHE": "none"})
    client = app.test_client()
    with app.app_context():
        for q, filters in QUERIES:  # warm
            client.get("/api/v1/search", query_string={"q": q, **filters})
        wall, cpu = [], []
        slowest: dict[str, float] = {}
        for _ in range(args.rounds):
            for q, filters in QUERIES:
                start_cpu, start = time.process_time(), time.perf_counter()
                response = client.get("/api/v1/search", query_string={"q": q, **filters})
                assert response.status_code == 200, response.json
                cpu.append(time.process_time() - start_cpu)
                wall.append(time.perf_counter() - start)
                label = f"{q} {filters}" if filters else q
                slowest[label] = max(slowest.get(label, 0.0), wall[-1])
    figures: dict[str, object] = {"api_wall": percentiles(wall), "api_cpu": percentiles(cpu)}
    if args.per_query:
        figures["slowest_ms"] = {label: round(seconds * 1000, 1) for label, seconds in
                                 sorted(slowest.items(), key=lambda item: -item[1])}
    print(json.dumps(figures, indent=1 if args.per_query else None, ensure_ascii=False))


if __name__ == "__main__":
    main()
