"""The backend interface: what the service asks of an index, whatever engine holds it."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from flask import current_app, has_app_context
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from kb.extensions import db
from kb.search.query import ParsedQuery
from kb.sheets.filters import PARAMS, Filters

# Facets are declared on the fields (kb/sheets/fields.py); results count them under the same
# names as the filter parameters. Backends filter with kb.sheets.filters: SQL backends apply
# `apply_filters` on the sheets table, an outside index stores `Document.facets`.
FACETS = PARAMS
SORTS = ("relevance", "updated", "freshness")
SCHEMA_VERSION = 10  # bump when the documents or the analysis change: `kb index rebuild`

# Bounds of one query's work (two stages), whatever the size of the base. Settings of the same
# names override them (tests set small ones).
# - Up to KB_SEARCH_EXACT_COUNT matches, the total and the facet counts are exact and every
#   match is ranked. Beyond, they are estimated from the first matches in index order (a
#   sample of that size, scaled by the share of the index it covers): "environ 70 000".
# - Beyond it too, the full ranking reads KB_SEARCH_CANDIDATES candidates only: those with a
#   word of the query in the short fields (title, tags, actor, place, summary), best first by
#   those fields, completed from the sample.
EXACT_COUNT = 1_000
CANDIDATES = 300


class SearchUnavailable(Exception):
    """The index is missing, unreadable or from another version; pages still work."""


class IndexBusy(Exception):
    """Another process held the index writer for longer than the timeout."""


@dataclass
class Document:
    """What one published sheet puts in the index (built from its approved revision)."""

    sheet_id: int
    revision_id: int
    stamp: str  # changes whenever the indexed document would change: drives reconcile
    slug: str
    title: str
    fields: dict[str, str]  # searchable field name -> plain text
    snippet_source: str  # summary and long fields, plain text, for highlighted extracts
    vocabulary: list[str]  # distinct folded words (typo tolerance, suggestions)
    facets: dict[str, list[str]]  # facet parameter -> keys (kb.sheets.filters.facet_values)
    updated_at: datetime
    review_due_at: datetime
    # What an engine derives from the rest (its analysed rows), when computed beforehand: a
    # rebuild computes it in the process that builds the documents.
    prepared: Any = None


__all__ = ["CANDIDATES", "EXACT_COUNT", "FACETS", "SORTS", "SCHEMA_VERSION", "BackendResult",
           "Bounds", "Document", "Facet", "Filters", "Hit", "IndexBusy", "LoadDocuments",
           "SearchBackend", "SearchUnavailable", "estimate", "rescored", "scaled"]


@dataclass
class Hit:
    sheet_id: int
    slug: str
    title: str
    score: float
    snippet: str  # HTML-safe text with <mark> around matches


@dataclass
class Facet:
    value: str  # the key, as filters take it
    label: str  # unused by the service (labels come from the declaration); kept for backends
    count: int


@dataclass
class BackendResult:
    hits: list[Hit]
    total: int
    facets: dict[str, list[Facet]] = field(default_factory=dict)
    # True when `total` and the facet counts are estimates (more matches than
    # KB_SEARCH_EXACT_COUNT): about right, rounded, never shown as exact.
    estimated: bool = False


@dataclass(frozen=True)
class Bounds:
    exact: int  # at most this many matches are counted and ranked exactly
    candidates: int  # beyond, the full ranking reads this many candidates

    @classmethod
    def configured(cls) -> Bounds:
        config = current_app.config if has_app_context() else {}
        return cls(max(1, int(config.get("KB_SEARCH_EXACT_COUNT", EXACT_COUNT))),
                   max(1, int(config.get("KB_SEARCH_CANDIDATES", CANDIDATES))))

    def candidates_for(self, offset: int, limit: int) -> int:
        """Enough candidates for the page asked for (a far page reads more)."""
        return max(self.candidates, offset + limit)


def rescored(candidates: list[int], scores: dict[int, float], window: int) -> list[int]:
    """Candidates in their final order: the first `window` (stage one's best) by their full
    score, then the others in stage one's order. A far page reads more candidates, never other
    ones in front: every page shows each sheet once."""
    position = {sheet_id: n for n, sheet_id in enumerate(candidates)}
    best = sorted(candidates[:window], key=lambda i: (-scores.get(i, 0.0), position[i]))
    return best + candidates[window:]


def estimate(sampled: int, covered: float) -> int:
    """The total when `sampled` matches were found in a `covered` share (0-1] of the index,
    rounded to two significant digits (an estimate shown as one): never below `sampled`."""
    raw = sampled / min(max(covered, 1e-9), 1.0)
    digits = max(0, len(str(int(raw))) - 2)
    return max(sampled, int(round(raw, -digits)))


def scaled(facets: dict[str, list[Facet]], sampled: int, total: int) -> dict[str, list[Facet]]:
    """Facet counts of a sample, scaled to the estimated total (at least 1 for a value seen)."""
    ratio = total / max(sampled, 1)
    return {name: [Facet(f.value, f.label, max(1, estimate(round(f.count * ratio), 1.0)))
                   for f in values] for name, values in facets.items()}


class SearchBackend(Protocol):
    name: str

    def ensure_schema(self) -> None:
        """Create whatever the backend needs (idempotent)."""

    def search(self, query: ParsedQuery, filters: Filters, sort: str, offset: int,
               limit: int, match_all: bool = True) -> BackendResult:
        """Every group of the query must match (or any, with match_all False).

        Raises SearchUnavailable when the index cannot answer.
        """

    def matching(self, query: ParsedQuery, among: Collection[int] | None, bound: int
                 ) -> set[int] | None:
        """Indexed sheets with any group of the query, among `among` (else all); None past
        `bound` of them, or when the engine cannot say."""

    def known_words(self, candidates: list[str]) -> set[str]:
        """The candidates that occur in some indexed document."""

    def similar_words(self, word: str, max_distance: int) -> list[str]:
        """Indexed words within `max_distance` edits of `word`, best first."""

    def index(self, load: LoadDocuments, sheet_ids: list[int]) -> None:
        """Add, replace or delete these sheets in one writer commit.

        `load` is called once the writer lock is held, so that the state written is never
        older than the state another writer already wrote.
        """

    def stamps(self) -> dict[int, str]:
        """sheet id -> stamp of what the index holds."""

    def rebuild(self, documents: Iterable[Document]) -> int:
        """Build a fresh index from these documents and swap it in atomically."""

    def optimize(self) -> None: ...

    def exists(self) -> bool: ...


class LoadDocuments(Protocol):
    def __call__(self, sheet_ids: list[int]) -> dict[int, Document | None]: ...


class DatabaseIndex:
    """What the two engines that keep their index in the app's database share: every read
    checks the index first, and a database error reads as "rebuild the index"."""

    label = ""  # "SQLite", "PostgreSQL": named in the error

    def _ready(self, conn: Connection) -> None:
        raise NotImplementedError

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        try:
            with db.engine.connect() as conn:
                self._ready(conn)
                if conn.in_transaction():  # the checks' reads: callers may begin() their own
                    conn.rollback()
                yield conn
        except SearchUnavailable:
            raise
        except DBAPIError as exc:
            raise SearchUnavailable(f"index {self.label} illisible ({exc.orig!r}) : "
                                    "lancez `kb index rebuild`") from exc
