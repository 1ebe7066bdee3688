"""SQLite FTS5 backend (the default on SQLite): the index lives in the application's database
and is written in the same transaction as the sheets, so it cannot drift from them and every
gunicorn worker reads the same index with no lock file.

Tables (owned by this module, not by the models: their columns follow the field declaration,
and `kb index rebuild` recreates them):
- `search_fts`: FTS5, one column per declared boost (title 5, tags 4, actor and place 3,
  summary 2, the rest 1) holding the *analysed* tokens (folded, stop words removed, stemmed by
  kb/search/analysis.py), so that queries analysed the same way meet the same terms as on the
  other backends; bm25() weighs the columns with the boosts. `snippet` (not indexed) keeps the
  plain text for highlighted extracts.
- `search_fts_rows`: per sheet, the stamp compared by `kb index check` and the sort keys
  (update date, review date). Filters and facet keys are read from the sheets' projection, as
  /fiches reads them (kb/sheets/filters.py), in the same statement as the matches.
- `search_fts_words`: the folded words of indexed sheets (typo tolerance, suggestions).
- `search_fts_meta`: the schema version; `search_fts_vocab`: fts5vocab over `search_fts`.

Writes: `install()` hooks the ORM session. Every flush notes the sheets it touched (and the
sheets `kb.transaction.mark_changed()` names); just before the commit their documents are
rebuilt and written through the session's own connection. A rebuild fills `search_fts_next*`
tables in short batches, then renames them in one short transaction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterable, Sequence
from functools import lru_cache
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import (
    ColumnElement,
    Integer,
    Join,
    Select,
    String,
    and_,
    bindparam,
    column,
    event,
    func,
    inspect,
    literal_column,
    select,
    table,
    union_all,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstanceState, Session
from sqlalchemy.orm.util import identity_key

from kb.extensions import db
from kb.search.analysis import damerau_levenshtein, is_stop, prefix_stem, stem, terms
from kb.search.backend import (
    SCHEMA_VERSION,
    BackendResult,
    Bounds,
    DatabaseIndex,
    Document,
    Facet,
    Filters,
    Hit,
    LoadDocuments,
    SearchUnavailable,
    estimate,
    rescored,
    scaled,
)
from kb.search.documents import SEARCHABLE, document, extra_text, load_documents
from kb.search.models import ENGINE_TABLES_PREFIX
from kb.search.query import Alternative, ParsedQuery, Phrase
from kb.search.snippets import highlight
from kb.sheets.filters import apply_filters, facet_columns, facet_counts_query
from kb.sheets.models import Sheet, SheetState, Tag, sheet_tags

log = logging.getLogger(__name__)

PREFIX = ENGINE_TABLES_PREFIX
FTS, ROWS, WORDS, META, VOCAB = (PREFIX, f"{PREFIX}_rows", f"{PREFIX}_words", f"{PREFIX}_meta",
                                 f"{PREFIX}_vocab")
NEXT = f"{PREFIX}_next"  # a rebuild's tables until they are swapped in
BATCH = 500
TOKENIZER = "unicode61 remove_diacritics 0 tokenchars '_'"


def _boost_columns() -> dict[str, tuple[str, ...]]:
    """FTS5 column -> the fields it holds: one column per declared boost, highest first.

    bm25() in FTS5 weighs each column's hits and normalises by the whole row's length, so
    fields sharing a boost can share a column without changing any score.
    """
    columns: dict[str, list[str]] = {}
    for f in sorted(SEARCHABLE, key=lambda f: -f.boost):
        columns.setdefault("w" + f"{f.boost:g}".replace(".", "_"), []).append(f.name)
    return {name: tuple(names) for name, names in columns.items()}


COLUMNS = _boost_columns()
WEIGHTS = tuple(float(name[1:].replace("_", ".")) for name in COLUMNS)
# What the stored index must have been built with: the code's format and the declaration.
FORMAT = 3  # of these tables; bump when they change
SIGNATURE = f"{SCHEMA_VERSION}.{FORMAT}:" + ";".join(f"{c}={','.join(n)}"
                                                      for c, n in COLUMNS.items())
BM25 = f"bm25({FTS}, {', '.join(f'{w:g}' for w in WEIGHTS)}, 0)"  # 0: the snippet column
# The title (the highest boost): a match there makes a candidate when a query matches too many
# sheets to rank them all. Measured at 100,000 sheets, "accueil" in every one: bm25 over the
# title matches 14 ms, over the short fields (boost 2 and more) 93 ms, over every match 156 ms.
HEAD = tuple(c for c, w in zip(COLUMNS, WEIGHTS, strict=True) if w >= max(WEIGHTS))
# Then the short fields (boost 2 and more: tags, actor, place, summary), in index order.
SHORT = tuple(c for c, w in zip(COLUMNS, WEIGHTS, strict=True) if w >= 2)

# Lightweight table clauses for Core statements (not in the models' metadata).
_fts = table(FTS, column("rowid"), column("snippet"))
ROW_COLUMNS = ("sheet_id", "stamp", "revision_id", "updated_at", "review_due_at")
_rows = table(ROWS, *(column(name) for name in ROW_COLUMNS))
_sheets = Sheet.__table__
FACET_KEYS = tuple(c.name for c in facet_columns(_sheets))


def _ddl(prefix: str) -> list[str]:
    fts_columns = ", ".join([*COLUMNS, "snippet UNINDEXED"])
    return [
        f"CREATE VIRTUAL TABLE {prefix} USING fts5({fts_columns}, tokenize = \"{TOKENIZER}\")",
        # What sorts read for every match; filters and facets read the sheets' projection
        # (kb/sheets/filters.py), like /fiches.
        f"CREATE TABLE {prefix}_rows (sheet_id INTEGER PRIMARY KEY, stamp TEXT NOT NULL, "
        "revision_id INTEGER NOT NULL, updated_at TEXT NOT NULL, review_due_at TEXT NOT NULL)",
        f"CREATE TABLE {prefix}_words (word TEXT PRIMARY KEY) WITHOUT ROWID",
    ]


# -- the documents as rows ---------------------------------------------------------------------

def _fts_row(doc: Document) -> tuple[Any, ...]:
    return (doc.sheet_id,
            *(" ".join([" ".join(terms(doc.fields.get(name, ""))) for name in names])
              for names in COLUMNS.values()),
            doc.snippet_source)


def _write(conn: Connection, docs: Sequence[Document], removed: Sequence[int],
           prefix: str = FTS, known: set[str] | None = None, fresh: bool = False) -> None:
    """Replace these sheets' rows (and delete the removed ones) on `conn`, in its transaction
    (`fresh`: new tables, nothing to delete)."""
    ids = [(d.sheet_id,) for d in docs] + [(i,) for i in removed]
    if ids and not fresh:
        conn.exec_driver_sql(f"DELETE FROM {prefix} WHERE rowid = ?", ids)
        conn.exec_driver_sql(f"DELETE FROM {prefix}_rows WHERE sheet_id = ?", ids)
    if not docs:
        return
    marks = ", ".join("?" * (len(COLUMNS) + 2))
    conn.exec_driver_sql(f"INSERT INTO {prefix} (rowid, {', '.join(COLUMNS)}, snippet) "
                         f"VALUES ({marks})", [d.prepared or _fts_row(d) for d in docs])
    conn.exec_driver_sql(
        f"INSERT INTO {prefix}_rows ({', '.join(ROW_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(ROW_COLUMNS))})",
        [(d.sheet_id, d.stamp, d.revision_id, d.updated_at.isoformat(" "),
          d.review_due_at.isoformat(" ")) for d in docs])
    vocabulary = {w for d in docs for w in d.vocabulary}
    if known is not None:
        vocabulary -= known
    if vocabulary:
        conn.exec_driver_sql(f"INSERT OR IGNORE INTO {prefix}_words (word) VALUES (?)",
                             [(w,) for w in sorted(vocabulary)])
        if known is not None:
            known |= vocabulary


# -- queries -----------------------------------------------------------------------------------

class _CrossJoin(Join):
    """`a CROSS JOIN b ON ...`: in SQLite, an inner join that keeps `a` as the outer loop.

    Without statistics the planner would rather start from an indexed column of `sheets`
    (state, scale) and run the full-text query once per sheet.
    """

    inherit_cache = True


@compiles(_CrossJoin)
def _compile_cross_join(element: _CrossJoin, compiler: Any, **kw: Any) -> str:
    kw["asfrom"] = True
    left = compiler.process(element.left, **kw)
    right = compiler.process(element.right, **kw)
    kw.pop("asfrom")
    return f"{left} CROSS JOIN {right} ON {compiler.process(element.onclause, **kw)}"


def _outer_first(left: Any, right: Any, onclause: ColumnElement[bool]) -> _CrossJoin:
    return _CrossJoin(left, right, onclause)


def _quoted(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


def _alternative(alt: Alternative) -> str | None:
    """One alternative in FTS5 syntax, on the analysed tokens."""
    if isinstance(alt, Phrase):
        stems = [stem(w) for w in alt.words if not is_stop(w)]
        return _quoted(" ".join(stems)) if stems else None
    if alt.prefix:
        return _quoted(prefix_stem(alt.word)) + " *"
    spellings = dict.fromkeys(stem(w) for w in (alt.word, *alt.corrections))
    return " OR ".join(_quoted(s) for s in spellings)


def _any(alternatives: Iterable[Alternative]) -> str | None:
    parts = [p for p in map(_alternative, alternatives) if p]
    return "(" + " OR ".join(parts) + ")" if parts else None


def match_expression(parsed: ParsedQuery, match_all: bool = True) -> tuple[str | None, str | None]:
    """(what must match, what must not) as FTS5 query strings."""
    groups = [g for g in map(_any, parsed.groups) if g]
    positive = (" AND " if match_all else " OR ").join(groups) or None
    negative = _any(parsed.excluded) if parsed.excluded else None
    return positive, negative


def head_expression(parsed: ParsedQuery, columns: tuple[str, ...] = HEAD) -> str | None:
    """Any of the query's words or phrases in these columns (FTS5 column filter)."""
    alternatives = _any(alt for group in parsed.groups for alt in group)
    return "{" + " ".join(columns) + "} : " + alternatives if alternatives and columns else None


def _match(name: str) -> ColumnElement[Any]:
    return literal_column(FTS).op("MATCH")(bindparam(name, type_=String()))


def _published() -> ColumnElement[bool]:
    return and_(_sheets.c.state == SheetState.ACTIVE.value,
                _sheets.c.approved_revision_id.is_not(None))


# The page's order, sort -> columns of `m`, all descending; the same order sorts it again in
# Python (a UNION ALL keeps no order, and numbering the rows would sort every match). Equal
# relevance (rare with bm25) falls back on the newest sheet id.
ORDER = {"relevance": ("score", "id"),
         "updated": ("updated_at", "revision_id"),
         "freshness": ("review_due_at", "revision_id")}


def matches(positive: bool, negative: bool, filters: Filters, sort: str = "relevance"
            ) -> Select[Any]:
    """Every matching sheet: id, score, the sort's columns and the facets' keys (no more: the
    matches are copied once per query). The FTS5 expressions are the parameters `match` (what
    must match, what must not included) and `negative` (when nothing must match). The filters
    and facet keys are those of /fiches, verbatim (kb.sheets.filters), read from `sheets`."""
    ranked = positive and sort == "relevance"
    score: ColumnElement[Any] = (-literal_column(BM25)) if ranked else literal_column("0.0")
    keys = ORDER[sort if positive or sort != "relevance" else "updated"]
    row_keys = [_rows.c[name] for name in keys if name not in ("score", "id")]
    stmt = select(_sheets.c.id.label("id"), score.label("score"), *row_keys,
                  *facet_columns(_sheets))
    source: Any = _rows
    if positive:  # the rows table only when the sort reads it
        source = _outer_first(_fts, _rows, _rows.c.sheet_id == _fts.c.rowid) if row_keys else _fts
    sheet_id = _fts.c.rowid if source is _fts else _rows.c.sheet_id
    source = _outer_first(source, _sheets, _sheets.c.id == sheet_id)
    stmt = apply_filters(stmt.select_from(source).where(_published()), filters, sheets=_sheets)
    if positive:
        stmt = stmt.where(_match("match"))
    elif negative:
        stmt = stmt.where(_rows.c.sheet_id.not_in(
            select(_fts.c.rowid).where(_match("negative")).scalar_subquery()))
    return stmt


def _kind(name: str) -> ColumnElement[Any]:
    return literal_column(f"'{name}'")


_NULL: ColumnElement[Any] = literal_column("NULL")


@lru_cache(maxsize=256)
def _statement(positive: bool, negative: bool, filters: tuple[tuple[str, str], ...],
               sort: str) -> Any:
    """Built once per shape (filter values included, they vary little); the FTS5 expressions,
    limit, offset and bound are parameters."""
    return results_statement(matches(positive, negative, Filters(dict(filters)), sort),
                             sort, positive)


@lru_cache(maxsize=256)
def _page_statement(positive: bool, negative: bool, filters: tuple[tuple[str, str], ...],
                    sort: str) -> Any:
    """The page among every match, by date (more matches than the bound, no relevance to rank
    on): the sort keys only, no facet."""
    m = matches(positive, negative, Filters(dict(filters)), sort).subquery("m")
    keys = ORDER[sort if positive or sort != "relevance" else "updated"]
    return (select(m.c.id, *(m.c[k] for k in keys)).order_by(*(m.c[k].desc() for k in keys))
            .limit(bindparam("limit", type_=Integer()))
            .offset(bindparam("offset", type_=Integer())))


@lru_cache(maxsize=256)
def _candidates_statement(filters: tuple[tuple[str, str], ...], fill: bool) -> Any:
    """Stage one of the ranking: up to `limit` sheets matching `match` (the query and one of
    its words in the short fields), best first by bm25, which then reads short rows only; or
    (`fill`) the first matches in index order, not ranked, except the ids `seen`."""
    stmt = (select(_fts.c.rowid.label("id"), (-literal_column(BM25)).label("score"))
            .select_from(_outer_first(_fts, _sheets, _sheets.c.id == _fts.c.rowid))
            .where(_published(), _match("match")))
    stmt = apply_filters(stmt, Filters(dict(filters)), sheets=_sheets)
    if fill:
        stmt = stmt.where(_fts.c.rowid.not_in(bindparam("seen", expanding=True)))
    else:
        stmt = stmt.order_by(literal_column(BM25), _fts.c.rowid)
    return stmt.limit(bindparam("limit", type_=Integer()))


def results_statement(m_select: Select[Any], sort: str, ranked: bool) -> Any:
    """One statement, the FTS5 query run once (a materialised CTE of at most `bound` matches, in
    index order): rows ('hit', id, sort keys...) for the page (parameters `limit`, `offset`),
    ('facet', param, key, count) with the number of matches as the facet '', and ('span', the
    last match's id, the index's first and last ids), for estimates when the bound is hit."""
    m = m_select.limit(bindparam("bound", type_=Integer())).cte("m").prefix_with("MATERIALIZED")
    keys = ORDER[sort if ranked or sort != "relevance" else "updated"]
    page = (select(m.c.id, *(m.c[k] for k in keys))
            .order_by(*(m.c[k].desc() for k in keys))
            .limit(bindparam("limit", type_=Integer()))
            .offset(bindparam("offset", type_=Integer())).subquery("p"))
    padded = [*(page.c[k] for k in keys), *([_NULL] * (3 - len(keys)))]
    matched = select(m.c.id.label("sheet_id"), *(m.c[k] for k in FACET_KEYS)).subquery("fm")
    counted = facet_counts_query(matched, carried=True, join=_outer_first).subquery("fc")
    ends = select(func.min(_rows.c.sheet_id).label("first"),
                  func.max(_rows.c.sheet_id).label("last")).subquery("ends")
    return union_all(
        select(_kind("hit"), page.c.id, *padded).select_from(page),
        select(_kind("facet"), counted.c.param, counted.c.key, counted.c.n, _NULL),
        select(_kind("span"), select(func.max(m.c.id)).scalar_subquery(), ends.c.first,
               ends.c.last, _NULL).select_from(ends))


# -- the session hook: index in the transaction that changes the sheets ------------------------

_PENDING = "kb_search_pending"
_installed = False
_install_lock = threading.Lock()


def _active_backend(session: Session) -> SqliteBackend | None:
    if not has_app_context() or session.info.get("kb_search_off"):
        return None
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app.config.get("KB_SEARCH_BACKEND") != "sqlite":
        return None
    # The service (above this module) stores the app's backend under this key; a session may
    # write before anything searched, hence the default.
    backend = app.extensions.setdefault("kb_search", SqliteBackend())
    return backend if isinstance(backend, SqliteBackend) else None


def _after_flush(session: Session, _context: object) -> None:
    pending: set[int] = session.info.setdefault(_PENDING, set())
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Sheet):
            if obj.id is not None:
                pending.add(obj.id)
        elif isinstance(obj, Tag) and obj in session.dirty and obj.id is not None:
            # A renamed tag changes the documents of its sheets.
            pending.add(-obj.id)


def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return
    backend = _active_backend(session)
    if backend is None:
        session.info.pop(_PENDING, None)
        return
    from kb.transaction import marked_ids

    session.flush()
    pending: set[int] = session.info.pop(_PENDING, set()) | marked_ids(session)
    if not pending:
        return
    backend.write_in_session(session, pending)


def _in_memory(session: Session, ids: set[int]) -> dict[int, Document | None]:
    """Documents of the sheets this session holds with everything they need loaded (just
    flushed, so the same as the database): an import batch is not read back."""
    found: dict[int, Document | None] = {}
    with session.no_autoflush:
        extras = extra_text(sorted(ids), session)
    for sheet_id in ids:
        sheet = session.identity_map.get(identity_key(Sheet, sheet_id))
        if not isinstance(sheet, Sheet):
            continue
        state: InstanceState[Sheet] = inspect(sheet)
        if state.unloaded & _SHEET_NEEDS:
            continue
        revision = sheet.approved_revision
        if revision is not None and "data" in inspect(revision).unloaded:
            continue
        found[sheet_id] = document(sheet, extras.get(sheet_id, ""))
    return found


_SHEET_NEEDS = {"state", "slug", "approved_revision_id", "approved_revision", "tags",
                "updated_at", "last_reviewed_at", "review_interval_months"}


def _forget(session: Session, *_args: object) -> None:
    session.info.pop(_PENDING, None)


def install() -> None:
    """Hook every ORM session once (the hook does nothing unless the app searches with sqlite)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_rollback", _forget)
        _installed = True


# -- the backend -------------------------------------------------------------------------------

class SqliteBackend(DatabaseIndex):
    label = "SQLite"
    name = "sqlite"
    inline = True  # written in the data's own transaction: nothing to do after commit
    narrowable = True  # a committed change is in the index as soon as in the data

    def __init__(self) -> None:
        self._schema_seen: int | None = None  # PRAGMA schema_version when last checked
        self._state: str | None = None  # the stored signature then (None: no index)
        self._known_words: set[str] = set()

    @staticmethod
    def prepare(doc: Document) -> None:
        """The document's FTS5 row, computed where the document is built (a rebuild's
        second process) rather than where it is written."""
        doc.prepared = _fts_row(doc)

    # -- schema -----------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {META} "
                                 "(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")

    def _signature(self, conn: Connection) -> str | None:
        """The stored index's signature (None when there is no index), re-read only when the
        database schema changed (a rebuild in another process)."""
        version = conn.exec_driver_sql("PRAGMA schema_version").scalar()
        if version != self._schema_seen:
            names = set(conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE name IN (?, ?, ?)",
                (FTS, ROWS, META)).scalars())
            state = None
            if names == {FTS, ROWS, META}:
                state = conn.exec_driver_sql(
                    f"SELECT value FROM {META} WHERE key = 'version'").scalar()
            self._state, self._schema_seen = state, version
            self._known_words = set()
        return self._state

    def exists(self) -> bool:
        with db.engine.connect() as conn:
            return self._signature(conn) is not None

    def _ready(self, conn: Connection) -> None:
        state = self._signature(conn)
        if state is None:
            raise SearchUnavailable("l'index de recherche n'existe pas encore : "
                                    "lancez `kb index rebuild`")
        if state != SIGNATURE:
            raise SearchUnavailable(f"l'index de recherche est au format « {state} », le "
                                    f"logiciel attend « {SIGNATURE} » : lancez `kb index rebuild`")


    # -- writing ----------------------------------------------------------------------------
    def write_in_session(self, session: Session, pending: set[int]) -> None:
        """Called just before the commit: write the documents of these sheets (negative
        numbers are renamed tags) on the session's connection, in its transaction."""
        conn = session.connection()
        if self._signature(conn) != SIGNATURE:
            return  # no index yet, or an outdated one: the after-commit step or a rebuild
        ids = {i for i in pending if i > 0}
        renamed = [-i for i in pending if i < 0]
        if renamed:
            ids.update(conn.execute(select(sheet_tags.c.sheet_id).where(
                sheet_tags.c.tag_id.in_(renamed))).scalars())
        try:
            documents = _in_memory(session, ids)
            documents.update(load_documents(sorted(ids - documents.keys()), session))
        except Exception:  # noqa: BLE001 - the data's commit goes on; `kb index update` repairs
            log.exception("search documents not built for sheets %s; run `kb index update`",
                          sorted(ids)[:20])
            return
        for start in range(0, len(ids), BATCH):
            chunk = sorted(ids)[start:start + BATCH]
            _write(conn, [d for i in chunk if (d := documents.get(i)) is not None],
                   [i for i in chunk if documents.get(i) is None], known=self._known_words)

    def index(self, load: LoadDocuments, sheet_ids: list[int]) -> None:
        """Reconcile these sheets in one transaction. The documents are read on the writing
        connection once it holds SQLite's write lock (`load` would read on another one, maybe
        from an older snapshot)."""
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE {META} SET value = value WHERE key = 'version'")
            self._ready(conn)
            with Session(bind=conn) as session:
                session.info["kb_search_off"] = True
                documents = load_documents(sheet_ids, session)
            _write(conn, [d for d in documents.values() if d is not None],
                   [i for i, d in documents.items() if d is None], known=self._known_words)

    def rebuild(self, documents: Iterable[Document]) -> int:
        """Fill new tables in short transactions (the site keeps writing to the live ones),
        then swap them in at once; the caller reconciles what changed meanwhile."""
        self.ensure_schema()
        with db.engine.begin() as conn:
            self._drop(conn, NEXT)
            for statement in _ddl(NEXT):
                conn.exec_driver_sql(statement)
        count = 0
        known: set[str] = set()
        batch: list[Document] = []

        def flush() -> None:
            with db.engine.begin() as conn:
                _write(conn, batch, [], prefix=NEXT, known=known, fresh=True)
            batch.clear()

        for doc in documents:
            batch.append(doc)
            count += 1
            if len(batch) >= BATCH:
                flush()
        flush()
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"INSERT INTO {NEXT}({NEXT}) VALUES ('optimize')")
        with db.engine.begin() as conn:
            self._drop(conn, FTS)
            conn.exec_driver_sql(f"ALTER TABLE {NEXT} RENAME TO {FTS}")
            conn.exec_driver_sql(f"ALTER TABLE {NEXT}_rows RENAME TO {ROWS}")
            conn.exec_driver_sql(f"ALTER TABLE {NEXT}_words RENAME TO {WORDS}")
            conn.exec_driver_sql(f"CREATE VIRTUAL TABLE IF NOT EXISTS {VOCAB} "
                                 f"USING fts5vocab({FTS}, row)")
            conn.exec_driver_sql(f"INSERT OR REPLACE INTO {META} (key, value) "
                                 "VALUES ('version', ?)", (SIGNATURE,))
        self._schema_seen = None
        return count

    @staticmethod
    def _drop(conn: Connection, prefix: str) -> None:
        for name in (prefix, f"{prefix}_rows", f"{prefix}_words"):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")

    def optimize(self) -> None:
        with db.engine.begin() as conn:
            self._ready(conn)
            conn.exec_driver_sql(f"INSERT INTO {FTS}({FTS}) VALUES ('optimize')")

    def stamps(self) -> dict[int, str]:
        """Stamps of the sheets the index holds; a sheet missing from the FTS table or from
        the rows table (edited behind the application's back) gets an empty stamp."""
        with self._reading() as conn:
            rows: dict[int, str] = dict(conn.exec_driver_sql(
                f"SELECT sheet_id, stamp FROM {ROWS}").all())
            in_fts = set(conn.exec_driver_sql(f"SELECT id FROM {FTS}_docsize").scalars())
        for sheet_id in in_fts ^ rows.keys():
            rows[sheet_id] = ""
        return rows

    def integrity(self) -> None:
        """FTS5's own check of its index against its rows (reads the whole index: `kb index
        check` only). Raises SearchUnavailable when they disagree."""
        with self._reading() as conn:
            conn.exec_driver_sql(f"INSERT INTO {FTS}({FTS}, rank) VALUES ('integrity-check', 1)")

    # -- reading ----------------------------------------------------------------------------
    def known_words(self, candidates: list[str]) -> set[str]:
        if not candidates:
            return set()
        with self._reading() as conn:
            return set(conn.exec_driver_sql(
                f"SELECT word FROM {WORDS} WHERE word IN ({', '.join('?' * len(candidates))})",
                tuple(candidates)).scalars())

    def similar_words(self, word: str, max_distance: int) -> list[str]:
        if not word:
            return []
        with self._reading() as conn:
            candidates = conn.exec_driver_sql(
                f"SELECT word FROM {WORDS} WHERE word >= ? AND word < ? "
                "AND length(word) BETWEEN ? AND ?",
                (word[0], chr(ord(word[0]) + 1), len(word) - max_distance,
                 len(word) + max_distance)).scalars().all()
            found = [(d, w) for w in candidates if w != word
                     and (d := damerau_levenshtein(word, w, max_distance)) <= max_distance]
            if not found:
                return []
            stems = sorted({stem(w) for _, w in found})
            frequency: dict[str, int] = dict(conn.exec_driver_sql(
                f"SELECT term, doc FROM {VOCAB} WHERE term IN ({', '.join('?' * len(stems))})",
                tuple(stems)).all())
        return [w for _, _, w in sorted((d, -frequency.get(stem(w), 0), w) for d, w in found)]

    def search(self, parsed: ParsedQuery, filters: Filters, sort: str, offset: int, limit: int,
               match_all: bool = True) -> BackendResult:
        positive, negative = match_expression(parsed, match_all)
        if parsed.groups and not positive:
            return BackendResult([], 0, {})
        bounds = Bounds.configured()
        shape = (bool(positive), bool(negative), tuple(sorted(filters.active().items())), sort)
        expression = f"({positive}) NOT {negative}" if positive and negative else positive
        ranked = bool(positive) and sort == "relevance"
        params = {"match": expression, "negative": negative, "limit": limit, "offset": offset,
                  "bound": bounds.exact + 1}
        with self._reading() as conn:
            rows = conn.execute(_statement(*shape), params).all()
            total = 0
            page: list[tuple[Any, ...]] = []
            facets: dict[str, list[Facet]] = {}
            span: tuple[int, int, int] | None = None
            for kind, *values in rows:
                if kind == "hit":  # id, sort keys
                    page.append((int(values[0]), *values[1:]))
                    continue
                if kind == "span":
                    if values[0] is not None:
                        span = (int(values[0]), int(values[1]), int(values[2]))
                    continue
                param, key, count = values[:3]
                if not param:
                    total = int(count)
                elif key:
                    facets.setdefault(param, []).append(Facet(key, key, int(count)))
            estimated = total > bounds.exact and span is not None
            if estimated and span is not None:
                # The sample is the first matches by id: it covered ids up to its last one.
                last, first, end = span
                sampled = total
                total = estimate(sampled, (last - first + 1) / max(end - first + 1, 1))
                facets = scaled(facets, sampled, total)
                if ranked:
                    page = self._ranked(conn, parsed, expression, shape[2], bounds, offset, limit)
                else:
                    page = [tuple(r) for r in conn.execute(_page_statement(*shape), params)]
            if not (estimated and ranked):  # else already in the order of the two stages
                page.sort(key=lambda row: tuple(k for k in row[1:] if k is not None),
                          reverse=True)
            scores = {row[0]: float(row[1]) if ranked else 0.0 for row in page}
            hits = self._hits(conn, parsed, scores) if scores else []
        order = {sheet_id: n for n, sheet_id in enumerate(scores)}
        return BackendResult(sorted(hits, key=lambda h: order[h.sheet_id]), total, facets,
                             estimated=estimated)

    def matching(self, parsed: ParsedQuery, among: Collection[int] | None, bound: int
                 ) -> set[int] | None:
        positive, _ = match_expression(parsed, match_all=False)
        if not positive:
            return None
        with self._reading() as conn:
            if among is None:
                rows = conn.exec_driver_sql(
                    f"SELECT rowid FROM {FTS} WHERE {FTS} MATCH ? LIMIT ?",
                    (positive, bound + 1)).all()
            else:  # a few ids: reached from sheets, as in _hits
                ids = sorted(among)
                rows = conn.exec_driver_sql(
                    f"SELECT s.id FROM sheets s CROSS JOIN {FTS} f ON f.rowid = s.id "
                    f"WHERE s.id IN ({', '.join('?' * len(ids))}) AND {FTS} MATCH ?",
                    (*ids, positive)).all() if ids else []
        return {int(r[0]) for r in rows} if len(rows) <= bound else None

    @staticmethod
    def _ranked(conn: Connection, parsed: ParsedQuery, expression: str | None,
                filters: tuple[tuple[str, str], ...], bounds: Bounds, offset: int, limit: int
                ) -> list[tuple[Any, ...]]:
        """The page when too many sheets match to rank them all, in two stages: candidates
        with a word of the query in the short fields, best first by bm25 over those fewer
        matches, then the first other matches; the full bm25 reorders the first
        KB_SEARCH_CANDIDATES of them (`rescored`)."""
        wanted = bounds.candidates_for(offset, limit)
        head = head_expression(parsed)
        scores: dict[int, float] = {}
        if head:
            scores = {int(i): float(n) for i, n in conn.execute(
                _candidates_statement(filters, False),
                {"match": f"({expression}) AND ({head})", "limit": wanted})}
        short = head_expression(parsed, SHORT)
        for match in ([f"({expression}) AND ({short})"] if short else []) + [expression]:
            if len(scores) < wanted:
                scores.update({int(i): 0.0 for i, _ in conn.execute(
                    _candidates_statement(filters, True),
                    {"match": match, "seen": list(scores) or [0],
                     "limit": wanted - len(scores)})})
        ids = list(scores)
        # FTS5 seeks one row of a long doclist in ~4 ms (measured, "accueil" at 100,000
        # sheets): the full bm25 of 300 candidates would cost more than ranking every match.
        # Stage one's order (title bm25, then the first short-field matches, then the first
        # other matches) is the page's.
        page = rescored(ids, scores, 0)[offset:offset + limit]
        return [(sheet_id, scores.get(sheet_id, 0.0), sheet_id) for sheet_id in page]

    @staticmethod
    def _hits(conn: Connection, parsed: ParsedQuery, scores: dict[int, float]) -> list[Hit]:
        """The page's titles, links and extracts; a sheet unpublished behind the application's
        back (until `kb index update`) is left out."""
        ids = list(scores)
        marks = ", ".join("?" * len(ids))
        # The list on sheets.id, FTS5 reached by rowid from there: a rowid list on the FTS5
        # side made SQLite walk every sheet (15 times slower).
        rows = conn.exec_driver_sql(
            f"SELECT s.id, s.slug, s.title, f.snippet FROM sheets s CROSS JOIN {FTS} f "
            f"ON f.rowid = s.id WHERE s.id IN ({marks}) AND s.state IN ('active') "
            "AND s.approved_revision_id IS NOT NULL", tuple(ids)).all()
        words, prefixes = parsed.positive_words(), parsed.prefixes()
        return [Hit(sheet_id, slug, title, round(scores[sheet_id], 6),
                    highlight(snippet or "", words, prefixes=prefixes))
                for sheet_id, slug, title, snippet in rows]
