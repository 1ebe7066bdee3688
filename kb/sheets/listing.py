"""One filtered listing of published sheets, for every page that lists them.

`/fiches`, the tag pages (`/tags/<slug>`) and the scale pages (`/echelle/<scale>`) are one view
helper and one template (`templates/sheets/listing.html`); territory pages can be too.

Interface::

    from kb.sheets.listing import Listing, render_listing

    return render_listing(Listing(
        heading="Mot-clé : accueil",                       # the page's <h1> and <title>
        description="Les fiches publiées avec le mot-clé « accueil ».",
        base=published_sheets().where(...),               # what the page is about
        endpoint="sheets.tag_page", endpoint_args={"slug": "accueil"},
        fixed=frozenset({"tag"}),                          # filters the page itself sets
        feed_url=url_for("opendata.feed_tag", slug="accueil"),
        feed_title="Mot-clé « accueil »",
    ))

`render_listing()` reads the request: every filter of `listing_filters()` not in `fixed`
(`?scale=`, `?actor_type=`, `?tag=`, `?department=`, `?city=`: the names /recherche uses),
`?sort=` (`SORTS`) and `?page=`. It answers the page, or a redirect to the last page when
`?page=` is past it. The template shows the heading, the description, the count in words,
the active filters (each removable), facets with counts, the sort menu, the cards, the pager
and the Atom feed (a visible link and `<link rel="alternate">`).

The filters come from one function, `listing_filters()`, so that they can be declared
elsewhere (the field declaration) without touching the pages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from sqlalchemy.sql import Select
from werkzeug.wrappers import Response

from kb.extensions import db
from kb.sheets.fields import FIELDS_BY_NAME
from kb.sheets.models import Sheet, Tag, sheet_tags
from kb.sheets.queries import Page, parse_page
from kb.sheets.territories import DEPARTMENTS, department_code, department_label
from kb.text import fold

PER_PAGE = 20
FACET_LIMIT = 12
MAX_VALUE = 200  # a filter value longer than this is cut (no field holds more)

# (value, French label, ORDER BY): newest change first by default.
SORTS: tuple[tuple[str, str, tuple[Any, ...]], ...] = (
    ("updated", "Dernière mise à jour", (Sheet.updated_at.desc(), Sheet.id.desc())),
    ("created", "Dernières fiches créées", (Sheet.created_at.desc(), Sheet.id.desc())),
    ("title", "Titre (A → Z)", (func.lower(Sheet.title), Sheet.id)),
    ("freshness", "Fraîcheur (relue récemment)", (Sheet.last_reviewed_at.desc(), Sheet.id.desc())),
)
SORT_LABELS = {value: label for value, label, _ in SORTS}


@dataclass(frozen=True)
class FacetEntry:
    value: str
    label: str
    count: int


@dataclass(frozen=True)
class ListingFilter:
    """One filter of a listing.

    `apply(query, value)` narrows a query on Sheet; `facets(query)` counts the values among the
    sheets that query selects, most frequent first; `label(value)` is what a person reads for
    a value (the value itself when it is not known).
    """

    param: str
    title: str
    apply: Callable[[Select[Any], str], Select[Any]]
    facets: Callable[[Select[Any]], list[FacetEntry]]
    label: Callable[[str], str]


def _ranked(counts: Mapping[str, int], labels: Mapping[str, str]) -> list[FacetEntry]:
    entries = [FacetEntry(v, labels.get(v, v), n) for v, n in counts.items() if v]
    return sorted(entries, key=lambda e: (-e.count, fold(e.label)))


def _column_counts(column: Any, query: Select[Any]) -> list[tuple[str, int]]:
    # The listing's own WHERE, grouped: one pass over the (indexed) column, no id subquery.
    rows = db.session.execute(query.with_only_columns(column, func.count())
                              .group_by(column).order_by(None))
    return [(str(value or ""), int(n)) for value, n in rows]


def _choice_filter(name: str) -> ListingFilter:
    f = FIELDS_BY_NAME[name]
    column = getattr(Sheet, name)
    return ListingFilter(
        param=name, title=f.label,
        apply=lambda query, value: query.where(column == value),
        facets=lambda query: _ranked(dict(_column_counts(column, query)), dict(f.choices)),
        label=f.choice_label,
    )


def _city_facets(query: Select[Any]) -> list[FacetEntry]:
    counts: dict[str, int] = {}
    spelling: dict[str, str] = {}  # "brest" and "Brest" are one city, shown as first seen
    for value, n in _column_counts(Sheet.city, query):
        key = spelling.setdefault(value.strip().lower(), value.strip())
        counts[key] = counts.get(key, 0) + n
    return _ranked(counts, {})


def _department_key(value: str) -> str:
    return department_code(value) or value.strip()


def _department_spellings(value: str) -> list[str]:
    """Sheets hold a code ("29") or a name ("Finistère"): a filter accepts either."""
    code = department_code(value)
    names = {value.strip().lower()} | ({code.lower(), DEPARTMENTS[code].lower()} if code else set())
    return sorted(names)


def _department_facets(query: Select[Any]) -> list[FacetEntry]:
    counts: dict[str, int] = {}
    for value, n in _column_counts(Sheet.department, query):
        key = _department_key(value)
        counts[key] = counts.get(key, 0) + n
    return _ranked(counts, {key: department_label(key) for key in counts})


def _tag_apply(query: Select[Any], value: str) -> Select[Any]:
    return query.where(Sheet.id.in_(
        select(sheet_tags.c.sheet_id).join(Tag, Tag.id == sheet_tags.c.tag_id)
        .where(Tag.slug == value)))


def _tag_facets(query: Select[Any]) -> list[FacetEntry]:
    # Count by tag id first (integers), then read the names of the few most used.
    counts: dict[int, int] = {tag_id: n for tag_id, n in db.session.execute(
        query.with_only_columns(sheet_tags.c.tag_id, func.count())
        .join_from(Sheet, sheet_tags, sheet_tags.c.sheet_id == Sheet.id)
        .group_by(sheet_tags.c.tag_id).order_by(func.count().desc()).limit(FACET_LIMIT * 2))}
    tags = db.session.execute(select(Tag.id, Tag.slug, Tag.name).where(Tag.id.in_(counts)))
    entries = [FacetEntry(slug, name, counts[tag_id]) for tag_id, slug, name in tags]
    return sorted(entries, key=lambda e: (-e.count, fold(e.label)))[:FACET_LIMIT]


def _tag_label(value: str) -> str:
    return db.session.scalar(select(Tag.name).where(Tag.slug == value)) or value


def listing_filters() -> tuple[ListingFilter, ...]:
    """The filters every listing offers, in the order shown. The one place that knows them."""
    return (
        _choice_filter("scale"),
        _choice_filter("actor_type"),
        ListingFilter("tag", FIELDS_BY_NAME["tags"].label, _tag_apply, _tag_facets, _tag_label),
        ListingFilter("department", FIELDS_BY_NAME["department"].label,
                      lambda q, v: q.where(func.lower(Sheet.department)
                                           .in_(_department_spellings(v))),
                      _department_facets, lambda v: department_label(v) or v),
        ListingFilter("city", FIELDS_BY_NAME["city"].label,
                      lambda q, v: q.where(func.lower(Sheet.city) == v.strip().lower()),
                      _city_facets, lambda v: v),
    )


@dataclass
class Listing:
    """What a listing page is about; see the module docstring."""

    heading: str
    description: str
    base: Select[Any]
    endpoint: str
    endpoint_args: dict[str, Any] = field(default_factory=dict)
    fixed: frozenset[str] = frozenset()
    feed_url: str | None = None
    feed_title: str = ""
    per_page: int = PER_PAGE
    # Where "remove this page's own filter" leads (a tag page: every sheet); None: nowhere.
    all_url: str | None = None


@dataclass
class ActiveFilter:
    title: str
    label: str
    remove_url: str


@dataclass
class FacetBlock:
    param: str
    title: str
    entries: list[dict[str, Any]]
    clear_url: str | None


def _request_values(filters: tuple[ListingFilter, ...], fixed: frozenset[str]) -> dict[str, str]:
    values = {}
    for f in filters:
        if f.param in fixed:
            continue
        value = " ".join(request.args.get(f.param, "").split())[:MAX_VALUE]
        if value:
            values[f.param] = value
    return values


def render_listing(listing: Listing) -> str | Response:
    filters = listing_filters()
    values = _request_values(filters, listing.fixed)
    sort = request.args.get("sort", "")
    order = next((o for v, _, o in SORTS if v == sort), SORTS[0][2])
    sort = sort if sort in SORT_LABELS else SORTS[0][0]

    def link(**changes: Any) -> str:
        """This listing with some parameters changed (a filter change goes back to page 1)."""
        args: dict[str, Any] = {**values, "sort": None if sort == SORTS[0][0] else sort}
        args.update(changes)
        if args.get("page") == 1:
            args["page"] = None
        return url_for(listing.endpoint, **listing.endpoint_args,
                       **{k: v for k, v in args.items() if v not in (None, "")})

    query = listing.base
    for f in filters:
        if f.param in values:
            query = f.apply(query, values[f.param])
    total = db.session.scalar(query.with_only_columns(func.count()).order_by(None)) or 0
    pages = max(1, -(-total // listing.per_page))
    number = parse_page(request.args.get("page"))
    if number > pages:
        # /fiches?page=999 must not say "15 fiches" then "Aucune fiche": go to the last page.
        return redirect(link(page=pages))
    items = db.session.scalars(
        query.options(selectinload(Sheet.approved_revision), selectinload(Sheet.tags))
        .order_by(*order).limit(listing.per_page).offset((number - 1) * listing.per_page)
    ).all()
    page = Page(list(items), total, number, listing.per_page)

    active = [ActiveFilter(f.title, f.label(values[f.param]), link(**{f.param: None}))
              for f in filters if f.param in values]
    blocks = []
    for f in filters:
        if f.param in listing.fixed:
            continue
        entries = [{"label": e.label, "count": e.count, "active": values.get(f.param) == e.value,
                    "url": link(**{f.param: None if values.get(f.param) == e.value else e.value})}
                   for e in f.facets(query)[:FACET_LIMIT]]
        if entries:
            blocks.append(FacetBlock(f.param, f.title, entries,
                                     link(**{f.param: None}) if f.param in values else None))
    return render_template(
        "sheets/listing.html", listing=listing, page=page, active=active, facets=blocks,
        sorts=[(v, label) for v, label, _ in SORTS], sort=sort, values=values, link=link,
        clear_url=link(**{f.param: None for f in filters}) if active else None,
        action=url_for(listing.endpoint, **listing.endpoint_args))
