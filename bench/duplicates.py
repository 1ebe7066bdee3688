"""Duplicates: quality on a labelled set, lookup latency and scan time on a synthetic base.

    .venv/bin/python -m bench.duplicates                      # quality + 10,000 and 100,000 sheets
    .venv/bin/python -m bench.duplicates --sheets 10000       # one size
    .venv/bin/python -m bench.duplicates --quality-only       # the thresholds' precision and recall
    .venv/bin/python -m bench.duplicates --database-url postgresql+psycopg://postgres@127.0.0.1/kb_bench

Quality: the labelled set of bench/duplicates_corpus.py (seed sheets, the raw seed dump, synthetic variants
and hard negatives) is loaded into a fresh database through the normal write path; `kb duplicates
scan`'s pair finder is run and its pairs are compared with the labels. The baseline is the exact
score over all pairs (no index): the index must lose (almost) nothing against it.

Speed: N synthetic sheets are bulk-inserted, the lookup index is built, then similar-sheet
lookups (title typed, title + first lines, whole sheet) are timed. The baseline, measured in
the same run, is the brute-force exact score of one query against every sheet, timed on a
sample and scaled to N; figures are printed as ratios to it.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from bench.duplicates_corpus import corpus, eval_set, reword_title
from kb import create_app
from kb.auth.models import User
from kb.duplicates import index
from kb.duplicates.similarity import HIGH, HINT, SCAN, Fingerprint, score
from kb.extensions import db
from kb.sheets import operations
from kb.sheets.fields import empty_data, validate
from kb.sheets.models import Revision, Sheet
from kb.timeutil import utcnow
from kb.transaction import commit

THRESHOLDS = tuple(sorted({HINT, 0.25, 0.3, SCAN, 0.35, HIGH, 0.45, 0.5, 0.6}))


def make_app(url: str | None, tmp: Path) -> Any:
    app = create_app({"SQLALCHEMY_DATABASE_URI": url or f"sqlite:///{tmp / 'bench.sqlite3'}",
                      "SECRET_KEY": "bench", "KB_INDEX_DIR": str(tmp / "index"),
                      "TESTING": True})
    with app.app_context():
        if url:
            db.drop_all()
        db.create_all()
    return app


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def pr(predicted: set[tuple[int, int]], truth: set[tuple[int, int]]) -> tuple[float, float]:
    tp = len(predicted & truth)
    return (tp / len(predicted) if predicted else 1.0), (tp / len(truth) if truth else 1.0)


# --- quality ----------------------------------------------------------------------------------

def quality(url: str | None) -> None:
    items = eval_set()
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(url, Path(tmp))
        with app.app_context():
            # Confirmed: an unconfirmed account's sheets would wait for review, unpublished.
            moderator = User(email="bench@example.org", role="moderator", display_name="Bench",
                             email_confirmed_at=utcnow())
            db.session.add(moderator)
            db.session.flush()
            sheets = []
            for item in items:
                data = {k: v for k, v in {**empty_data(), **item.data}.items()}
                # Lenient places, as imports: the labelled set's places are synthetic.
                revision = operations.create_sheet(data, moderator, lenient_places=True)
                sheets.append(revision.sheet)
            commit()
            ids: list[int] = [sheet.id for sheet in sheets]
            # A commit this large is left to the scan by the listener: build the index here.
            index.sync(ids, commit=db.session.commit)
            family = {sheet_id: item.family for sheet_id, item in zip(ids, items, strict=True)}
            truth = {(a, b) for a, b in itertools.combinations(sorted(ids), 2)
                     if family[a] == family[b]}

            started = time.perf_counter()
            found = {(a, b): s for a, b, s in index.pairs(min(THRESHOLDS))}
            indexed_time = time.perf_counter() - started

            fps = index.load(ids)
            started = time.perf_counter()
            brute = {(a, b): score(fps[a], fps[b]) for a, b in itertools.combinations(sorted(ids), 2)}
            brute_time = time.perf_counter() - started

            print(f"Labelled set: {len(items)} sheets, {len(truth)} duplicate pairs, "
                  f"{len(brute) - len(truth)} non-duplicate pairs "
                  f"({sum(1 for i in items if i.kind.startswith('neg'))} hard negatives).")
            print(f"{'threshold':>10} {'precision':>10} {'recall':>8} {'pairs':>6} │ "
                  f"{'brute-force precision':>22} {'recall':>7}")
            for threshold in THRESHOLDS:
                p, r = pr({k for k, s in found.items() if s >= threshold}, truth)
                bp, br = pr({k for k, s in brute.items() if s >= threshold}, truth)
                marks = [label for value, label in ((HINT, "HINT (listed)"),
                                                    (SCAN, "SCAN (queued by the scan)"),
                                                    (HIGH, "HIGH (confirmation)"))
                         if threshold == value]
                mark = "  ← " + ", ".join(marks) if marks else ""
                print(f"{threshold:>10.2f} {p:>10.3f} {r:>8.3f} "
                      f"{sum(1 for s in found.values() if s >= threshold):>6} │ "
                      f"{bp:>22.3f} {br:>7.3f}{mark}")
            print(f"scan via index: {indexed_time:.2f} s; brute force over all pairs: "
                  f"{brute_time:.2f} s ({brute_time / indexed_time:.1f}× slower)")

            # Recall by kind of variant at HIGH.
            kinds: dict[str, list[bool]] = {}
            by_id = dict(zip(ids, items, strict=True))
            for a, b in truth:
                kind = by_id[b].kind if by_id[b].kind != "original" else by_id[a].kind
                kinds.setdefault(kind, []).append(found.get((a, b), 0) >= HIGH)
            print("recall at HIGH by variant: " + ", ".join(
                f"{k} {sum(v) / len(v):.2f}" for k, v in sorted(kinds.items())))
            negatives: dict[str, list[float]] = {}
            for (a, b), s in brute.items():
                for sheet_id in (a, b):
                    if by_id[sheet_id].kind.startswith("neg") and family[a] != family[b]:
                        negatives.setdefault(by_id[sheet_id].kind, []).append(s)
            print("highest score of a hard negative: " + ", ".join(
                f"{k} {max(v):.2f}" for k, v in sorted(negatives.items())))

            # The writer's view: typing a seed title shows that seed first.
            seeds = [(i, sid) for sid, i in by_id.items() if i.kind == "original"][:14]
            first = sum(1 for item, sid in seeds
                        if (m := index.similar(Fingerprint.of({"title": item.data["title"]})))
                        and m[0].sheet_id in {s for s, f in family.items() if f == item.family})
            print(f"seed title typed -> that initiative listed first: {first}/{len(seeds)}")


# --- speed ------------------------------------------------------------------------------------

def bulk_load(n: int) -> None:
    author = User(email="bulk@example.org", role="moderator", display_name="Bulk")
    db.session.add(author)
    db.session.commit()
    sheets, revisions = [], []
    for i, data in enumerate(corpus(n), start=1):
        clean = validate({**empty_data(), **data})
        sheets.append({"id": i, "slug": f"fiche-{i}", "state": "active", "title": clean["title"],
                       "city": clean["city"], "department": clean["department"],
                       "actor_type": clean["actor_type"], "scale": clean["scale"]})
        revisions.append({"id": i, "sheet_id": i, "author_id": author.id, "data": clean,
                          "status": "approved", "comment": "bench"})
    for start in range(0, n, 5000):
        db.session.execute(insert(Sheet), sheets[start:start + 5000])
        db.session.execute(insert(Revision), revisions[start:start + 5000])
    db.session.execute(text("UPDATE sheets SET approved_revision_id = id"))
    db.session.commit()


def queries(n: int, count: int, seed: int = 3) -> list[tuple[str, Fingerprint]]:
    """Lookups as the form makes them: title typed, title + first lines, whole sheet."""
    rng = random.Random(seed)
    base = corpus(n)
    out: list[tuple[str, Fingerprint]] = []
    for _ in range(count):
        data = dict(rng.choice(base))
        data["title"] = reword_title(rng, data["title"])
        kind = rng.choice(["title", "title+lines", "sheet"])
        if kind == "title":
            fp = Fingerprint.of({"title": data["title"]})
        elif kind == "title+lines":
            fp = Fingerprint.of({"title": data["title"], "context": str(data.get("context", ""))[:300]})
        else:
            fp = Fingerprint.of(data)
        out.append((kind, fp))
    return out


def speed(n: int, url: str | None, scan: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(url, Path(tmp))
        with app.app_context():
            started = time.perf_counter()
            bulk_load(n)
            load_time = time.perf_counter() - started
            started = time.perf_counter()
            index.sync(index.all_sheet_ids(), commit=db.session.commit)
            index.optimize()  # what `kb duplicates rebuild` does after a large build
            build_time = time.perf_counter() - started
            print(f"\n{n:,} sheets ({db.engine.dialect.name}): bulk insert {load_time:.0f} s, "
                  f"lookup index built in {build_time:.0f} s "
                  f"({build_time / n * 1000:.2f} ms per sheet)")

            qs = queries(n, 400)
            for _, fp in qs[:20]:  # warm the caches
                index.similar(fp)
            times: dict[str, list[float]] = {}
            for kind, fp in qs:
                started = time.perf_counter()
                index.similar(fp, limit=5)
                times.setdefault(kind, []).append((time.perf_counter() - started) * 1000)
            every = [t for v in times.values() for t in v]

            # Baseline: exact score against every sheet (sampled, then scaled to n).
            sample_ids = list(range(1, min(n, 2000) + 1))
            started = time.perf_counter()
            sample = index.load(sample_ids)
            load_ms = (time.perf_counter() - started) * 1000
            base_ms = []
            for _, fp in qs[:30]:
                started = time.perf_counter()
                for other in sample.values():
                    score(fp, other)
                base_ms.append(((time.perf_counter() - started) * 1000 + load_ms) * n / len(sample))
            baseline = statistics.median(base_ms)
            print(f"  brute-force baseline (exact score against all {n:,}): "
                  f"{baseline:,.0f} ms per lookup")
            for kind, values in [*sorted(times.items()), ("all", every)]:
                p50, p95 = percentile(values, 50), percentile(values, 95)
                print(f"  lookup {kind:<12} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  "
                      f"(p95 = 1/{baseline / p95:,.0f} of the baseline)")
            if scan:
                started = time.perf_counter()
                found = sum(1 for _ in index.pairs(HIGH))
                scan_time = time.perf_counter() - started
                print(f"  scan of the whole base: {scan_time:.0f} s, {found} pair(s) ≥ {HIGH} "
                      f"(brute force would score {n * (n - 1) // 2:,} pairs: about "
                      f"{baseline / 1000 * n / 2 / 3600:,.1f} h at the baseline rate)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sheets", type=int, action="append",
                        help="size of the synthetic base (repeatable; default 10000 and 100000)")
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--no-quality", action="store_true")
    parser.add_argument("--no-scan", action="store_true", help="skip timing the full scan")
    parser.add_argument("--quality-only", action="store_true",
                        help="only the labelled set's precision and recall per threshold")
    args = parser.parse_args()
    if not args.no_quality:
        quality(args.database_url)
    if args.quality_only:
        return
    for n in args.sheets or [10_000, 100_000]:
        speed(n, args.database_url, scan=not args.no_scan)


if __name__ == "__main__":
    main()
