"""Search pages: /recherche (HTML) and /api/v1/search (JSON). Thin: parse, call the service, render."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, abort, jsonify, redirect, render_template, request, url_for
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from kb import cache
from kb.extensions import csrf, db
from kb.params import query_url
from kb.search.service import index_changed, search_sheets, words_members
from kb.sheets.filters import ACCEPTED_PARAMS, FilterError, Filters, facet_blocks, parse_filters
from kb.sheets.models import Sheet, published_sheets
from kb.sheets.queries import parse_page, thematiques_named
from kb.transaction import sheets_changed

bp = Blueprint("search", __name__)
csrf.exempt(bp)

PER_PAGE = 20
FACET_LIMIT = 12
SEARCH_PARAMS = frozenset({"q", "sort", "per_page", *ACCEPTED_PARAMS})
SORT_LABELS = (("relevance", "Pertinence"), ("updated", "Dernière mise à jour"),
               ("freshness", "Fraîcheur (relue récemment)"))


def _search(filters: Filters, per_page: int) -> dict[str, Any]:
    return search_sheets(request.args.get("q", ""), filters,
                         request.args.get("sort", "relevance"),
                         parse_page(request.args.get("page"), maximum=500), per_page)


def _link(**changes: str | None) -> str:
    """This search with some parameters changed (a new filter goes back to page 1)."""
    args: dict[str, Any] = {k: v for k, v in request.args.items()
                            if k in SEARCH_PARAMS and k != "page"}
    for key, value in changes.items():
        if value:
            args[key] = value
        else:
            args.pop(key, None)
    # Parameters as data, never as url_for options (`_method`, `_external`…: kb/params.py).
    return query_url("search.results", args)


def _filters_linker() -> Callable[[Filters], str]:
    """Links to this search with other filters (older parameter names dropped), back to page
    1: the page's URL is built once, not once per facet value."""
    kept = [(k, v) for k, v in request.args.items() if k not in ("page", *ACCEPTED_PARAMS)]
    base = query_url("search.results", {})

    def link(filters: Filters) -> str:
        pairs = [(k, v) for k, v in (*kept, *filters.active().items()) if v]
        return base + ("?" + urlencode(pairs) if pairs else "")

    return link


def _cards(result: dict[str, Any]) -> dict[str, Sheet]:
    """The hits' sheets, for the one result card (place, scale, date) every listing shows."""
    slugs = [item["slug"] for item in result["items"]]
    if not slugs:
        return {}
    # The summary (in the approved revision's data) only where no extract replaces it: a
    # revision's data is the whole text, its decoding a third of the cards' cost.
    summaries = [selectinload(Sheet.approved_revision)] \
        if any(not item["snippet"] for item in result["items"]) else []
    found = db.session.scalars(published_sheets().where(Sheet.slug.in_(slugs))
                               .options(selectinload(Sheet.tags), *summaries)).all()
    return {sheet.slug: sheet for sheet in found}


def _offer_url(offer: dict[str, Any]) -> str:
    """The same search elsewhere (or with fewer words), ranked by relevance."""
    return query_url("search.results", {"q": offer["q"], **offer["filters"]})


def _members() -> set[int] | None:
    """The sheets with a word of the query, read before the search reads anything: a change
    committed between the two is then either in the search's answer or after these."""
    return words_members(request.args.get("q", "")) if cache.storing() else None


def _narrow(result: dict[str, Any], members: set[int] | None) -> None:
    """A search that depends only on the sheets with its words: the cache may keep it across
    publishes of other sheets."""
    if result.get("narrowable") and members is not None:
        cache.narrow_to(members, ("words", request.args.get("q", "")))


@bp.get("/recherche")
def results() -> str | Response:
    try:
        filters = parse_filters(request.args)
    except FilterError as exc:
        abort(400, exc.message)
    members = _members()
    result = _search(filters, PER_PAGE)
    if result["total"] and result["page"] > result["pages"]:
        # ?page=999 must not say "15 fiches" then "Aucune fiche": go to the last page.
        last = result["pages"]
        return redirect(_link(page=str(last) if last > 1 else None))
    _narrow(result, members)
    return render_template("search/results.html", result=result, sheets=_cards(result),
                           elsewhere=[(offer, _offer_url(offer)) for offer in result["elsewhere"]],
                           facets=facet_blocks(filters, result["facets"], _filters_linker(),
                                               FACET_LIMIT, result["facet_labels"]),
                           sorts=SORT_LABELS, link=_link, filters=filters,
                           facets_estimated=result["total_is_estimate"],
                           named=thematiques_named(request.args.get("q", "")))


@bp.get("/api/v1/search")
def api_search() -> Any:
    try:
        filters = parse_filters(request.args)
    except FilterError as exc:
        return jsonify({"error": "validation", "message": exc.message,
                        "fields": {exc.param: exc.message}}), 400
    members = _members()
    result = _search(filters, parse_page(request.args.get("per_page"), PER_PAGE, 100))
    if result["unavailable"]:
        return jsonify({"error": "search_unavailable", "message": result["message"]}), 503
    _narrow(result, members)
    body = {key: result[key] for key in (
        "items", "total", "facets", "facet_labels", "suggestion", "page", "per_page", "message",
        "unmatched_terms", "total_is_estimate")}
    body["elsewhere"] = [{**offer, "url": url_for("search.results", _external=True, q=offer["q"],
                                                   **offer["filters"])}
                         for offer in result["elsewhere"]]
    # The thématiques the query names, with their pages (added beside the older keys).
    body["thematiques"] = [
        {"value": value, "label": label, "url": url_for("sheets.thematique", value=value,
                                                        _external=True)}
        for value, label in thematiques_named(request.args.get("q", ""))]
    return jsonify(body)


def _on_sheets_changed(app: Flask, sheet_ids: list[int]) -> None:
    index_changed(app, sheet_ids)


def init_app(app: Flask) -> None:
    backend = app.config.get("KB_SEARCH_BACKEND")
    if backend not in ("sqlite", "whoosh", "postgres"):
        raise RuntimeError("KB_SEARCH_BACKEND doit valoir « sqlite », « whoosh » ou « postgres ».")
    database = app.config["SQLALCHEMY_DATABASE_URI"]
    if backend == "postgres" and not database.startswith("postgresql"):
        raise RuntimeError("KB_SEARCH_BACKEND=postgres demande une base PostgreSQL.")
    if backend == "sqlite":
        if not database.startswith("sqlite"):
            raise RuntimeError("KB_SEARCH_BACKEND=sqlite demande une base SQLite.")
        from kb.search.sqlite_backend import install

        install()  # the index is written in the sheets' own transaction
    # After the commit, never before: the database is the truth, the index follows.
    sheets_changed.connect(_on_sheets_changed, sender=app)
