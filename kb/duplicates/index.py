"""The similarity lookup structure: fingerprints and an inverted index of features, in the database.

Derived data: `refresh()` rewrites the rows of the given sheets (called after every commit that
touched them, via kb.transaction.sheets_changed), `rebuild()` recomputes everything and
`reconcile()` repairs drift. Lookups read a few index ranges and never rescan the base:
1. count how many sheets share each feature of the query (features shared by too many sheets,
   such as a very common title word, are skipped: they select nothing);
2. read the postings of the remaining features, weigh each sheet by the rarity of what it shares;
3. score the best few exactly on the stored normalised text and keep those above the threshold.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, text

from kb.duplicates.models import DuplicateFeature, DuplicateFingerprint
from kb.duplicates.similarity import (
    HINT,
    TITLE_FEATURE,
    VERSION,
    Fingerprint,
    band_keys_batch,
    score,
)
from kb.extensions import db
from kb.sheets.models import Revision, Sheet, SheetState, published_sheets

MAX_POSTINGS = 1000  # a feature shared by more sheets than this selects nothing useful
MAX_WORD_POSTINGS = 200  # the same for one title word
SCAN_MAX_POSTINGS = 100  # the same when scanning the whole base
TOP_K = 40  # sheets scored exactly per lookup
CHUNK = 500  # sheets per batch when rebuilding


@dataclass(frozen=True)
class Match:
    sheet_id: int
    slug: str
    title: str
    score: float


def _rows(sheets: Iterable[tuple[int, int, dict[str, Any]]]
          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows = [(sheet_id, revision_id, Fingerprint.of(data)) for sheet_id, revision_id, data in sheets]
    bands = band_keys_batch([fp.body for _, _, fp in rows])  # MinHash of the batch at once
    fingerprints: list[dict[str, Any]] = []
    features: list[dict[str, Any]] = []
    for (sheet_id, revision_id, fp), sheet_bands in zip(rows, bands, strict=True):
        fingerprints.append({"sheet_id": sheet_id, "version": VERSION, "revision_id": revision_id,
                             "title": fp.title[:250], "shingles": fp.dump()})
        features.extend({"feature": f, "sheet_id": sheet_id, "kind": kind}
                        for f, kind in set(fp.features(sheet_bands)))
    return fingerprints, features


def refresh(sheet_ids: Sequence[int]) -> None:
    """Rewrite the lookup rows of these sheets from their approved revision (none if unpublished)."""
    for start in range(0, len(sheet_ids), CHUNK):
        ids = list(sheet_ids[start:start + CHUNK])
        db.session.execute(delete(DuplicateFeature).where(DuplicateFeature.sheet_id.in_(ids)))
        db.session.execute(delete(DuplicateFingerprint)
                           .where(DuplicateFingerprint.sheet_id.in_(ids)))
        published = db.session.execute(
            published_sheets().with_only_columns(Sheet.id, Revision.id, Revision.data)
            .join(Revision, Revision.id == Sheet.approved_revision_id).where(Sheet.id.in_(ids))
        ).all()
        fingerprints, features = _rows((r[0], r[1], r[2]) for r in published)
        # Core inserts on the tables: the ORM's bulk path costs more than the rows themselves.
        if fingerprints:
            db.session.execute(insert(DuplicateFingerprint.__table__), fingerprints)
        if features:
            db.session.execute(insert(DuplicateFeature.__table__), features)


def stale_sheet_ids() -> list[int]:
    """Sheets whose lookup rows do not match their published state (drift after a crash)."""
    fp = DuplicateFingerprint
    current = published_sheets().with_only_columns(Sheet.id, Sheet.approved_revision_id).subquery()
    missing_or_old = select(current.c.id).outerjoin(fp, fp.sheet_id == current.c.id).where(
        (fp.sheet_id.is_(None)) | (fp.revision_id != current.c.approved_revision_id)
        | (fp.version != VERSION))
    unpublished = select(fp.sheet_id).where(fp.sheet_id.not_in(select(current.c.id)))
    return sorted({*db.session.scalars(missing_or_old), *db.session.scalars(unpublished)})


def indexed_ids() -> list[int]:
    return list(db.session.scalars(select(DuplicateFingerprint.sheet_id)
                                   .order_by(DuplicateFingerprint.sheet_id)))


def all_sheet_ids() -> list[int]:
    ids = set(db.session.scalars(published_sheets().with_only_columns(Sheet.id)))
    ids |= set(db.session.scalars(select(DuplicateFingerprint.sheet_id)))
    return sorted(ids)


def sync(sheet_ids: Sequence[int], progress: Callable[[int], None] | None = None,
         commit: Callable[[], None] | None = None) -> None:
    for start in range(0, len(sheet_ids), CHUNK):
        batch = sheet_ids[start:start + CHUNK]
        refresh(batch)
        if commit is not None:
            commit()
        if progress is not None:
            progress(len(batch))


def optimize() -> None:
    """After a large rebuild on PostgreSQL: fresh planner statistics (it would otherwise scan
    the whole table until autovacuum runs) and a visibility map for index-only scans.
    SQLite picks the primary key index without statistics."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for table in (DuplicateFeature.__tablename__, DuplicateFingerprint.__tablename__):
                connection.execute(text(f"VACUUM ANALYZE {table}"))


def _weight(postings: int) -> float:
    return 1.0 / math.log2(1 + postings)


def candidate_ids(fp: Fingerprint, *, exclude: Iterable[int] = (), above: int = 0,
                  upto: int | None = None, top_k: int = TOP_K, max_postings: int = MAX_POSTINGS,
                  words: bool = True, features: dict[int, int] | None = None) -> list[int]:
    """The `top_k` sheets sharing the rarest features with `fp` (no exact scoring yet).

    `features` (feature -> kind) saves recomputing those of an indexed sheet.
    """
    if features is None:
        features = dict(fp.features())
    if not words:
        features = {f: kind for f, kind in features.items() if kind != TITLE_FEATURE}
    if not features:
        return []
    table = DuplicateFeature.__table__
    connection = db.session.connection()  # Core rows: no ORM overhead on thousands of postings
    df: dict[int, int] = dict(connection.execute(
        select(table.c.feature, func.count()).where(table.c.feature.in_(features))
        .group_by(table.c.feature)).all())
    # A single title word only helps when it is rare (a place, a name); word pairs and bands
    # carry the rest.
    useful = [f for f, n in df.items()
              if n <= (MAX_WORD_POSTINGS if features[f] == TITLE_FEATURE else max_postings)]
    if not useful:
        return []
    weights: dict[int, float] = defaultdict(float)
    excluded = set(exclude)
    postings = select(table.c.feature, table.c.sheet_id).where(table.c.feature.in_(useful))
    if upto is not None:
        postings = postings.where(table.c.sheet_id <= upto)
    for feature, sheet_id in connection.execute(postings).all():
        if sheet_id > above and sheet_id not in excluded:
            weights[sheet_id] += _weight(df[feature])
    return heapq.nlargest(top_k, weights, key=lambda s: (weights[s], -s))


IN_CHUNK = 5_000  # values per IN (...) list


def similar_many(fps: Sequence[Fingerprint], *, limit: int = 1, min_score: float = HINT,
                 upto: int | None = None) -> list[list[Match]]:
    """similar() of many fingerprints (an import batch) with a few queries for all of them:
    one count per distinct feature, one read of their postings, one load of the candidates'
    fingerprints. Same candidates and scores as calling similar() on each."""
    if not fps:
        return []
    bands = band_keys_batch([fp.body for fp in fps])
    own = [dict(fp.features(b)) for fp, b in zip(fps, bands, strict=True)]
    every = sorted(set().union(*own))
    table = DuplicateFeature.__table__
    connection = db.session.connection()
    df: dict[int, int] = {}
    for start in range(0, len(every), IN_CHUNK):
        df.update(connection.execute(
            select(table.c.feature, func.count())
            .where(table.c.feature.in_(every[start:start + IN_CHUNK]))
            .group_by(table.c.feature)).all())
    useful: list[set[int]] = []
    for features in own:
        useful.append({f for f, kind in features.items() if f in df and df[f] <= (
            MAX_WORD_POSTINGS if kind == TITLE_FEATURE else MAX_POSTINGS)})
    wanted = sorted(set().union(*useful))
    postings: dict[int, list[int]] = defaultdict(list)
    for start in range(0, len(wanted), IN_CHUNK):
        query = select(table.c.feature, table.c.sheet_id).where(
            table.c.feature.in_(wanted[start:start + IN_CHUNK]))
        if upto is not None:
            query = query.where(table.c.sheet_id <= upto)
        for feature, sheet_id in connection.execute(query).all():
            postings[feature].append(sheet_id)
    candidates: list[list[int]] = []
    for shared in useful:
        weights: dict[int, float] = defaultdict(float)
        for feature in shared:
            for sheet_id in postings.get(feature, ()):
                weights[sheet_id] += _weight(df[feature])
        candidates.append(heapq.nlargest(TOP_K, weights, key=lambda s: (weights[s], -s)))
    every_candidate = sorted(set().union(*candidates))
    stored: dict[int, Fingerprint] = {}
    for start in range(0, len(every_candidate), IN_CHUNK):
        stored.update(load(every_candidate[start:start + IN_CHUNK]))
    ranked = [sorted(((s, v) for s in found if s in stored
                      and (v := score(fp, stored[s])) >= min_score),
                     key=lambda x: (-x[1], x[0]))[: limit * 2]
              for fp, found in zip(fps, candidates, strict=True)]
    ids = sorted({s for r in ranked for s, _ in r})
    sheets = {row.id: row for row in db.session.execute(
        select(Sheet.id, Sheet.slug, Sheet.title).where(
            Sheet.id.in_(ids), Sheet.state == SheetState.ACTIVE.value,
            Sheet.approved_revision_id.is_not(None)))} if ids else {}
    return [[Match(s, sheets[s].slug, sheets[s].title, v) for s, v in r if s in sheets][:limit]
            for r in ranked]


def load(sheet_ids: Iterable[int]) -> dict[int, Fingerprint]:
    ids = list(sheet_ids)
    if not ids:
        return {}
    table = DuplicateFingerprint.__table__
    rows = db.session.connection().execute(
        select(table.c.sheet_id, table.c.title, table.c.shingles)
        .where(table.c.sheet_id.in_(ids))).all()
    return {sheet_id: Fingerprint.load(title, shingles) for sheet_id, title, shingles in rows}


def scored(fp: Fingerprint, ids: Iterable[int], min_score: float) -> list[tuple[int, float]]:
    out = [(sheet_id, score(fp, other)) for sheet_id, other in load(ids).items()]
    return sorted(((s, v) for s, v in out if v >= min_score), key=lambda x: (-x[1], x[0]))


def similar(fp: Fingerprint, *, limit: int = 5, min_score: float = HINT,
            exclude: Iterable[int] = (), upto: int | None = None) -> list[Match]:
    """Published sheets most similar to `fp`, best first, scores in [0, 1]; with `upto`, only
    sheets whose id is at most `upto`."""
    ranked = scored(fp, candidate_ids(fp, exclude=exclude, upto=upto), min_score)[: limit * 2]
    if not ranked:
        return []
    sheets = {row.id: row for row in db.session.execute(
        select(Sheet.id, Sheet.slug, Sheet.title).where(
            Sheet.id.in_([s for s, _ in ranked]), Sheet.state == SheetState.ACTIVE.value,
            Sheet.approved_revision_id.is_not(None)))}
    return [Match(s, sheets[s].slug, sheets[s].title, v) for s, v in ranked if s in sheets][:limit]


def pairs(min_score: float, progress: Callable[[int], None] | None = None,
          batch: int = 200) -> Iterator[tuple[int, int, float]]:
    """Every pair of published sheets scoring at least `min_score`, each pair once (a < b).

    Each sheet looks up only sheets with a larger id through the index, so the work grows with
    the number of sheets times the (bounded) number of candidates, not with all pairs.
    """
    ids = indexed_ids()
    table = DuplicateFeature.__table__
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        own: dict[int, dict[int, int]] = defaultdict(dict)
        for sheet_id, feature, kind in db.session.connection().execute(
                select(table.c.sheet_id, table.c.feature, table.c.kind)
                .where(table.c.sheet_id.in_(chunk))).all():
            own[sheet_id][feature] = kind
        for sheet_id, fp in sorted(load(chunk).items()):
            # Two whole sheets: bands and title word pairs suffice, and a pair of common
            # title words shared by many sheets says little about any two of them.
            found = candidate_ids(fp, above=sheet_id, top_k=10, max_postings=SCAN_MAX_POSTINGS,
                                  words=False, features=own[sheet_id])
            for other, value in scored(fp, found, min_score):
                yield sheet_id, other, value
        if progress is not None:
            progress(len(chunk))
        db.session.expire_all()
