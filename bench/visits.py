"""Registrations at once: 500 professionals register over 100 visit slots of 5 seats, all
released together, against gunicorn with 4 workers (as bench.load starts it) on SQLite or
PostgreSQL.

    .venv/bin/python -m bench.visits
    .venv/bin/python -m bench.visits --people 500 --slots 100 --capacity 5 \
        --database postgresql+psycopg://postgres@127.0.0.1:5432/test

Each professional registers on one slot drawn at random (some slots fill, their latecomers
wait in line) with their own API token, on their own connection; all are released by one
barrier. Prints registrations per second (wall clock from the barrier to the last answer),
p50/p95 per request, the answers by status, and seats oversold: for every slot, registered
people beyond its capacity, or a seat counter that disagrees with the registrations (must
be 0). Everything listens on 127.0.0.1 only; gunicorn is stopped at the end and the
database removed (a PostgreSQL run uses a schema of its own, dropped at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.load import Client, free_port, wait_until_up

ROOT = Path(__file__).resolve().parent.parent


def build_base(env: dict[str, str], people: int, slots: int, capacity: int) -> dict[str, Any]:
    """Sheets with slots, and `people` confirmed accounts with an API token each."""
    os.environ.update(env)
    from werkzeug.security import generate_password_hash

    from kb import create_app
    from kb.auth.models import User
    from kb.auth.operations import create_token, create_user
    from kb.extensions import db
    from kb.sheets import operations as sheets
    from kb.timeutil import isoformat, utcnow
    from kb.transaction import commit
    from kb.visits import operations as visits
    from tests.conftest import sheet_data

    app = create_app()
    result = app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        host = create_user("hote@example.org", "mot-de-passe-solide", "moderator", "Hôte")
        commit()
        slot_ids = []
        start = utcnow() + timedelta(days=20)
        for n in range(slots):
            if n % 5 == 0:
                sheet = sheets.create_sheet(sheet_data(title=f"Initiative {n // 5}"), host).sheet
            when = start + timedelta(hours=n)
            slot = visits.create_slot(sheet, host, {
                "starts_at": isoformat(when), "ends_at": isoformat(when + timedelta(hours=2)),
                "place": "Mairie", "capacity": capacity, "min_participants": 1,
                "host_name": "Hôte"})
            slot_ids.append(slot.id)
        commit()
        # One password hash for all: hashing 500 passwords is not what is measured.
        password = generate_password_hash("mot-de-passe-solide")
        users = [User(email=f"pro{n}@example.org", display_name=f"Pro {n}", role="contributor",
                      password_hash=password, email_confirmed_at=utcnow()) for n in range(people)]
        db.session.add_all(users)
        commit()
        tokens = [create_token(user) for user in users]
        commit()
        db.engine.dispose()
    return {"slot_ids": slot_ids, "tokens": tokens}


def register_all(port: int, base: dict[str, Any], seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    targets = [rng.choice(base["slot_ids"]) for _ in base["tokens"]]
    clients = [Client(port) for _ in base["tokens"]]
    for client in clients:  # connect first: the barrier releases requests, not handshakes
        client.conn.connect()
    barrier = threading.Barrier(len(clients) + 1)
    times: list[float] = [0.0] * len(clients)
    statuses: list[int] = [0] * len(clients)

    def run(i: int) -> None:
        barrier.wait()
        began = time.perf_counter()
        try:
            statuses[i], _ = clients[i].request(
                "POST", f"/api/v1/visits/{targets[i]}/registrations", {},
                {"Authorization": f"Bearer {base['tokens'][i]}"})
        except OSError as exc:
            statuses[i] = -1
            print("error:", exc, file=sys.stderr)
        times[i] = time.perf_counter() - began

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ordered = sorted(times)
    return {"people": len(clients), "wall_s": round(wall, 2),
            "registrations_per_s": round(len(clients) / wall, 1),
            "p50_ms": round(statistics.median(ordered) * 1000),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000),
            "statuses": dict(Counter(statuses))}


def oversold(env: dict[str, str]) -> dict[str, int]:
    os.environ.update(env)
    from sqlalchemy import func, select

    from kb import create_app
    from kb.extensions import db
    from kb.visits.models import VisitRegistration, VisitSlot

    app = create_app()
    with app.app_context():
        registered: dict[int, int] = {slot_id: count for slot_id, count in db.session.execute(
            select(VisitRegistration.slot_id, func.count()).where(
                VisitRegistration.status == "registered").group_by(VisitRegistration.slot_id))}
        waiting = db.session.scalar(select(func.count()).where(
            VisitRegistration.status == "waitlisted")) or 0
        beyond = disagree = 0
        for slot in db.session.scalars(select(VisitSlot)):
            count = registered.get(slot.id, 0)
            beyond += max(0, count - slot.capacity)
            disagree += count != slot.seats_taken
        result = {"registered": sum(registered.values()), "waitlisted": waiting,
                  "seats_oversold": beyond, "counters_wrong": disagree}
        db.engine.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--slots", type=int, default=100)
    parser.add_argument("--capacity", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--database", default="", help="a PostgreSQL URL (default: SQLite)")
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="kb-visits-"))
    port = free_port()
    schema = f"kb_bench_visits_{os.getpid()}"
    url = f"sqlite:///{folder / 'kb.sqlite3'}"
    if args.database:
        from sqlalchemy import create_engine, text

        with create_engine(args.database).begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = f"{args.database}{'&' if '?' in args.database else '?'}options=-csearch_path%3D{schema}"
    env = {"KB_DATABASE_URL": url, "KB_INDEX_DIR": str(folder / "index"),
           "KB_SECRET_KEY": "visits-bench", "KB_BASE_URL": f"http://127.0.0.1:{port}"}
    process: subprocess.Popen[bytes] | None = None
    try:
        base = build_base(env, args.people, args.slots, args.capacity)
        command = [str(Path(sys.executable).parent / "gunicorn"), "--workers", str(args.workers),
                   "--bind", f"127.0.0.1:{port}", "--backlog", "2048", "--log-level", "warning",
                   "kb:create_app()"]
        process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env},
                                   start_new_session=True)
        wait_until_up(port, process)
        figures = register_all(port, base, args.seed)
        figures.update(oversold(env))
    finally:
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # gunicorn and the workers it started
            process.wait(30)
        shutil.rmtree(folder, ignore_errors=True)
        if args.database:
            from sqlalchemy import create_engine, text

            with create_engine(args.database).begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    figures.update({"slots": args.slots, "capacity": args.capacity, "workers": args.workers,
                    "database": "postgresql" if args.database else "sqlite"})
    print(f"kb visits benchmark ({figures['database']}, gunicorn x{args.workers}): "
          f"{figures['people']} registrations over {args.slots} slots of {args.capacity} seats: "
          f"{figures['registrations_per_s']} registrations/s, p50 {figures['p50_ms']} ms, "
          f"p95 {figures['p95_ms']} ms, seats oversold {figures['seats_oversold']}")
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    if figures["seats_oversold"] or figures["counters_wrong"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
