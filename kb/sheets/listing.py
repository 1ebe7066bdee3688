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

`render_listing()` reads the request: every declared facet not in `fixed` (kb/sheets/filters.py:
the same parameters, meaning and counts as /recherche, the API and embeds),
`?sort=` (`SORTS`) and `?page=`. It answers the page, or a redirect to the last page when
`?page=` is past it. The template shows the heading, the description, the count in words,
the active filters (each removable), facets with counts, the sort menu, the cards, the pager
and the Atom feed (a visible link and `<link rel="alternate">`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import abort, redirect, render_template, request, url_for
from sqlalchemy import func
from sqlalchemy.orm import selectinload
from sqlalchemy.sql import Select
from werkzeug.wrappers import Response

from kb.extensions import db
from kb.sheets.filters import (
    PARAMS,
    FilterError,
    Filters,
    apply_filters,
    count_facets,
    facet_blocks,
    parse_filters,
)
from kb.sheets.models import Sheet
from kb.sheets.queries import Page, parse_page

PER_PAGE = 20
FACET_LIMIT = 12

# (value, French label, ORDER BY): newest change first by default.
SORTS: tuple[tuple[str, str, tuple[Any, ...]], ...] = (
    ("updated", "Dernière mise à jour", (Sheet.updated_at.desc(), Sheet.id.desc())),
    ("created", "Dernières fiches créées", (Sheet.created_at.desc(), Sheet.id.desc())),
    ("title", "Titre (A → Z)", (func.lower(Sheet.title), Sheet.id)),
    ("freshness", "Fraîcheur (relue récemment)", (Sheet.last_reviewed_at.desc(), Sheet.id.desc())),
)
SORT_LABELS = {value: label for value, label, _ in SORTS}


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
    # The page's own filters as search parameters ({"tag": "accueil"}): what "Suivre" follows.
    follow: dict[str, str] = field(default_factory=dict)
    # Ordered first under the default sort (a thématique page: proximity to the reader).
    order_first: tuple[Any, ...] = ()
    # The reader's commune form (thématique pages): its label when one is chosen.
    place_form: bool = False
    place_label: str = ""


@dataclass
class ActiveFilter:
    title: str
    label: str
    remove_url: str


def render_listing(listing: Listing) -> str | Response:
    try:
        filters = parse_filters({k: v for k, v in request.args.items() if k not in listing.fixed})
    except FilterError as exc:
        abort(400, exc.message)
    values = filters.active()
    sort = request.args.get("sort", "")
    order = next((o for v, _, o in SORTS if v == sort), SORTS[0][2])
    sort = sort if sort in SORT_LABELS else SORTS[0][0]
    if sort == SORTS[0][0]:
        order = (*listing.order_first, *order)

    def link(**changes: Any) -> str:
        """This listing with some parameters changed (a filter change goes back to page 1)."""
        args: dict[str, Any] = {**values, "sort": None if sort == SORTS[0][0] else sort}
        args.update(changes)
        if args.get("page") == 1:
            args["page"] = None
        return url_for(listing.endpoint, **listing.endpoint_args,
                       **{k: v for k, v in args.items() if v not in (None, "")})

    def filters_link(chosen: Filters) -> str:
        return link(page=None, **{p: chosen.get(p) or None for p in PARAMS})

    query = apply_filters(listing.base, filters)
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

    active = [ActiveFilter(title, label, link(**{param: None}))
              for param, title, label in filters.labels()]
    _, counts = count_facets(query.with_only_columns(Sheet.id.label("sheet_id"))
                             .order_by(None).subquery())
    blocks = facet_blocks(filters, {p: c for p, c in counts.items() if p not in listing.fixed},
                          filters_link, FACET_LIMIT)
    return render_template(
        "sheets/listing.html", listing=listing, page=page, active=active, facets=blocks,
        sorts=[(v, label) for v, label, _ in SORTS], sort=sort, values=values, link=link,
        clear_url=link(**{p: None for p in values}) if active else None,
        action=url_for(listing.endpoint, **listing.endpoint_args))
