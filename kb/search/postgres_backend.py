"""PostgreSQL (scale-out) backend: the index is a table of weighted tsvectors in the database.

`kb_french` is a text search configuration mapping words through unaccent then french_stem
(unaccent() itself is not immutable, a configuration is). Documents live in `search_documents`
(GIN index on `tsv`), tags in `search_document_tags`, the vocabulary in `search_words` (trigram
index: typo tolerance and suggestions). Everything is created idempotently by ensure_schema(),
since migrations stay portable to SQLite. Writers serialise on an advisory lock.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import BigInteger, Integer, String, func, inspect, literal, select, text, union_all
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from kb.extensions import db
from kb.search.analysis import damerau_levenshtein, is_stop, prefix_stem, stem
from kb.search.backend import (
    SCHEMA_VERSION,
    BackendResult,
    Bounds,
    DatabaseIndex,
    Document,
    Facet,
    Filters,
    Hit,
    IndexBusy,
    LoadDocuments,
    SearchUnavailable,
    estimate,
    rescored,
    scaled,
)
from kb.search.documents import SEARCHABLE
from kb.search.models import SearchDocument, SearchDocumentTag, SearchWord
from kb.search.query import Alternative, ParsedQuery, Phrase, Term
from kb.search.snippets import START, STOP, from_markers, highlight
from kb.sheets.filters import apply_filters, facet_columns, facet_counts_query
from kb.sheets.models import Sheet

log = logging.getLogger(__name__)

CONFIG = "kb_french"
WRITE_LOCK = 7_315_001  # pg_advisory_xact_lock keys
SCHEMA_LOCK = 7_315_002
TABLES = (SearchDocument.__table__, SearchDocumentTag.__table__, SearchWord.__table__)
VERSION_COMMENT = f"kb-search-schema {SCHEMA_VERSION}"
LEGACY_COLUMNS = ("scale", "actor_type", "department", "department_label", "city", "city_label")
# A dot between two word characters: PostgreSQL's parser reads "habitant.e.s" (or
# "brest.fr") as one host or file token, kept whole; the shared analysis, and so the other
# engines, read words (\w+): "habitant", "e", "s".
_JOINED = re.compile(r"(?<=\w)[.·](?=\w)")
# Compiles kb.sheets.filters clauses with plain `:name` parameters (no driver casts), which
# text() understands.
_NAMED_PARAMS = PGDialect(paramstyle="named")


def _weight_classes() -> dict[str, tuple[str, ...]]:
    """PostgreSQL has four weights: the declaration's boosts fall into A (>=5), B (>=3), C (>=2), D."""
    classes: dict[str, list[str]] = {"A": [], "B": [], "C": [], "D": []}
    for f in SEARCHABLE:
        letter = "A" if f.boost >= 5 else "B" if f.boost >= 3 else "C" if f.boost >= 2 else "D"
        classes[letter].append(f.name)
    return {k: tuple(v) for k, v in classes.items()}


WEIGHT_CLASSES = _weight_classes()
_MAX_BOOST = max(f.boost for f in SEARCHABLE)


def _rank_weights() -> str:
    """ts_rank_cd weights {D, C, B, A}: each class's mean declared boost, relative to the top."""
    values = []
    for letter in "DCBA":
        names = WEIGHT_CLASSES[letter]
        boosts = [f.boost for f in SEARCHABLE if f.name in names] or [1.0]
        values.append(round(sum(boosts) / len(boosts) / _MAX_BOOST, 3))
    return "{" + ",".join(str(v) for v in values) + "}"


RANK_WEIGHTS = _rank_weights()
HEADLINE_OPTIONS = (f"StartSel={START}, StopSel={STOP}, MaxWords=35, MinWords=15, "
                    "MaxFragments=2, FragmentDelimiter=\" … \"")
_TSV_SQL = " || ".join(f"setweight(to_tsvector('{CONFIG}', :w_{k.lower()}), '{k}')"
                       for k in "ABCD")
_TSV_HEAD_SQL = " || ".join(f"setweight(to_tsvector('{CONFIG}', :w_{k.lower()}), '{k}')"
                            for k in "ABC")


class PostgresBackend(DatabaseIndex):
    label = "PostgreSQL"
    name = "postgres"

    def __init__(self) -> None:
        self._trgm_schema: str | None = None
        self._version_ok = False

    # -- schema -----------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        with db.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK})
            schemas = {}
            for extension in ("unaccent", "pg_trgm"):
                schema = self._extension_schema(conn, extension)
                if schema is None:
                    # In `public`, not the first schema of the search path: tests use one
                    # schema per worker and drop it, an extension exists once per database.
                    conn.execute(text(f"CREATE EXTENSION IF NOT EXISTS {extension} SCHEMA public"))
                    schema = "public"
                schemas[extension] = schema
            if not self._has_config(conn):
                conn.execute(text(f"CREATE TEXT SEARCH CONFIGURATION {CONFIG} "
                                  "(COPY = pg_catalog.french)"))
                conn.execute(text(
                    f"ALTER TEXT SEARCH CONFIGURATION {CONFIG} ALTER MAPPING FOR "
                    "asciiword, asciihword, hword_asciipart, word, hword, hword_part "
                    f"WITH {_quote(schemas['unaccent'])}.unaccent, french_stem"))
            self._drop_outdated_tables(conn)
            db.metadata.create_all(conn, tables=list(TABLES), checkfirst=True)
            conn.execute(text(
                "CREATE INDEX IF NOT EXISTS ix_search_words_trgm ON search_words "
                f"USING gin (word {_quote(schemas['pg_trgm'])}.gin_trgm_ops)"))
            self._trgm_schema = schemas["pg_trgm"]

    @staticmethod
    def _drop_outdated_tables(conn: Connection) -> None:
        """Derived tables from an older version lose their columns' meaning: drop them, the
        rebuild that a version change calls for fills them again."""
        inspector = inspect(conn)
        for table in TABLES:
            if not inspector.has_table(table.name):
                continue
            existing = {c["name"] for c in inspector.get_columns(table.name)}
            if existing != {c.name for c in table.columns}:
                log.warning("search table %s is outdated: recreated (kb index rebuild)", table.name)
                for stale in TABLES:
                    conn.execute(text(f"DROP TABLE IF EXISTS {stale.name} CASCADE"))
                return

    @staticmethod
    def _extension_schema(conn: Connection, extension: str) -> str | None:
        return conn.scalar(text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = :e"), {"e": extension})

    @staticmethod
    def _has_config(conn: Connection) -> bool:
        return bool(conn.scalar(text(
            "SELECT count(*) FROM pg_ts_config WHERE cfgname = :c "
            "AND cfgnamespace = current_schema()::regnamespace"), {"c": CONFIG}))

    def exists(self) -> bool:
        """True once an index was built here (whatever its version)."""
        with db.engine.connect() as conn:
            if not conn.scalar(text("SELECT to_regclass('search_documents') IS NOT NULL")) \
                    or not self._has_config(conn):
                return False
            comment = conn.scalar(text("SELECT obj_description('search_documents'::regclass)"))
            return bool(comment and comment.startswith("kb-search-schema"))

    def _ready(self, conn: Connection) -> None:
        if self._version_ok and self._trgm_schema:
            return
        if not bool(conn.scalar(text("SELECT to_regclass('search_documents') IS NOT NULL"))) \
                or not self._has_config(conn):
            raise SearchUnavailable("l'index PostgreSQL n'est pas créé : lancez `kb index rebuild`")
        comment = conn.scalar(text("SELECT obj_description('search_documents'::regclass)"))
        if comment != VERSION_COMMENT:
            raise SearchUnavailable(f"l'index de recherche est au format « {comment} », le "
                                    f"logiciel attend « {VERSION_COMMENT} » : "
                                    "lancez `kb index rebuild`")
        self._trgm_schema = self._extension_schema(conn, "pg_trgm")
        self._version_ok = True


    # -- writing ----------------------------------------------------------------------------
    @contextmanager
    def _writing(self, timeout: float = 10.0) -> Iterator[Connection]:
        with db.engine.begin() as conn:
            conn.execute(text(f"SET LOCAL lock_timeout = '{int(timeout * 1000)}ms'"))
            try:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK})
            except OperationalError as exc:
                raise IndexBusy("index PostgreSQL occupé par un autre processus") from exc
            conn.execute(text("SET LOCAL lock_timeout = 0"))
            yield conn

    @staticmethod
    def _write(conn: Connection, docs: list[Document], removed: list[int]) -> None:
        ids = [d.sheet_id for d in docs] + removed
        if not ids:
            return
        conn.execute(text("DELETE FROM search_document_tags WHERE sheet_id = ANY(:ids)"),
                     {"ids": ids})
        if removed:
            conn.execute(text("DELETE FROM search_documents WHERE sheet_id = ANY(:ids)"),
                         {"ids": removed})
        if not docs:
            return
        rows = []
        for d in docs:
            row: dict[str, Any] = {
                "sheet_id": d.sheet_id, "revision_id": d.revision_id, "stamp": d.stamp,
                "slug": d.slug, "title": d.title, "snippet_source": d.snippet_source,
                "updated_at": d.updated_at, "review_due_at": d.review_due_at,
                # Unused since filters and facets read the sheets table (kb.sheets.filters).
                **dict.fromkeys(LEGACY_COLUMNS, ""),
            }
            for letter, names in WEIGHT_CLASSES.items():
                row[f"w_{letter.lower()}"] = _JOINED.sub(
                    " ", "\n".join(d.fields.get(n, "") for n in names))
            rows.append(row)
        columns = [c for c in rows[0] if not c.startswith("w_")]
        conn.execute(text(
            f"INSERT INTO search_documents ({', '.join(columns)}, tsv, tsv_head) "
            f"VALUES ({', '.join(':' + c for c in columns)}, {_TSV_SQL}, {_TSV_HEAD_SQL}) "
            "ON CONFLICT (sheet_id) DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in [*columns[1:], "tsv", "tsv_head"])), rows)
        vocabulary = sorted({w for d in docs for w in d.vocabulary})
        conn.execute(text(
            "INSERT INTO search_words (word, stem, lexeme) SELECT w, s, array_to_string("
            f"tsvector_to_array(to_tsvector('{CONFIG}', w)), ' ') FROM unnest(CAST(:w AS text[]), "
            "CAST(:s AS text[])) AS v(w, s) ON CONFLICT DO NOTHING"),
            {"w": vocabulary, "s": [stem(w) for w in vocabulary]})

    def index(self, load: LoadDocuments, sheet_ids: list[int]) -> None:
        with self._writing() as conn:
            self._ready(conn)
            documents = load(sheet_ids)  # read once the lock is held: never older than the index
            self._write(conn, [d for d in documents.values() if d is not None],
                        [i for i, d in documents.items() if d is None])

    def rebuild(self, documents: Iterable[Document]) -> int:
        # One transaction: readers keep the old rows until the commit swaps everything at once.
        count = 0
        with self._writing(timeout=60) as conn:
            conn.execute(text("DELETE FROM search_document_tags"))
            conn.execute(text("DELETE FROM search_documents"))
            conn.execute(text("DELETE FROM search_words"))
            batch: list[Document] = []
            for doc in documents:
                batch.append(doc)
                count += 1
                if len(batch) >= 500:
                    self._write(conn, batch, [])
                    batch = []
            self._write(conn, batch, [])
            conn.execute(text(f"COMMENT ON TABLE search_documents IS '{VERSION_COMMENT}'"))
        self._version_ok = False
        with db.engine.connect() as conn:  # fresh statistics, or the planner scans everything
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in TABLES:
                conn.execute(text(f"ANALYZE {table.name}"))
        return count

    def optimize(self) -> None:
        with db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in TABLES:
                conn.execute(text(f"VACUUM (ANALYZE) {table.name}"))

    def stamps(self) -> dict[int, str]:
        with self._reading() as conn:
            return {row[0]: row[1] for row in conn.execute(
                text("SELECT sheet_id, stamp FROM search_documents"))}

    # -- reading ----------------------------------------------------------------------------
    # Written after the data's commit, then the listing version moves once more
    # (kb.search.service.index_changed): a change is checked again once it is in the index.
    narrowable = True

    def matching(self, parsed: ParsedQuery, among: Collection[int] | None, bound: int
                 ) -> set[int] | None:
        with self._reading() as conn, conn.begin():
            params: dict[str, Any] = {"bound": bound + 1}
            _, _, any_word = self._tsquery(conn, parsed, False, params)
            if not any_word:
                return None
            where = ""
            if among is not None:
                where, params["among"] = "d.sheet_id = ANY(:among) AND ", sorted(among)
            rows = conn.execute(text(
                f"SELECT d.sheet_id FROM search_documents d "
                f"WHERE {where}d.tsv @@ ({any_word}) LIMIT :bound"), params).all()
        return {int(r[0]) for r in rows} if len(rows) <= bound else None

    def known_words(self, candidates: list[str]) -> set[str]:
        with self._reading() as conn:
            return set(conn.scalars(text("SELECT word FROM search_words WHERE word = ANY(:w)"),
                                    {"w": candidates}))

    def similar_words(self, word: str, max_distance: int) -> list[str]:
        with self._reading() as conn, conn.begin():
            schema = _quote(self._trgm_schema or "public")
            conn.execute(text("SELECT set_config('pg_trgm.similarity_threshold', '0.3', true)"))
            rows = conn.execute(text(
                f"SELECT word, {schema}.similarity(word, :w) AS sim FROM search_words "
                f"WHERE word OPERATOR({schema}.%) :w AND left(word, 1) = left(:w, 1) "
                "ORDER BY sim DESC LIMIT 50"), {"w": word}).all()
        scored = [(damerau_levenshtein(word, w, max_distance), -sim, w) for w, sim in rows
                  if w != word]
        return [w for d, _, w in sorted(scored) if d <= max_distance]

    def _variants(self, conn: Connection, parsed: ParsedQuery) -> dict[str, list[str]]:
        """Indexed words sharing a stem with the query's words.

        kb_french stems once after unaccent, so "partagee" and "partage" give two lexemes;
        our stem (twice) joins them, and the query asks for every indexed spelling.
        """
        stems = {stem(w) for w in parsed.positive_words() if not is_stop(w)}
        stems |= {stem(t.word) for t in (a for a in parsed.excluded if isinstance(a, Term))}
        found: dict[str, list[str]] = {}
        if stems:
            # One spelling per distinct lexeme: a longer OR list only slows ranking down.
            for word, word_stem in conn.execute(text(
                    "SELECT DISTINCT ON (stem, lexeme) word, stem FROM search_words "
                    "WHERE stem = ANY(:s) ORDER BY stem, lexeme, length(word), word"),
                    {"s": sorted(stems)}):
                found.setdefault(word_stem, []).append(word)
        return found

    @staticmethod
    def _alternative_text(alt: Alternative, variants: dict[str, list[str]]) -> list[str]:
        if isinstance(alt, Phrase):
            return ['"' + " ".join(alt.words) + '"']
        spellings: list[str] = []
        for word in (alt.word, *alt.corrections):
            spellings += [word, *variants.get(stem(word), [])[:20]]
        # "or" is websearch_to_tsquery's operator, never a word to look for.
        return [w for w in dict.fromkeys(spellings) if w != "or"]

    def _tsquery(self, conn: Connection, parsed: ParsedQuery, match_all: bool,
                 params: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
        """(what must match, what must not, any of the query's words) as tsquery SQL."""
        variants = self._variants(conn, parsed)

        def websearch(alternatives: list[Alternative]) -> str:
            parts = []
            words = [a for a in alternatives if not (isinstance(a, Term) and a.prefix)]
            if words:
                name = f"q{len(params)}"
                params[name] = " or ".join(t for a in words
                                           for t in self._alternative_text(a, variants))
                parts.append(f"websearch_to_tsquery('{CONFIG}', :{name})")
            for alt in alternatives:
                if isinstance(alt, Term) and alt.prefix:
                    # Lexemes are stems: the prefix is matched raw ('simple'), on its stem part.
                    name = f"q{len(params)}"
                    params[name] = prefix_stem(alt.word) + ":*"
                    parts.append(f"to_tsquery('simple', :{name})")
            return " || ".join(parts)

        groups = [f"({websearch(g)})" for g in parsed.groups]
        positive = (" && " if match_all else " || ").join(groups) or None
        negative = websearch(parsed.excluded) if parsed.excluded else None
        return positive, negative, " || ".join(groups) or None

    @staticmethod
    def _where(filters: Filters, params: dict[str, Any]) -> list[str]:
        """The filters of /fiches, verbatim: kb.sheets.filters.apply_filters on the sheets
        table, compiled into this backend's SQL text (parameters `filter_<param>`)."""
        if not filters:
            return []
        stmt = apply_filters(select(Sheet.__table__.c.id), filters)
        compiled = stmt.compile(dialect=_NAMED_PARAMS)
        params.update(compiled.params)
        return [f"d.sheet_id IN ({compiled})"]

    def search(self, parsed: ParsedQuery, filters: Filters, sort: str, offset: int, limit: int,
               match_all: bool = True) -> BackendResult:
        bounds = Bounds.configured()
        with self._reading() as conn, conn.begin():
            # Matches come from the GIN index's bitmap: without rechecks (plain queries), no
            # tsvector is read to count them and their facets. A sequential scan would read
            # (and decompress) every vector.
            params: dict[str, Any] = {}
            positive, negative, any_word = self._tsquery(conn, parsed, match_all, params)
            if positive:
                conn.execute(text("SET LOCAL enable_seqscan = off"))
            where = self._where(filters, params)
            query_sql = f"({positive})" if positive else "NULL::tsquery"
            if positive:
                where.append("d.tsv @@ q.query")
            if negative:
                where.append(f"NOT (d.tsv @@ {negative})")
            where_sql = " AND ".join(where) or "TRUE"
            facets, sampled, covered, matched = self._facets(conn, query_sql, where_sql,
                                                             params, bounds.exact + 1)
            total, estimated = sampled, sampled > bounds.exact
            if estimated:
                total = estimate(sampled, covered)
                facets = scaled(facets, sampled, total)
            ranked = bool(positive) and sort == "relevance"
            candidates = None
            if estimated and ranked:
                candidates = self._candidates(conn, query_sql, where_sql, any_word, params,
                                              bounds.candidates_for(offset, limit),
                                              bounds.exact + 1)
            if candidates is not None:
                rows = self._rescored_page(conn, query_sql, params, candidates,
                                           bounds.candidates, offset, limit)
            else:
                if not estimated and positive:  # every match is known: rank those rows
                    where_sql, params = "d.sheet_id = ANY(:matched)", {**params,
                                                                        "matched": matched}
                rows = self._page(conn, query_sql, where_sql, params, bool(positive), sort,
                                  offset, limit)
        hits = [Hit(r[0], r[1], r[2], round(float(r[3]), 4),
                    from_markers(r[4]) if positive else highlight(r[4], []))
                for r in rows]
        return BackendResult(hits, total, facets, estimated=estimated)

    @staticmethod
    def _candidates(conn: Connection, query_sql: str, where_sql: str, any_word: str | None,
                    params: dict[str, Any], wanted: int, sample: int) -> list[int]:
        """Stage one of the ranking when too many sheets match to rank them all: among the
        first `sample` matches with one of the query's words in the head vector (title,
        tags, actor, place, summary), the best by that short vector; completed with the
        first other matches. Ranking every head match cost 0.3 s at 100,000 sheets when
        nearly all of them hold the word (bench.search_probe --per-query); the sample bounds
        it. The sample is read from the GIN bitmap in block order, in one process: the same
        for every page, so a far page reads more candidates, never other ones. (With parallel
        workers the first rows depend on timing; an index scan in id order would test every
        vector.)"""
        base = f"FROM search_documents d, (SELECT {query_sql} AS query) q WHERE {where_sql}"
        ids: list[int] = []
        if any_word:
            conn.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
            conn.execute(text("SET LOCAL enable_indexscan = off"))
            ids = list(conn.scalars(text(
                f"SELECT s.sheet_id FROM (SELECT d.sheet_id, d.tsv_head, q.head FROM "
                f"search_documents d, (SELECT {query_sql} AS query, {any_word} AS head) q "
                f"WHERE {where_sql} AND d.tsv_head @@ q.head LIMIT :sample) s ORDER BY "
                f"ts_rank_cd('{RANK_WEIGHTS}', s.tsv_head, s.head) DESC, s.sheet_id "
                "LIMIT :wanted"), {**params, "wanted": wanted, "sample": sample}))
            conn.execute(text("SET LOCAL max_parallel_workers_per_gather TO DEFAULT"))
            conn.execute(text("SET LOCAL enable_indexscan TO DEFAULT"))
        if len(ids) < wanted:
            ids += conn.scalars(text(
                f"SELECT d.sheet_id {base} AND NOT (d.sheet_id = ANY(:seen)) LIMIT :more"),
                {**params, "seen": ids, "more": wanted - len(ids)})
        return ids

    @staticmethod
    def _page(conn: Connection, query_sql: str, where_sql: str, params: dict[str, Any],
              ranked: bool, sort: str, offset: int, limit: int) -> list[Any]:
        order = {"updated": "updated_at DESC", "freshness": "review_due_at DESC"}.get(
            sort, "score DESC, updated_at DESC" if ranked else "updated_at DESC")
        score = f"ts_rank_cd('{RANK_WEIGHTS}', d.tsv, q.query)" if ranked else "0.0"
        source = f"FROM search_documents d, (SELECT {query_sql} AS query) q WHERE {where_sql}"
        headline = (f"ts_headline('{CONFIG}', p.snippet_source, p.query, :headline)"
                    if ranked else "p.snippet_source")
        # The page first, then headlines for its rows only (ts_headline is costly).
        return list(conn.execute(text(
            f"SELECT p.sheet_id, p.slug, p.title, p.score, {headline} FROM ("
            f"SELECT d.sheet_id, d.slug, d.title, d.snippet_source, q.query, {score} AS score, "
            f"d.updated_at AS updated_at, d.review_due_at AS review_due_at {source} "
            f"ORDER BY {order}, sheet_id LIMIT :limit OFFSET :offset) p "
            f"ORDER BY {order}, sheet_id"),
            {**params, "limit": limit, "offset": offset, "headline": HEADLINE_OPTIONS}).all())

    @staticmethod
    def _rescored_page(conn: Connection, query_sql: str, params: dict[str, Any],
                       candidates: list[int], window: int, offset: int, limit: int
                       ) -> list[Any]:
        """Stage two: the full vectors of the first `window` candidates order them
        (`rescored`), then the page's rows with their headlines."""
        score = f"ts_rank_cd('{RANK_WEIGHTS}', d.tsv, q.query)"
        source = f"FROM search_documents d, (SELECT {query_sql} AS query) q"
        scores = {int(i): float(n) for i, n in conn.execute(text(
            f"SELECT d.sheet_id, {score} {source} WHERE d.sheet_id = ANY(:ids)"),
            {**params, "ids": candidates[:window]})}
        page = rescored(candidates, scores, window)[offset:offset + limit]
        rows = {r[0]: r for r in conn.execute(text(
            f"SELECT d.sheet_id, d.slug, d.title, {score}, ts_headline('{CONFIG}', "
            f"d.snippet_source, q.query, :headline) {source} WHERE d.sheet_id = ANY(:ids)"),
            {**params, "ids": page, "headline": HEADLINE_OPTIONS})}
        return [rows[i] for i in page if i in rows]

    @staticmethod
    def _facets(conn: Connection, query_sql: str, where_sql: str, params: dict[str, Any],
                bound: int) -> tuple[dict[str, list[Facet]], int, float, list[int]]:
        """Facet counts of the first `bound` matches in the table's order (all of them when
        fewer), from the sheets' projection like /fiches (kb.sheets.filters), the match and
        the sheets' facet keys read once (a materialised CTE); the number of those matches;
        the share of the table they cover (their last block: the GIN bitmap and a sequential
        scan both read the table in block order)."""
        # LIMIT keeps the match on its own (the GIN bitmap): joined to sheets, the planner
        # would rather walk the documents in id order and test every vector.
        sql = (f"SELECT h.sheet_id, h.block, {_FACET_COLUMNS} FROM (SELECT d.sheet_id, "
               "(d.ctid::text::point)[0]::bigint AS block FROM "
               f"search_documents d, (SELECT {query_sql} AS query) q WHERE {where_sql} "
               "LIMIT :bound) h JOIN sheets ON sheets.id = h.sheet_id")
        matched = (text(sql).bindparams(**{k: v for k, v in params.items() if f":{k}" in sql},
                                        bound=bound)
                   .columns(sheet_id=Integer, block=BigInteger,
                            **{name: String for name in _FACET_KEYS})
                   .cte("m").prefix_with("MATERIALIZED"))
        span = select(literal(SPAN, String), literal("", String), func.max(matched.c.block))
        # The matches' ids too: when they are all of them, the page ranks these rows instead
        # of matching again (a phrase rechecks every vector with its words: twice the cost).
        matched_ids = select(literal(MATCHED, String), literal("", String), matched.c.sheet_id)
        facets: dict[str, list[Facet]] = {}
        sampled, last_block, ids = 0, 0, []
        result: Any = conn.execute(union_all(facet_counts_query(matched, True), span,
                                             matched_ids))
        rows: list[tuple[str, str, int | None]] = [(r[0], r[1], r[2]) for r in result]
        for param, key, count in rows:
            if param == MATCHED:
                ids.append(int(count or 0))
            elif param == SPAN:
                last_block = int(count or 0)
            elif not param:
                sampled = int(count or 0)
            elif key:
                facets.setdefault(param, []).append(Facet(key, key, int(count or 0)))
        blocks = conn.scalar(text("SELECT pg_relation_size('search_documents') / "
                                  "current_setting('block_size')::int")) or 1
        return facets, sampled, (last_block + 1) / max(int(blocks), 1), ids


SPAN = "#span"  # the facet row carrying the sample's last block
MATCHED = "#id"  # the rows carrying the matches' ids
_FACET_KEYS = tuple(c.name for c in facet_columns(Sheet.__table__))
_FACET_COLUMNS = ", ".join(f"{c.element.compile(dialect=_NAMED_PARAMS)} AS {c.name}"
                           for c in facet_columns(Sheet.__table__))


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
