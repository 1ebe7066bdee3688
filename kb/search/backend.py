"""The backend interface: what the service asks of an index, whatever engine holds it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from kb.search.query import ParsedQuery
from kb.sheets.filters import PARAMS, Filters

# Facets are declared on the fields (kb/sheets/fields.py); results count them under the same
# names as the filter parameters. Backends filter with kb.sheets.filters: SQL backends apply
# `apply_filters` on the sheets table, an outside index stores `Document.facets`.
FACETS = PARAMS
SORTS = ("relevance", "updated", "freshness")
SCHEMA_VERSION = 10  # bump when the documents or the analysis change: `kb index rebuild`


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


__all__ = ["FACETS", "SORTS", "SCHEMA_VERSION", "BackendResult", "Document", "Facet", "Filters",
           "Hit", "IndexBusy", "LoadDocuments", "SearchBackend", "SearchUnavailable"]


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


class SearchBackend(Protocol):
    name: str

    def ensure_schema(self) -> None:
        """Create whatever the backend needs (idempotent)."""

    def search(self, query: ParsedQuery, filters: Filters, sort: str, offset: int,
               limit: int, match_all: bool = True) -> BackendResult:
        """Every group of the query must match (or any, with match_all False).

        Raises SearchUnavailable when the index cannot answer.
        """

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
