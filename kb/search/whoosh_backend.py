"""Whoosh (embedded) backend. Every Whoosh import of the project stays in this module.

Layout of KB_INDEX_DIR: `CURRENT` names the live generation directory (`gen-*`); a rebuild
writes a new generation and replaces `CURRENT` atomically. `write.lock` (flock) serialises
writers across processes (gunicorn workers, CLI) before Whoosh's own lock is taken, with a
timeout; readers never lock.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whoosh import columns, fields, index, query
from whoosh.analysis import Token, Tokenizer
from whoosh.index import LockError
from whoosh.searching import Searcher

from kb.search.analysis import WORD, damerau_levenshtein, fold, is_stop, prefix_stem, stem
from kb.search.backend import (
    FACETS,
    SCHEMA_VERSION,
    BackendResult,
    Document,
    Facet,
    Filters,
    Hit,
    IndexBusy,
    LoadDocuments,
    SearchUnavailable,
)
from kb.search.documents import SEARCHABLE
from kb.search.query import Alternative, ParsedQuery, Phrase
from kb.search.snippets import highlight

log = logging.getLogger(__name__)
VERSION_FILE = "kb_schema_version"
VOCABULARY_FILE = "vocabulary.txt"
CORRECTION_BOOST = 0.3  # a typo-corrected word counts less than the word as typed


class FrenchAnalyzer(Tokenizer):
    """kb.search.analysis in one pass: fold the text, split words, drop stop words, stem.

    The same chain as Whoosh's RegexTokenizer | StopFilter | StemFilter with folding first,
    without a generator per stage (analysis is most of a rebuild's time). Module-level:
    Whoosh pickles the analyzer into the index.
    """

    def __call__(self, value: str, positions: bool = False, chars: bool = False,
                 keeporiginal: bool = False, removestops: bool = True, start_pos: int = 0,
                 start_char: int = 0, tokenize: bool = True, mode: str = "",
                 **kwargs: Any) -> Iterator[Token]:
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        position = start_pos
        for match in WORD.finditer(fold(value)):
            word = match.group()
            if is_stop(word):
                continue
            token.text = stem(word)
            token.stopped = False
            token.boost = 1.0
            if keeporiginal:
                token.original = word
            if positions:
                token.pos = position
                position += 1
            if chars:
                token.startchar = start_char + match.start()
                token.endchar = start_char + match.end()
            yield token


def french_analyzer() -> Any:
    return FrenchAnalyzer()


ALL_TEXT = "text_all"


def _boost_groups() -> dict[str, tuple[str, ...]]:
    """Whoosh text fields: `text_all` (every searchable field, boost 1) to match, plus one
    field per declared boost above 1 that adds its weight when scoring (title 5, tags 4...).

    Matching on one field keeps the matcher trees small (total and facets need every match);
    the short boosted fields cost little to index twice.
    """
    groups: dict[str, list[str]] = {ALL_TEXT: [f.name for f in SEARCHABLE]}
    for f in SEARCHABLE:
        if f.boost > 1:
            groups.setdefault(f"text_{f.boost:g}".replace(".", "_"), []).append(f.name)
    return {name: tuple(names) for name, names in groups.items()}


BOOST_GROUPS = _boost_groups()
TEXT_FIELDS = tuple(BOOST_GROUPS)
BOOSTED_FIELDS = tuple(name for name in TEXT_FIELDS if name != ALL_TEXT)


def build_schema() -> fields.Schema:
    analyzer = french_analyzer()
    spec: dict[str, Any] = {
        name: fields.TEXT(analyzer=analyzer, phrase=True, field_boost=1.0 if name == ALL_TEXT
                          else float(name[5:].replace("_", ".")) - 1)  # text_all adds 1
        for name in TEXT_FIELDS
    }
    spec.update(
        sheet_id=fields.ID(unique=True, stored=True, sortable=True),
        stamp=fields.COLUMN(columns.VarBytesColumn()),
        slug=fields.STORED(),
        title_text=fields.STORED(),
        snippet=fields.STORED(),
        updated=fields.NUMERIC(bits=64, sortable=True),
        due=fields.NUMERIC(bits=64, sortable=True),
    )
    for name in FACETS:  # declared facets: `f_` to filter, `c_` (tab-separated) to count
        # Scorable only so that Whoosh keeps a length column: without one its writer stats
        # the disk once per posting.
        spec[f"f_{name}"] = fields.KEYWORD(commas=True, scorable=True)
        spec[f"c_{name}"] = fields.COLUMN(columns.VarBytesColumn())
    return fields.Schema(**spec)


def _fields(doc: Document) -> dict[str, Any]:
    values: dict[str, Any] = {
        name: "\n".join(doc.fields.get(f, "") for f in names) for name, names in BOOST_GROUPS.items()
    }
    values.update(
        sheet_id=str(doc.sheet_id),
        stamp=doc.stamp.encode(),
        slug=doc.slug,
        title_text=doc.title,
        snippet=doc.snippet_source,
        updated=int(doc.updated_at.timestamp()),
        due=int(doc.review_due_at.timestamp()),
    )
    for name in FACETS:
        keys = [k.replace(",", " ").replace("\t", " ") for k in doc.facets.get(name, [])]
        values[f"f_{name}"] = ",".join(keys)
        values[f"c_{name}"] = "\t".join(keys).encode()
    return {k: v for k, v in values.items() if v not in ("", b"")}


class Vocabulary:
    """The folded words of indexed sheets (typo tolerance, suggestions), one per line.

    Kept beside the Whoosh segments rather than as an indexed field, which doubled the
    postings a rebuild writes. Append-only between rebuilds: a word whose last sheet left
    stays until `kb index rebuild`, which at worst offers a correction that finds nothing.
    """

    def __init__(self, path: Path):
        self.path = path
        self.words: set[str] = set()
        self._by_initial: dict[str, list[str]] = {}
        self._offset = 0

    def refresh(self) -> None:
        try:
            size = self.path.stat().st_size
        except OSError:
            return
        if size <= self._offset:
            return
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read(size - self._offset)
        complete = chunk.rfind(b"\n") + 1  # a line still being appended waits for next time
        self._offset += complete
        for word in chunk[:complete].decode("utf-8", "replace").split():
            if word not in self.words:
                self.words.add(word)
                self._by_initial.setdefault(word[0], []).append(word)

    def similar(self, word: str, max_distance: int) -> list[tuple[int, str]]:
        """(distance, word) for words within `max_distance` edits, same first letter."""
        found = []
        for candidate in self._by_initial.get(word[:1], []):
            if candidate != word and abs(len(candidate) - len(word)) <= max_distance:
                distance = damerau_levenshtein(word, candidate, max_distance)
                if distance <= max_distance:
                    found.append((distance, candidate))
        return found

    @staticmethod
    def append(path: Path, words: Iterable[str]) -> None:
        existing = set(path.read_text(encoding="utf-8").split()) if path.exists() else set()
        new = sorted(set(words) - existing)
        if new:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write("\n".join(new) + "\n")


@dataclass
class _FacetData:
    """Per reader: each document's facet keys, read once from the columns."""

    values: dict[str, list[list[str]]]  # facet -> document number -> keys


@dataclass
class _Open:
    directory: Path
    ix: Any
    searcher: Searcher
    facets: _FacetData | None = None


def _any(parts: list[query.Query]) -> query.Query:
    return parts[0] if len(parts) == 1 else query.Or(parts)


_local = threading.local()


class WhooshBackend:
    name = "whoosh"

    def __init__(self, root: str | Path, lock_timeout: float = 10.0):
        self.root = Path(root)
        self.lock_timeout = lock_timeout

    # -- layout -----------------------------------------------------------------------------
    def _current(self) -> Path | None:
        try:
            name = (self.root / "CURRENT").read_text().strip()
        except OSError:
            return None
        directory = self.root / name
        return directory if name and directory.is_dir() else None

    def exists(self) -> bool:
        return self._current() is not None

    def ensure_schema(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def _check_version(self, directory: Path) -> None:
        try:
            version = int((directory / VERSION_FILE).read_text().strip())
        except (OSError, ValueError):
            version = -1
        if version != SCHEMA_VERSION:
            raise SearchUnavailable(
                f"l'index de recherche est au format {version}, le logiciel attend le format "
                f"{SCHEMA_VERSION} : lancez `kb index rebuild`")

    def _open_index(self) -> tuple[Path, Any]:
        directory = self._current()
        if directory is None:
            raise SearchUnavailable("l'index de recherche n'existe pas encore : "
                                    "lancez `kb index rebuild`")
        self._check_version(directory)
        try:
            return directory, index.open_dir(str(directory))
        except Exception as exc:  # noqa: BLE001 - any unreadable index is "unavailable"
            raise SearchUnavailable(f"index de recherche illisible ({exc!r}) : "
                                    "lancez `kb index rebuild`") from exc

    def _reader_state(self) -> _Open:
        """This thread's searcher, reopened when the index changed (one per thread)."""
        cache: dict[Path, _Open] = _local.__dict__.setdefault("open", {})
        current = cache.get(self.root)
        directory = self._current()
        try:
            if current is not None and current.directory == directory \
                    and current.searcher.up_to_date():
                return current
            if current is not None:
                current.searcher.close()
                del cache[self.root]
            directory, ix = self._open_index()
            state = _Open(directory, ix, ix.searcher())
        except SearchUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001
            cache.pop(self.root, None)
            raise SearchUnavailable(f"index de recherche illisible ({exc!r})") from exc
        cache[self.root] = state
        return state

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "write.lock", "a") as handle:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise IndexBusy("l'index est occupé par un autre processus") from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _writer(self, ix: Any, **options: Any) -> Any:
        # Our flock already serialises writers; Whoosh's lock is retried in case a process
        # outside this code (an old worker) holds it.
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                return ix.writer(timeout=1.0, **options)
            except LockError:
                if time.monotonic() > deadline:
                    raise IndexBusy("verrou d'écriture Whoosh toujours pris") from None

    # -- writing ----------------------------------------------------------------------------
    def index(self, load: LoadDocuments, sheet_ids: list[int]) -> None:
        with self._write_lock():
            directory, ix = self._open_index()
            documents = load(sheet_ids)
            writer = self._writer(ix)
            try:
                for sheet_id, doc in documents.items():
                    if doc is None:
                        writer.delete_by_term("sheet_id", str(sheet_id))
                    else:
                        writer.update_document(**_fields(doc))
                writer.commit()
            except BaseException:
                writer.cancel()
                raise
            finally:
                ix.close()
            Vocabulary.append(directory / VOCABULARY_FILE,
                              (w for d in documents.values() if d for w in d.vocabulary))

    def rebuild(self, documents: Iterable[Document]) -> int:
        self.root.mkdir(parents=True, exist_ok=True)
        name = f"gen-{time.time_ns()}-{os.getpid()}"
        building = self.root / f"build-{name}"
        building.mkdir()
        count = 0
        vocabulary: set[str] = set()
        try:
            ix = index.create_in(str(building), build_schema())
            writer = ix.writer(limitmb=256)
            for doc in documents:
                writer.add_document(**_fields(doc))
                vocabulary.update(doc.vocabulary)
                count += 1
            writer.commit(optimize=True)
            ix.close()
            Vocabulary.append(building / VOCABULARY_FILE, vocabulary)
            (building / VERSION_FILE).write_text(str(SCHEMA_VERSION))
            building.rename(self.root / name)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        with self._write_lock():
            previous = self._current()
            pointer = self.root / f"CURRENT.{os.getpid()}.tmp"
            pointer.write_text(name)
            os.replace(pointer, self.root / "CURRENT")  # the atomic swap
            self._cleanup(keep={name, previous.name if previous else ""})
        return count

    def _cleanup(self, keep: set[str]) -> None:
        """Drop old generations (the previous one stays for readers still on it)."""
        for path in self.root.iterdir():
            stale_build = path.name.startswith("build-") and time.time() - path.stat().st_mtime > 3600
            if (path.name.startswith("gen-") and path.name not in keep) or stale_build:
                shutil.rmtree(path, ignore_errors=True)

    def optimize(self) -> None:
        with self._write_lock():
            _, ix = self._open_index()
            writer = self._writer(ix)
            writer.commit(optimize=True)
            ix.close()

    def stamps(self) -> dict[int, str]:
        _, ix = self._open_index()
        try:
            with ix.reader() as reader:
                if not reader.doc_count_all():
                    return {}
                ids = list(reader.column_reader("sheet_id", translate=True))
                stamps = list(reader.column_reader("stamp", translate=False))
                return {int(ids[n]): stamps[n].decode() for n in reader.all_doc_ids()}
        except SearchUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001
            raise SearchUnavailable(f"index de recherche illisible ({exc!r})") from exc
        finally:
            ix.close()

    # -- reading ----------------------------------------------------------------------------
    def matching(self, parsed: ParsedQuery, among: Collection[int] | None, bound: int
                 ) -> set[int] | None:
        return None  # written after the commit: it cannot say what a commit just changed

    def known_words(self, candidates: list[str]) -> set[str]:
        state = self._reader_state()
        vocabulary = self._vocabulary(state.directory)
        return {w for w in candidates if w in vocabulary.words}

    def similar_words(self, word: str, max_distance: int) -> list[str]:
        state = self._reader_state()
        searcher = state.searcher
        found = self._vocabulary(state.directory).similar(word, max_distance)

        def frequency(candidate: str) -> int:
            term = stem(candidate)
            return int(searcher.doc_frequency(ALL_TEXT, term))

        return [w for _, _, w in sorted((d, -frequency(w), w) for d, w in found)]

    def _vocabulary(self, directory: Path) -> Vocabulary:
        # One per index root and thread; a new generation (rebuild) replaces the old one.
        cache: dict[Path, Vocabulary] = _local.__dict__.setdefault("vocabulary", {})
        vocabulary = cache.get(self.root)
        if vocabulary is None or vocabulary.path.parent != directory:
            vocabulary = cache[self.root] = Vocabulary(directory / VOCABULARY_FILE)
        vocabulary.refresh()
        return vocabulary

    def _alternative(self, alt: Alternative, names: tuple[str, ...]) -> query.Query:
        if isinstance(alt, Phrase):
            stems = [stem(w) for w in alt.words if not is_stop(w)]
            if len(stems) == 1:
                return self._stem_query(stems[0], names)
            return _any([query.Phrase(name, stems) for name in names])
        if alt.prefix:
            return _any([query.Prefix(name, prefix_stem(alt.word)) for name in names])
        exact = stem(alt.word)
        parts = [self._stem_query(exact, names)]
        parts += [self._stem_query(s, names, CORRECTION_BOOST)
                  for s in dict.fromkeys(stem(c) for c in alt.corrections) if s != exact]
        return _any(parts)

    @staticmethod
    def _stem_query(term: str, names: tuple[str, ...], boost: float = 1.0) -> query.Query:
        return _any([query.Term(name, term, boost=boost) for name in names])

    def _query(self, parsed: ParsedQuery, match_all: bool,
               names: tuple[str, ...] = (ALL_TEXT,)) -> query.Query:
        """The query on `names`: text_all alone to match, every text field to score."""
        groups = [_any([self._alternative(a, names) for a in group]) for group in parsed.groups]
        positive: query.Query
        if not groups:
            positive = query.Every()
        elif len(groups) == 1:
            positive = groups[0]
        else:
            positive = query.And(groups) if match_all else query.Or(groups)
        if parsed.excluded:
            positive = query.AndNot(positive, _any([self._alternative(a, (ALL_TEXT,))
                                                    for a in parsed.excluded]))
        return positive

    @staticmethod
    def _filter(filters: Filters) -> query.Query | None:
        terms = [query.Term(f"f_{name}", value) for name, value in filters.items()]
        if not terms:
            return None
        return terms[0] if len(terms) == 1 else query.And(terms)

    def _facet_data(self, state: _Open) -> _FacetData:
        if state.facets is None:
            reader = state.searcher.reader()
            leaves = reader.leaf_readers() if reader.doc_count_all() else []

            def column(name: str, translate: bool) -> list[Any]:
                # Segment by segment (Whoosh's multi-segment column reader trips over
                # segments that hold no value for a column); documents in global order.
                out: list[Any] = []
                for leaf, offset in leaves:
                    out.extend([None] * (offset - len(out)))
                    if leaf.has_column(name):
                        out.extend(leaf.column_reader(name, translate=translate))
                    else:
                        out.extend([b"" if not translate else ""] * leaf.doc_count_all())
                return out

            values = {name: [raw.decode().split("\t") if raw else []
                             for raw in column(f"c_{name}", False)] for name in FACETS}
            state.facets = _FacetData(values)
        return state.facets

    def _count_facets(self, state: _Open, docnums: set[int]) -> dict[str, list[Facet]]:
        data = self._facet_data(state)
        out: dict[str, list[Facet]] = {}
        for name in FACETS:
            column = data.values[name]
            counter: Counter[str] = Counter()
            for d in docnums:
                counter.update(column[d])
            counter.pop("", None)
            out[name] = [Facet(k, k, n) for k, n in counter.items()]
        return out

    def search(self, parsed: ParsedQuery, filters: Filters, sort: str, offset: int, limit: int,
               match_all: bool = True) -> BackendResult:
        state = self._reader_state()
        searcher = state.searcher
        match_q = self._query(parsed, match_all)
        filter_q = self._filter(filters)
        # Every match (total, facets) from the one-field query, unscored; the page from the
        # boosted query, where Whoosh's top-N collector may skip blocks that cannot rank.
        matched = set(searcher.docs_for_query(
            match_q if filter_q is None else query.And([match_q, filter_q])))
        if sort in ("updated", "freshness") or not parsed.groups:
            results = searcher.search(match_q, filter=filter_q, limit=offset + limit,
                                      sortedby="due" if sort == "freshness" else "updated",
                                      reverse=True)
        else:
            # Matching stays driven by the one-field query; the boosted fields (title, tags,
            # actor, city, summary) only add to the score of documents it matched.
            boosts = [self._alternative(a, BOOSTED_FIELDS) for group in parsed.groups
                      for a in group]
            results = searcher.search(query.AndMaybe(match_q, _any(boosts)),
                                      filter=filter_q, limit=offset + limit)
        words, prefixes = parsed.positive_words(), parsed.prefixes()
        hits = []
        for hit in results[offset:offset + limit]:
            stored = hit.fields()
            hits.append(Hit(int(stored["sheet_id"]), stored["slug"], stored["title_text"],
                            round(float(hit.score or 0.0), 4),
                            highlight(stored.get("snippet", ""), words, prefixes=prefixes)))
        return BackendResult(hits, len(matched), self._count_facets(state, matched))
