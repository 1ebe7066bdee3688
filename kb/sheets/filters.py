"""Filters declared once: parse a reader's filter parameters, apply them, count facets.

A facet is declared on its field (`Field.facet` in kb/sheets/fields.py). Every output that
accepts filters reads this module, so that one parameter has one meaning everywhere:
`/fiches`, `/api/v1/sheets`, `/recherche` and `/api/v1/search` (every search backend), embed
lists, feeds, widget.js and the configurator, and the OpenAPI document.

- `parse_filters(request.args)` -> `Filters` (typed, normalised keys) or `FilterError` (French
  message, for a 400).
- `apply_filters(stmt, filters)`: the filters as WHERE clauses on the sheets' projection
  columns. SQL search backends apply the very same function on the `sheets` table, so that
  search filters are by construction the listing's filters.
- `facet_values(sheet)`: the keys an index outside the database (Whoosh) stores per sheet.
- `count_facets(matched)`: facet counts of a set of sheet ids, in SQL.
- `facet_labels(param, keys)`: French labels ("Finistère (29)") for facet keys.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, bindparam, func, literal, select, union_all
from sqlalchemy.sql import ColumnElement, FromClause, Select

from kb.errors import Invalid
from kb.extensions import db
from kb.sheets.fields import FIELDS, Facet, Field, Kind
from kb.sheets.models import Sheet, Tag, sheet_keys, sheet_tags
from kb.text import fold

MAX_VALUE_LENGTH = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class FacetSpec:
    """A declared facet with what every output needs to know about it."""

    field: Field
    facet: Facet
    # A part of a RECORDS field (indicators' kind): its keys are stored in sheet_keys under
    # "<field>.<part>" ("indicators.kind"); "" for a field's own facet.
    keys_field: str = ""

    @property
    def key_field(self) -> str:
        """sheet_keys.field of this facet's keys."""
        return self.keys_field or self.field.name

    @property
    def param(self) -> str:
        return self.facet.param

    @property
    def title(self) -> str:
        return self.facet.title or self.field.label

    @property
    def through_tags(self) -> bool:
        """Stored in the sheet_tags association rather than in a projection column."""
        return self.field.kind is Kind.LIST

    @property
    def through_keys(self) -> bool:
        """Several keys, stored in sheet_keys: a vocabulary (thématiques, publics), the
        records of a RECORDS field ("1" when it has any) and its parts' values."""
        return self.field.kind in (Kind.MULTI, Kind.RECORDS) or bool(self.keys_field)

    @property
    def in_column(self) -> bool:
        return not (self.through_tags or self.through_keys)

    @property
    def column(self) -> str:
        return self.facet.column or self.field.name

    @property
    def options_known(self) -> bool:
        """Values form a closed list (a choice): a select rather than a text input."""
        return bool(self.field.choices)

    def normalise(self, raw: str) -> str:
        """A reader's value -> the stored key; ValueError with a French message."""
        value = " ".join(str(raw).split())[:MAX_VALUE_LENGTH]
        if self.facet.normalise is not None:
            return self.facet.normalise(value)
        if self.field.choices:
            return self.field.choice_key(value)
        return value.lower() if self.facet.ignore_case else value

    def key_of(self, stored: str) -> str:
        """The key of a value as stored in the projection column."""
        return stored.lower() if self.facet.ignore_case else stored

    def label(self, key: str) -> str:
        """French label of a key, without the database (tags and free text: the key)."""
        if self.facet.label_of is not None:
            return self.facet.label_of(key)
        if self.field.choices:
            return self.field.choice_label(key)
        return key

    def column_of(self, sheets: FromClause) -> ColumnElement[Any]:
        column: ColumnElement[Any] = sheets.c[self.column]
        return func.lower(column) if self.facet.ignore_case else column


def _declared() -> Iterator[FacetSpec]:
    for f in FIELDS:
        if f.facet:
            yield FacetSpec(f, f.facet)
        for part in f.parts:
            if part.facet:
                yield FacetSpec(part, part.facet, f"{f.name}.{part.name}")


FACETS: tuple[FacetSpec, ...] = tuple(_declared())
FACETS_BY_PARAM: dict[str, FacetSpec] = {spec.param: spec for spec in FACETS}
PARAMS: tuple[str, ...] = tuple(FACETS_BY_PARAM)
# Every parameter name read, older aliases included (widget.js keeps these from `data-list`).
ACCEPTED_PARAMS: tuple[str, ...] = tuple(
    name for spec in FACETS for name in (spec.param, *spec.facet.aliases))
# Projection columns that facets read: part of the search stamps (an index outside the
# database must be refreshed when a backfill changes them without a new revision).
COLUMNS: tuple[str, ...] = tuple(spec.column for spec in FACETS if spec.in_column)


class FilterError(Invalid):
    """A filter value that cannot match: `param` and a French message (answer 400)."""

    status = 400
    code = "bad_request"

    def __init__(self, param: str, message: str):
        super().__init__(f"Filtre « {param} » : {message.rstrip('.')}.")
        self.param = param


@dataclass(frozen=True)
class Filters:
    """Active filters: facet parameter -> normalised key, in declaration order."""

    values: Mapping[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.values)

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def get(self, param: str, default: str = "") -> str:
        return self.values.get(param, default)

    def items(self) -> Iterable[tuple[str, str]]:
        return self.values.items()

    def active(self) -> dict[str, str]:
        return dict(self.values)

    def with_value(self, param: str, key: str | None) -> Filters:
        values = {p: v for p, v in self.values.items() if p != param}
        if key:
            values[param] = key
        return Filters({p: values[p] for p in PARAMS if p in values})

    def labels(self) -> list[tuple[str, str, str]]:
        """(param, facet title, value label) of each active filter."""
        return [(param, FACETS_BY_PARAM[param].title, facet_labels(param, [key]).get(key, key))
                for param, key in self.values.items()]


def parse_filters(args: Mapping[str, Any]) -> Filters:
    """Read every declared facet parameter (or an older alias) from request arguments.

    Empty values are ignored; a value that can match nothing, or longer than
    MAX_VALUE_LENGTH, raises FilterError.
    """
    values: dict[str, str] = {}
    for spec in FACETS:
        raw = ""
        for name in (spec.param, *spec.facet.aliases):
            given = str(args.get(name) or "")
            if len(given) > MAX_VALUE_LENGTH:  # the OpenAPI document's maxLength
                raise FilterError(spec.param, f"valeur trop longue ({MAX_VALUE_LENGTH} "
                                              "caractères au plus)")
            raw = " ".join(_CONTROL.sub(" ", given).split())
            if raw:
                break
        if not raw:
            continue
        try:
            key = spec.normalise(raw)
        except ValueError as exc:
            raise FilterError(spec.param, str(exc)) from None
        if key:
            values[spec.param] = key
    return Filters(values)


def _sheets_table() -> FromClause:
    return Sheet.__table__


def filter_clauses(filters: Filters, sheets: FromClause | None = None
                   ) -> list[ColumnElement[bool]]:
    """One WHERE clause per active filter, on `sheets` (the sheets table or an alias of it).

    Bound parameters are named `filter_<param>`: raw-SQL backends can embed the compiled text.
    """
    table = sheets if sheets is not None else _sheets_table()
    clauses: list[ColumnElement[bool]] = []
    for param, key in filters.items():
        spec = FACETS_BY_PARAM[param]
        value = bindparam(f"filter_{param}", key, type_=String)
        if spec.through_tags:
            clauses.append(table.c.id.in_(
                select(sheet_tags.c.sheet_id)
                .join(Tag, Tag.id == sheet_tags.c.tag_id)
                .where(Tag.slug == value)))
        elif spec.through_keys:
            clauses.append(table.c.id.in_(
                select(sheet_keys.c.sheet_id)
                .where(sheet_keys.c.field == bindparam(f"filter_{param}_field", spec.key_field,
                                                       type_=String),
                       sheet_keys.c.key == value)))
        else:
            clauses.append(spec.column_of(table) == value)
    return clauses


def apply_filters(stmt: Select[Any], filters: Filters, sheets: FromClause | None = None
                  ) -> Select[Any]:
    """Restrict `stmt` to the sheets that match every active filter.

    Contract (what SQL search backends rely on):
    - `stmt` selects from the `sheets` table, or from `sheets`, an alias of it, passed here
      (e.g. an FTS5 or tsvector table JOINed on `sheets.id`).
    - Only WHERE clauses are added, ANDed: no join, no column, no order, no limit changes.
      Column facets compare a projection column (`sheets.scale`, `sheets.department`...)
      with the normalised key, which the projection columns' indexes serve; the tag facet adds
      `sheets.id IN (SELECT sheet_id FROM sheet_tags JOIN tags ... WHERE tags.slug = key)`,
      a MULTI facet `sheets.id IN (SELECT sheet_id FROM sheet_keys WHERE field = ... AND key = ...)`.
    - Publication is not checked here: start from `published_sheets()` or join on it.
    - Bound parameters are named `filter_<param>`.
    """
    for clause in filter_clauses(filters, sheets):
        stmt = stmt.where(clause)
    return stmt


def projection(data: Mapping[str, Any]) -> dict[str, str]:
    """Projection column -> value for a revision's data (publish() writes these).

    Declared values are stored normalised when they can be ("Finistère" -> "29"), so that a
    filter compares keys; a value that cannot be normalised is kept as written.
    """
    values: dict[str, str] = {}
    for spec in FACETS:
        if not spec.in_column:
            continue
        raw = str(data.get(spec.field.name) or "")
        try:
            values[spec.column] = spec.normalise(raw) if raw else ""
        except ValueError:
            values[spec.column] = raw
        if spec.facet.ignore_case:
            values[spec.column] = " ".join(raw.split())  # shown as written, compared lowered
    return values


def multi_keys(data: Mapping[str, Any]) -> dict[str, list[str]]:
    """MULTI field name -> the keys sheet_keys holds for a revision's data (publish() writes
    them): each value, and for grouped vocabularies its family too, so that `thematique=mobilite`
    finds every sheet with a mobility thématique."""
    keys: dict[str, list[str]] = {}
    for f in FIELDS:
        if f.kind is Kind.RECORDS:
            # "1" when the sheet has any item (has_results=1), and each faceted part's values.
            items = [item for item in data.get(f.name) or [] if isinstance(item, dict)]
            keys[f.name] = ["1"] if items else []
            for part in f.parts:
                if part.facet:
                    keys[f"{f.name}.{part.name}"] = list(dict.fromkeys(
                        str(item[part.name]) for item in items if item.get(part.name)))
            continue
        if f.kind is not Kind.MULTI:
            continue
        values = [str(v) for v in data.get(f.name) or [] if v]
        families = [f.group_of(v) for v in values if f.group_of(v)]
        keys[f.name] = list(dict.fromkeys([*values, *families]))
    return keys


def facet_values(sheet: Sheet) -> dict[str, list[str]]:
    """Facet parameter -> the keys of this sheet's projection (what an outside index stores)."""
    values: dict[str, list[str]] = {}
    data = sheet.approved_revision.data if sheet.approved_revision is not None else {}
    keys = multi_keys(data)
    for spec in FACETS:
        if spec.through_tags:
            values[spec.param] = [tag.slug for tag in sheet.tags]
        elif spec.through_keys:
            values[spec.param] = keys.get(spec.key_field, [])
        else:
            stored = str(getattr(sheet, spec.column) or "")
            values[spec.param] = [spec.key_of(stored)] if stored else []
    return values


def facet_columns(sheets: FromClause) -> list[ColumnElement[Any]]:
    """The column facets' keys of `sheets` rows, labelled `facet_<param>`: a matched set that
    selects them is counted without reading `sheets` once per facet
    (`facet_counts_query(matched, carried=True)`)."""
    return [spec.column_of(sheets).label(f"facet_{spec.param}")
            for spec in FACETS if spec.in_column]


def facet_counts_query(matched: FromClause, carried: bool = False,
                       join: Callable[..., FromClause] | None = None,
                       only: Collection[str] | None = None) -> Select[Any]:
    """Rows (param, key, count) for every facet (or those named in `only`) over `matched` (a
    subquery or CTE with a `sheet_id` column, and the `facet_columns()` when `carried`), plus
    one row ('', '', total).
    Tags are counted per tag id, then named: one join per matched sheet, not two. `join(left,
    right, on)` joins `matched` to `sheet_tags` (SQLite's planner, which has no statistics, is
    told to keep `matched` as the outer loop)."""
    sheets = _sheets_table()
    parts: list[Any] = [
        select(literal("", String).label("param"), literal("", String).label("key"),
               func.count().label("n")).select_from(matched)]
    for spec in FACETS:
        if only is not None and spec.param not in only:
            continue
        name = literal(spec.param, String)
        if spec.through_tags:
            per_tag = (select(sheet_tags.c.tag_id, func.count().label("n"))
                       .select_from((join or _join)(matched, sheet_tags,
                                                    sheet_tags.c.sheet_id == matched.c.sheet_id))
                       .group_by(sheet_tags.c.tag_id).subquery())
            parts.append(select(name, Tag.slug, per_tag.c.n)
                         .join_from(per_tag, Tag, Tag.id == per_tag.c.tag_id))
        elif spec.through_keys:
            parts.append(
                select(name, sheet_keys.c.key, func.count())
                .select_from((join or _join)(matched, sheet_keys,
                                             sheet_keys.c.sheet_id == matched.c.sheet_id))
                .where(sheet_keys.c.field == bindparam(f"facet_{spec.param}_field",
                                                       spec.key_field, type_=String))
                .group_by(sheet_keys.c.key))
        elif carried:
            key: ColumnElement[Any] = matched.c[f"facet_{spec.param}"]
            parts.append(select(name, key, func.count()).select_from(matched)
                         .where(key != "").group_by(key))
        else:
            column = spec.column_of(sheets)
            parts.append(
                select(name, column, func.count())
                .select_from(matched.join(sheets, sheets.c.id == matched.c.sheet_id))
                .where(sheets.c[spec.column] != "")
                .group_by(column))
    return union_all(*parts)  # type: ignore[return-value]


def _join(left: FromClause, right: FromClause, on: ColumnElement[bool]) -> FromClause:
    return left.join(right, on)


def count_facets(matched: FromClause, connection: Any = None, carried: bool = False,
                 only: Collection[str] | None = None) -> tuple[int, dict[str, dict[str, int]]]:
    """Total and facet counts (param -> key -> count) of the sheet ids in `matched` (which
    selects the `facet_columns()` too when `carried`); only the facets named in `only`, when
    given (the home page's tiles need one)."""
    reader = connection if connection is not None else db.session
    counts: dict[str, dict[str, int]] = {spec.param: {} for spec in FACETS}
    total = 0
    for param, key, count in reader.execute(facet_counts_query(matched, carried, only=only)):
        if not param:
            total = int(count)
        elif key:
            counts[param][key] = int(count)
    return total, counts


def published_ids(filters: Filters | None = None) -> FromClause:
    """The ids of published sheets matching `filters`, as a subquery with `sheet_id`."""
    from kb.sheets.models import published_sheets

    stmt = published_sheets().with_only_columns(Sheet.id.label("sheet_id"))
    return apply_filters(stmt, filters or Filters()).subquery()


def facet_labels(param: str, keys: Iterable[str]) -> dict[str, str]:
    """French labels of facet keys: declared labels, tag names, or the first spelling of a
    free-text value among the sheets."""
    spec = FACETS_BY_PARAM[param]
    keys = [k for k in dict.fromkeys(keys) if k]
    if not keys:
        return {}
    if spec.through_tags:
        names = dict(db.session.execute(select(Tag.slug, Tag.name).where(Tag.slug.in_(keys))).all())
        return {key: names.get(key, key) for key in keys}
    if spec.facet.label_of is None and not spec.field.choices and spec.facet.ignore_case:
        column = _sheets_table().c[spec.column]
        spelled = dict(db.session.execute(
            select(func.lower(column), func.min(column))
            .where(func.lower(column).in_(keys)).group_by(func.lower(column))).all())
        return {key: spelled.get(key, key) for key in keys}
    return {key: spec.label(key) for key in keys}


@dataclass
class FacetEntry:
    key: str
    label: str
    count: int
    active: bool
    url: str


@dataclass
class FacetBlock:
    param: str
    title: str
    entries: list[FacetEntry]


def facet_blocks(filters: Filters, counts: Mapping[str, Mapping[str, int]],
                 link: Callable[[Filters], str], limit: int = 12,
                 labels_known: Mapping[str, Mapping[str, str]] | None = None) -> list[FacetBlock]:
    """Facet lists for a page: each value with its count and the link that toggles it.

    `link` turns filters into the page's URL (keeping the page's other parameters);
    `labels_known`: labels already read (a search's `facet_labels`), per parameter.
    """
    blocks = []
    for spec in FACETS:
        values = counts.get(spec.param, {})
        current = filters.get(spec.param)
        labels = dict((labels_known or {}).get(spec.param, {}))
        missing = [key for key in (*values, current) if key and key not in labels]
        labels.update(facet_labels(spec.param, missing))
        ranked = sorted(values.items(), key=lambda kv: (-kv[1], fold(labels.get(kv[0], kv[0]))))
        shown = ranked[:limit]
        if current and current not in dict(shown):
            shown.append((current, values.get(current, 0)))
        entries = [FacetEntry(key, labels.get(key, key), count, key == current,
                              link(filters.with_value(spec.param, None if key == current else key)))
                   for key, count in shown]
        if entries:
            blocks.append(FacetBlock(spec.param, spec.title, entries))
    return blocks


def openapi_parameters() -> list[dict[str, Any]]:
    """The filter parameters as OpenAPI query parameters (the same on every endpoint)."""
    params = []
    for spec in FACETS:
        schema: dict[str, Any] = {"type": "string", "maxLength": MAX_VALUE_LENGTH}
        description = f"{spec.title}." + (f" {spec.field.hint}" if spec.field.hint else "")
        if spec.field.choices:
            # Not an enum: the French label is accepted too (?scale=Département), as everywhere.
            schema["examples"] = list(spec.field.choice_values)
            description += (" Valeurs : " + ", ".join(spec.field.choice_values)
                            + " (ou leur libellé) ; une autre valeur : erreur 400.")
        if spec.facet.aliases:
            description += " Ancien nom accepté : " + ", ".join(spec.facet.aliases) + "."
        params.append({"name": spec.param, "in": "query", "required": False,
                       "schema": schema, "description": description})
    return params


__all__ = [
    "ACCEPTED_PARAMS", "COLUMNS", "FACETS", "FACETS_BY_PARAM", "PARAMS", "FacetBlock",
    "FacetEntry", "FacetSpec", "FilterError", "Filters", "apply_filters", "count_facets", "facet_blocks",
    "facet_counts_query", "facet_labels", "facet_values",
    "filter_clauses", "multi_keys", "openapi_parameters", "parse_filters", "projection", "published_ids",
]
