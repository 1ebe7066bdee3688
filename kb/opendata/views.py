"""Open data over HTTP: streamed exports, Atom feeds, sitemap.xml, robots.txt, the /donnees page."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    render_template,
    request,
    send_from_directory,
    stream_with_context,
    url_for,
)
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from kb.embed.http import cacheable, published_fingerprint, stateless
from kb.extensions import db
from kb.importers.exports import (
    CSV_COLUMNS,
    EXCEL_BOM,
    csv_row,
    csv_writer,
    indicator_rows,
    published_objects,
)
from kb.opendata import feeds
from kb.opendata.jsonld import sheet_jsonld
from kb.sheets.fields import FIELDS_BY_NAME, SCALES
from kb.sheets.filters import PARAMS, FilterError, apply_filters, parse_filters
from kb.sheets.models import Sheet, Tag, published_sheets, sheet_tags
from kb.sheets.queries import tag_counts
from kb.sheets.serialize import sheet_url
from kb.timeutil import isoformat
from kb.urls import base_url

bp = Blueprint("opendata", __name__)

EXPORT_MAX_AGE = 600
FEED_MAX_AGE = 600
EXPORTS = {  # name -> (mimetype, description)
    "csv": ("text/csv; charset=utf-8; header=present",
            "une ligne par fiche, une colonne par champ ; listes séparées par « | »"),
    "json": ("application/json; charset=utf-8", "un tableau d'objets fiche (ceux de l'API)"),
    "jsonl": ("application/x-ndjson; charset=utf-8", "un objet fiche par ligne (JSON Lines)"),
}


def init_app(app: Flask) -> None:
    app.jinja_env.globals["sheet_jsonld"] = sheet_jsonld


# --- exports: generators, so memory stays flat whatever the number of sheets ----------------

def csv_chunks(fmt: str = "csv") -> Iterator[str]:
    """The same bytes as `kb export PATH --format csv` (or `csv-excel`), one row at a time."""
    buffer = io.StringIO()
    writer = csv_writer(buffer, fmt)
    if fmt == "csv-excel":
        buffer.write(EXCEL_BOM)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield flush()
    for obj in published_objects():
        writer.writerow(csv_row(obj))
        yield flush()


def jsonl_chunks() -> Iterator[str]:
    """The same lines as `kb export PATH --format jsonl`."""
    for obj in published_objects():
        yield json.dumps(obj, ensure_ascii=False) + "\n"


def json_chunks() -> Iterator[str]:
    """A JSON array written element by element."""
    yield "["
    separator = "\n"
    for obj in published_objects():
        yield separator + json.dumps(obj, ensure_ascii=False)
        separator = ",\n"
    yield "\n]\n"


CHUNKS = {"csv": csv_chunks, "json": json_chunks, "jsonl": jsonl_chunks}


@bp.get("/donnees/fiches.<any(csv, json, jsonl):fmt>")
@stateless
def export(fmt: str) -> Response:
    etag, latest = published_fingerprint("export", fmt)
    response = Response(stream_with_context(CHUNKS[fmt]()), content_type=EXPORTS[fmt][0])
    response.headers["Content-Disposition"] = \
        f'{"attachment" if fmt == "csv" else "inline"}; filename="fiches-initiatives.{fmt}"'
    response.headers["Access-Control-Allow-Origin"] = "*"
    return cacheable(response, latest, EXPORT_MAX_AGE, etag=etag)


@bp.get("/donnees/indicateurs.csv")
@stateless
def export_indicators() -> Response:
    """One row per measured indicator of the published sheets (issue 26)."""
    etag, latest = published_fingerprint("export", "indicators-csv")

    def chunks() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv_writer(buffer)
        for row in indicator_rows():
            writer.writerow(row)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()

    response = Response(stream_with_context(chunks()),
                        content_type="text/csv; charset=utf-8; header=present")
    response.headers["Content-Disposition"] = 'attachment; filename="indicateurs-mesures.csv"'
    response.headers["Access-Control-Allow-Origin"] = "*"
    return cacheable(response, latest, EXPORT_MAX_AGE, etag=etag)


SPREADSHEET_FILENAME = "fiches-initiatives-tableur.csv"


@bp.get("/donnees/fiches-tableur.csv")
@stateless
def export_spreadsheet() -> Response:
    """The CSV export for a spreadsheet in French: `;` between columns, a UTF-8 BOM."""
    etag, latest = published_fingerprint("export", "csv-excel")
    response = Response(stream_with_context(csv_chunks("csv-excel")),
                        content_type="text/csv; charset=utf-8; header=present")
    response.headers["Content-Disposition"] = f'attachment; filename="{SPREADSHEET_FILENAME}"'
    response.headers["Access-Control-Allow-Origin"] = "*"
    return cacheable(response, latest, EXPORT_MAX_AGE, etag=etag)


# --- Atom feeds -----------------------------------------------------------------------------

def _feed_response(xml: str) -> Response:
    response = Response(xml, mimetype="application/atom+xml")
    response.headers["Access-Control-Allow-Origin"] = "*"
    return cacheable(response, max_age=FEED_MAX_AGE)


def _self_url(endpoint: str, **values: Any) -> str:
    return base_url() + url_for(endpoint, **values)


@bp.get("/donnees/flux/modifications.atom")
@stateless
def feed_changes() -> Response:
    return _feed_response(feeds.atom(
        "Dernières modifications", "Les modifications approuvées des fiches publiées.",
        _self_url("sheets.home"), _self_url("opendata.feed_changes"), "changes",
        feeds.changes_entries()))


@bp.get("/donnees/flux/nouvelles-fiches.atom")
@stateless
def feed_new() -> Response:
    return _feed_response(feeds.atom(
        "Nouvelles fiches", "Les dernières fiches publiées.", _self_url("sheets.index"),
        _self_url("opendata.feed_new"), "new", feeds.new_sheets_entries()))


@bp.get("/donnees/flux/fiches.atom")
@stateless
def feed_filtered() -> Response:
    """Published sheets matching the declared filters (the parameters of /fiches)."""
    try:
        filters = parse_filters(request.args)
    except FilterError as exc:
        abort(400, exc.message)
    shown = " · ".join(label for _, _, label in filters.labels())
    title = f"Fiches : {shown}" if shown else "Fiches"
    args: dict[str, Any] = filters.active()
    query = apply_filters(published_sheets(), filters)
    return _feed_response(feeds.atom(
        title, f"Les fiches publiées ({shown})." if shown else "Les fiches publiées.",
        _self_url("sheets.index", **args), _self_url("opendata.feed_filtered", **args),
        "sheets:" + "&".join(f"{k}={v}" for k, v in sorted(args.items())),
        feeds.sheet_entries(query.order_by(Sheet.updated_at.desc(), Sheet.id.desc()))))


@bp.get("/donnees/flux/mots-cles/<slug>.atom")
@stateless
def feed_tag(slug: str) -> Response:
    tag = db.session.scalar(select(Tag).where(Tag.slug == slug))
    if tag is None:
        abort(404, "Ce mot-clé n'existe pas.")
    query = published_sheets().where(Sheet.id.in_(
        select(sheet_tags.c.sheet_id).where(sheet_tags.c.tag_id == tag.id)))
    return _feed_response(feeds.atom(
        f"Mot-clé « {tag.name} »", f"Les fiches publiées avec le mot-clé « {tag.name} ».",
        _self_url("sheets.tag_page", slug=tag.slug), _self_url("opendata.feed_tag", slug=tag.slug),
        f"tag:{tag.slug}",
        feeds.sheet_entries(query.order_by(Sheet.updated_at.desc(), Sheet.id.desc()))))


@bp.get("/donnees/flux/echelles/<scale>.atom")
@stateless
def feed_scale(scale: str) -> Response:
    if scale not in FIELDS_BY_NAME["scale"].choice_values:
        abort(404, "Échelle inconnue. Valeurs possibles : "
              + ", ".join(FIELDS_BY_NAME["scale"].choice_values) + ".")
    label = FIELDS_BY_NAME["scale"].choice_label(scale)
    query = published_sheets().where(Sheet.scale == scale)
    return _feed_response(feeds.atom(
        f"Échelle : {label}", f"Les fiches publiées à l'échelle « {label} ».",
        _self_url("sheets.scale_page", scale=scale), _self_url("opendata.feed_scale", scale=scale),
        f"scale:{scale}",
        feeds.sheet_entries(query.order_by(Sheet.updated_at.desc(), Sheet.id.desc()))))


# --- for crawlers ---------------------------------------------------------------------------

def _sitemap_chunks() -> Iterator[str]:
    yield ('<?xml version="1.0" encoding="UTF-8"?>\n'
           '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n')
    query = published_sheets().order_by(Sheet.id).execution_options(yield_per=500)
    for sheet in db.session.scalars(query):
        lastmod = isoformat(max(sheet.updated_at, sheet.last_reviewed_at))
        yield f"<url><loc>{xml_escape(sheet_url(sheet))}</loc><lastmod>{lastmod}</lastmod></url>\n"
    yield "</urlset>\n"


@bp.get("/sitemap.xml")
@stateless
def sitemap() -> Response:
    etag, latest = published_fingerprint("sitemap")
    response = Response(stream_with_context(_sitemap_chunks()), mimetype="application/xml")
    return cacheable(response, latest, 3600, etag=etag)


ROBOTS = """User-agent: *
Disallow: /moderation
Disallow: /fiches/nouvelle
Disallow: /fiches/*/modifier
Disallow: /fiches/*/diff
Disallow: /fiches/*/revisions/
Disallow: /revisions/
Disallow: /mes-fiches
Disallow: /connexion
Disallow: /inscription
Disallow: /deconnexion

Sitemap: {base}/sitemap.xml
"""


@bp.get("/robots.txt")
@stateless
def robots() -> Response:
    body = ROBOTS.format(base=base_url())
    return cacheable(Response(body, mimetype="text/plain"), max_age=86400)


@bp.get("/favicon.ico")
@stateless
def favicon() -> Response:
    # Browsers ask for /favicon.ico whatever the page says; pages link the SVG (base.html).
    return send_from_directory(current_app.static_folder or "static", "favicon.ico",
                               mimetype="image/x-icon", max_age=86400)


# --- the page that lists all of the above ---------------------------------------------------

@bp.get("/donnees")
def index() -> str:
    count = db.session.scalar(select(func.count()).select_from(published_sheets().subquery()))
    return render_template("opendata/index.html", count=count or 0, exports=EXPORTS,
                           tags=tag_counts()[:40], scales=SCALES, csv_columns=CSV_COLUMNS,
                           filter_params=PARAMS)
