"""Widgets for partner sites (sheet card, live list), widget.js, the configurator and oEmbed."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup
from werkzeug.wrappers import Response

from kb import cache
from kb.embed import http
from kb.embed.listing import (
    DEFAULT_LIMIT,
    LIST_KEYS,
    MAX_LIMIT,
    ListParams,
    list_sheets,
    parse_params,
)
from kb.extensions import db
from kb.params import db_id
from kb.sheets.filters import FACETS, count_facets, facet_labels, published_ids
from kb.sheets.models import Sheet, SheetState, published_sheets
from kb.sheets.visibility import PUBLISHED, find_sheet
from kb.territories.register import register
from kb.text import fold
from kb.urls import base_url

bp = Blueprint("embed", __name__)

PROVIDER_NAME = "Fiches initiatives"
OEMBED_WIDTH, OEMBED_HEIGHT = 600, 360
SNIPPET_HEIGHT = {"sheet": 360, "list": 480}


def init_app(app: Flask) -> None:
    http.init_app(app)
    app.jinja_env.globals["oembed_link"] = oembed_link


def _published(slug: str) -> Sheet | None:
    # Embeds are stateless: they show published sheets only, whoever asks.
    return find_sheet(slug, PUBLISHED)


def _frame_page(body: str, status: int = 200, **cache: Any) -> Response:
    response = current_app.make_response((body, status))
    http.allow_framing(response)
    if status == 200:
        http.cacheable(response, **cache)
    return response


def _frame_error(message: str, status: int) -> Response:
    return _frame_page(render_template("embed/missing.html", message=message), status)


@bp.get("/embed/sheets/<slug>")
@http.stateless
def sheet(slug: str) -> Response:
    found = _published(slug)
    if found is None:
        merged = find_sheet(slug, None)  # what an anonymous reader may open
        target = merged.merged_into \
            if merged is not None and merged.state == SheetState.MERGED else None
        if target is not None and target.is_published:
            # Partners' old snippets keep working after a merge.
            return redirect(url_for("embed.sheet", slug=target.slug), 301)
        return _frame_error("Cette fiche n'existe pas ou n'est plus publiée.", 404)
    revision = found.approved_revision
    assert revision is not None
    body = render_template("embed/sheet.html", sheet=found, data=revision.data)
    return _frame_page(body, last_modified=max(found.updated_at, found.last_reviewed_at))


@bp.get("/embed/list")
@http.stateless
def sheet_list() -> Response:
    try:
        params = parse_params(request.args)
    except ValueError as exc:  # shown inside the partner's frame, in French
        return _frame_error(str(exc), 400)
    tag = params.filters.active().get("tag")
    if tag and "," not in tag and not params.q:
        cache.narrow_to_tag(tag)  # as the tag page
    sheets, total = list_sheets(params)
    body = render_template("embed/list.html", sheets=sheets, total=total, params=params,
                           more_url=_more_url(params))
    latest = max((max(s.updated_at, s.last_reviewed_at) for s in sheets), default=None)
    return _frame_page(body, last_modified=latest)


def _more_url(params: ListParams) -> str:
    """The site's full listing for the same filters (search page once installed)."""
    args: dict[str, Any] = params.filters.active()
    if params.q and "search.results" in current_app.view_functions:
        return url_for("search.results", q=params.q, **args)
    return url_for("sheets.index", **args)


@bp.get("/widget.js")
@http.stateless
def widget_js() -> Response:
    path = Path(current_app.static_folder or "static") / "js" / "widget.js"
    # The list parameters a widget forwards are the declared ones.
    body = _LIST_KEYS_SLOT.sub(json.dumps(list(LIST_KEYS)), path.read_text(encoding="utf-8"),
                               count=1)
    response = Response(body, mimetype="text/javascript")
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    response.set_etag(hashlib.sha256(body.encode()).hexdigest()[:32])
    response.last_modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response.make_conditional(request)


_LIST_KEYS_SLOT = re.compile(r"/\*kb:list-keys\*/.*?/\*kb:end\*/")


# --- configurator ---------------------------------------------------------------------------

def snippets(kind: str, target: str, label: str) -> dict[str, str]:
    """The two snippets a partner copies: widget.js form and plain iframe form.

    `target` is a slug (kind "sheet") or the list's query string (kind "list").
    """
    base = base_url()
    if kind == "sheet":
        frame_src = f"{base}/embed/sheets/{target}"
        page_url = f"{base}/fiches/{target}"
        attribute = Markup(' data-sheet="{}"').format(target)
        link_text = f"{label} — {PROVIDER_NAME}"
        title = f"Fiche initiative : {label}"
    else:
        frame_src = f"{base}/embed/list" + (f"?{target}" if target else "")
        page_url = f"{base}/fiches" + (f"?{_without_limit(target)}" if _without_limit(target)
                                       else "")
        attribute = Markup(' data-list="{}"').format(target)
        link_text = f"{PROVIDER_NAME} : {label}"
        title = f"{PROVIDER_NAME} : {label}"
    script = Markup(
        '<div class="kb-widget"{attr}><a href="{page}">{text}</a></div>\n'
        '<script src="{base}/widget.js" async></script>'
    ).format(attr=attribute, page=page_url, text=link_text, base=base)
    iframe = Markup(
        '<iframe src="{src}" title="{title}" width="100%" height="{height}" '
        'style="border:0;max-width:640px" loading="lazy"></iframe>'
    ).format(src=frame_src, title=title, height=SNIPPET_HEIGHT[kind])
    return {"script": str(script), "iframe": str(iframe), "frame_src": frame_src,
            "height": str(SNIPPET_HEIGHT[kind]),
            "target": target, "page_url": page_url}


def _without_limit(query_string: str) -> str:
    return "&".join(p for p in query_string.split("&") if p and not p.startswith("limit="))


@bp.get("/embed")
def configurator() -> str:
    kind = "list" if request.args.get("mode") == "list" else "sheet"
    sheets = db.session.execute(
        published_sheets().with_only_columns(Sheet.slug, Sheet.title)
        .order_by(Sheet.title).limit(2000)).all()
    chosen = request.args.get("sheet", "").strip()
    params = ListParams()
    if kind == "list":
        try:
            params = parse_params(request.args)
        except ValueError as exc:
            abort(400, str(exc))
        target = urlencode(params.query_args())
        label = _list_label(params)
    else:
        found = _published(chosen) if chosen else None
        if found is None and sheets:
            chosen = sheets[0].slug
            found = _published(chosen)
        target, label = (found.slug, found.title) if found else ("", "")
    return render_template(
        "embed/configurator.html", kind=kind, sheets=sheets, chosen=chosen, params=params,
        facets=_facet_options(params), list_keys=LIST_KEYS,
        snippet=snippets(kind, target, label) if target or kind == "list" else None,
        default_limit=DEFAULT_LIMIT, max_limit=MAX_LIMIT)


def _facet_options(params: ListParams) -> list[dict[str, Any]]:
    """One select per declared facet: its values among published sheets, with counts."""
    _, counts = count_facets(published_ids())
    blocks = []
    for spec in FACETS:
        values = dict(counts[spec.param])
        for value in spec.field.choice_values:  # a closed list shows every value
            values.setdefault(value, 0)
        for value in _every_territory(spec.param):  # a partner's territory may have no sheet yet
            values.setdefault(value, 0)
        current = params.filters.get(spec.param)
        if current:
            values.setdefault(current, 0)
        labels = facet_labels(spec.param, values)
        options = [(key, labels.get(key, key), n) for key, n in values.items()]
        if spec.options_known:  # the declaration's order
            order = {value: n for n, value in enumerate(spec.field.choice_values)}
            options.sort(key=lambda o: order.get(o[0], len(order)))
        else:
            options.sort(key=lambda o: fold(o[1]))
        blocks.append({"param": spec.param, "title": spec.title, "options": options,
                       "current": current})
    return blocks


def _every_territory(param: str) -> list[str]:
    """Every département and région of the register (those of /territoires), with or without
    sheets: a partner embeds its own territory's list before its first sheet is published."""
    reg = register()
    if param == "department":
        return list(reg.departments)
    if param == "region":
        return [code for code in reg.regions if len(code) == 2]
    return []


def _list_label(params: ListParams) -> str:
    parts = [f"« {params.q} »"] if params.q else []
    parts += [label for _, _, label in params.filters.labels()]
    return ", ".join(parts) or "dernières fiches"


# --- oEmbed ---------------------------------------------------------------------------------

_SHEET_PATH = re.compile(r"^/(?:fiches|embed/sheets)/([^/]+)/?$")


def _our_origins() -> set[str]:
    origins = {request.host_url.rstrip("/")}
    base = urlsplit(base_url())
    origins.add(f"{base.scheme}://{base.netloc}")
    return {o.lower() for o in origins}


def _dimension(name: str) -> int | None:
    value = request.args.get(name, "").strip()
    if not value:
        return None
    try:
        return db_id(value)  # ASCII digits only: "²".isdigit() is true, int("²") fails
    except ValueError:
        abort(400, f"« {name} » doit être un nombre entier positif de pixels.")


@bp.get("/oembed")
@http.stateless
def oembed() -> Response:
    fmt = request.args.get("format", "json").strip().lower() or "json"
    if fmt != "json":
        abort(501, "Seul le format json est proposé (format=json).")
    url = request.args.get("url", "").strip()
    if not url:
        abort(400, "Paramètre « url » manquant : l'adresse d'une fiche de ce site.")
    parts = urlsplit(url)
    match = _SHEET_PATH.match(parts.path)
    if f"{parts.scheme}://{parts.netloc}".lower() not in _our_origins() or match is None:
        abort(400, "Cette adresse n'est pas celle d'une fiche de ce site.")
    found = _published(match.group(1))
    if found is None:
        abort(404, "Cette fiche n'existe pas ou n'est plus publiée.")
    max_width, max_height = _dimension("maxwidth"), _dimension("maxheight")
    # The spec: never larger than maxwidth/maxheight.
    width = min(OEMBED_WIDTH, max_width or OEMBED_WIDTH)
    height = min(OEMBED_HEIGHT, max_height or OEMBED_HEIGHT)
    base = base_url()
    data = found.approved_revision.data if found.approved_revision else {}
    html = Markup(
        '<iframe src="{src}" title="{title}" width="{w}" height="{h}" style="border:0" '
        'loading="lazy"></iframe>'
    ).format(src=f"{base}/embed/sheets/{found.slug}", title=f"Fiche initiative : {found.title}",
             w=width, h=height)
    payload: dict[str, Any] = {
        "version": "1.0", "type": "rich", "html": str(html), "width": width, "height": height,
        "title": found.title, "provider_name": PROVIDER_NAME, "provider_url": base + "/",
        "cache_age": 3600,
    }
    if data.get("actor_name"):
        payload["author_name"] = data["actor_name"]
    response = jsonify(payload)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return http.cacheable(response, last_modified=found.updated_at, max_age=3600)


def oembed_link(page_url: str) -> str:
    """The discovery URL of a sheet page, for its <link rel="alternate">."""
    base = base_url()
    return f"{base}/oembed?" + urlencode({"url": page_url, "format": "json"})

