"""Search pages: /recherche (HTML) and /api/v1/search (JSON). Thin: parse, call the service, render."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, g, jsonify, render_template, request, url_for

from kb.extensions import csrf
from kb.search.backend import FACETS
from kb.search.service import index_changed, search_sheets
from kb.sheets.fields import FIELDS_BY_NAME
from kb.sheets.queries import parse_page
from kb.transaction import sheets_changed

bp = Blueprint("search", __name__)
csrf.exempt(bp)

PER_PAGE = 20
FACET_LIMIT = 12
FILTER_PARAM = {"scale": "scale", "actor_type": "actor_type", "tags": "tag",
                "department": "department", "city": "city"}
SORT_LABELS = (("relevance", "Pertinence"), ("updated", "Dernière mise à jour"),
               ("freshness", "Fraîcheur (relue récemment)"))


def _request_filters() -> dict[str, str]:
    return {param: request.args.get(param, "")[:200] for param in FILTER_PARAM.values()}


def _search(per_page: int) -> dict[str, Any]:
    return search_sheets(request.args.get("q", ""), _request_filters(),
                         request.args.get("sort", "relevance"),
                         parse_page(request.args.get("page"), maximum=500), per_page)


def _link(**changes: str | None) -> str:
    """This search with some parameters changed (a new filter goes back to page 1)."""
    args: dict[str, Any] = {k: v for k, v in request.args.items() if k != "page"}
    for key, value in changes.items():
        if value:
            args[key] = value
        else:
            args.pop(key, None)
    # One route build per page, not one per facet value (url_for costs ~0.1 ms each).
    if "kb_search_path" not in g:
        g.kb_search_path = url_for("search.results")
    return f"{g.kb_search_path}?{urlencode(args)}" if args else g.kb_search_path


def _facet_blocks(result: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = []
    for name in FACETS:
        param = FILTER_PARAM[name]
        current = result["filters"].get("tag" if name == "tags" else name, "")
        entries = []
        for value, count in list(result["facets"][name].items())[:FACET_LIMIT]:
            active = value == current
            entries.append({"label": result["facet_labels"][name].get(value, value),
                            "count": count, "active": active,
                            "url": _link(**{param: None if active else value})})
        if entries:
            blocks.append({"name": name, "title": FIELDS_BY_NAME[name].label, "entries": entries,
                           "clear": _link(**{param: None}) if current else None})
    return blocks


@bp.get("/recherche")
def results() -> str:
    result = _search(PER_PAGE)
    return render_template("search/results.html", result=result, facets=_facet_blocks(result),
                           sorts=SORT_LABELS, link=_link,
                           filter_params=FILTER_PARAM)


@bp.get("/api/v1/search")
def api_search() -> Any:
    result = _search(parse_page(request.args.get("per_page"), PER_PAGE, 100))
    if result["unavailable"]:
        return jsonify({"error": "search_unavailable", "message": result["message"]}), 503
    return jsonify({key: result[key] for key in (
        "items", "total", "facets", "suggestion", "page", "per_page", "message")})


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
