"""JSON API v1. Reads are public (approved content only); writes need a bearer token."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, jsonify, request, url_for
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from kb.api.cors import add_cors_headers
from kb.api.http import BodyError, body_int, error, json_body
from kb.api.openapi import openapi_document
from kb.auth.identity import api_user, token_required
from kb.auth.models import User
from kb.auth.permissions import Capability, require
from kb.availability import operations as availability
from kb.availability.models import MAX_DELAY_DAYS
from kb.availability.serialize import availability_object, sheet_objects
from kb.errors import Invalid, NotFound
from kb.extensions import csrf, db
from kb.moderation import operations as moderation  # audit log + e-mail to the author
from kb.sheets import operations
from kb.sheets.fields import FIELDS
from kb.sheets.filters import FilterError, apply_filters, parse_filters
from kb.sheets.models import Revision, Sheet, SheetState, published_sheets
from kb.sheets.queries import MAX_PER_PAGE, paginate, parse_page, tag_counts
from kb.sheets.serialize import sheet_object
from kb.sheets.visibility import get_revision_or_404, get_sheet_or_404, visible_revision
from kb.transaction import commit

bp = Blueprint("api", __name__)
csrf.exempt(bp)  # the API authenticates with bearer tokens, never with the session cookie
bp.after_request(add_cors_headers)  # reads open to any origin, writes not


def _caller() -> User:
    user = api_user()
    assert user is not None  # behind token_required / require
    return user


def _visible_sheet(slug: str) -> tuple[Sheet, Revision]:
    """The sheet and the revision this caller sees (kb.sheets.visibility), or 404; a given
    `?revision=` if the caller may read it."""
    sheet = get_sheet_or_404(slug, api_user())
    revision_id = request.args.get("revision", type=int)
    if revision_id:
        return sheet, get_revision_or_404(sheet, revision_id, api_user())
    revision = visible_revision(sheet, api_user())
    if revision is None:
        raise NotFound("fiche introuvable")
    return sheet, revision


@bp.get("/api/v1/sheets")
def list_sheets() -> Any:
    try:
        filters = parse_filters(request.args)
    except FilterError as exc:
        return error(400, "validation", exc.message, fields={exc.param: exc.message})
    query = apply_filters(published_sheets(), filters)
    per_page = parse_page(request.args.get("per_page"), 20, MAX_PER_PAGE)
    # The approved revisions of the page in one query, not one lazy load per sheet.
    page = paginate(query.order_by(Sheet.updated_at.desc(), Sheet.id.desc())
                    .options(selectinload(Sheet.approved_revision)),
                    request.args.get("page"), per_page)
    return jsonify({"items": sheet_objects(page.items),
                    "total": page.total, "page": page.page, "per_page": page.per_page})


def _sheet_object(sheet: Sheet, revision: Revision | None = None) -> dict[str, Any]:
    """The sheet object (of `revision`, when given) plus its availability (kb/availability:
    outside revisions)."""
    obj = sheet_object(sheet, revision)
    obj["availability"] = availability_object(availability.availability_of(sheet))
    return obj


@bp.get("/api/v1/data-inclusion/services")
def data_inclusion_services() -> Any:
    """The published sheets as data·inclusion services (kb/importers/datainclusion.py)."""
    from kb.importers import datainclusion

    page, per_page = _page_args()
    return jsonify({"items": datainclusion.services((page - 1) * per_page, per_page),
                    "total": datainclusion.published_count(), "page": page,
                    "per_page": per_page})


@bp.get("/api/v1/data-inclusion/structures")
def data_inclusion_structures() -> Any:
    """Their carriers as data·inclusion structures: the structures of kb/structures, then one
    per `actor_name` of the sheets without one."""
    from kb.importers import datainclusion

    page, per_page = _page_args()
    items, total = datainclusion.structures_page((page - 1) * per_page, per_page)
    return jsonify({"items": items, "total": total, "page": page, "per_page": per_page})


def _page_args() -> tuple[int, int]:
    return (parse_page(request.args.get("page")),
            parse_page(request.args.get("per_page"), 20, MAX_PER_PAGE))


@bp.get("/api/v1/sheets/<slug>")
def get_sheet(slug: str) -> Any:
    sheet, revision = _visible_sheet(slug)
    if sheet.state == SheetState.MERGED and sheet.merged_into is not None \
            and not request.args.get("revision"):
        return Response(status=301, headers={
            "Location": url_for("api.get_sheet", slug=sheet.merged_into.slug)})
    return jsonify(_sheet_object(sheet, revision))


@bp.put("/api/v1/sheets/<slug>/availability")
@token_required
def put_availability(slug: str) -> Any:
    """Its contributors, structure members and moderators; no review, journaled."""
    sheet = get_sheet_or_404(slug, api_user())
    body = json_body()
    status, delay, until = body.get("status"), body.get("entry_delay"), body.get("until")
    if not isinstance(status, str):
        raise Invalid("« status » (texte) est obligatoire : places, attente, complet ou ferme.",
                      fields={"status": "obligatoire"})
    if delay is not None and (not isinstance(delay, int) or isinstance(delay, bool)
                              or not 0 <= delay <= MAX_DELAY_DAYS):
        raise Invalid(f"« entry_delay » : un nombre entier de jours entre 0 et {MAX_DELAY_DAYS}.",
                      fields={"entry_delay": "invalide"})
    if until is not None and not isinstance(until, str):
        raise Invalid("« until » : une date au format AAAA-MM-JJ.", fields={"until": "invalide"})
    row = availability.set_availability(sheet, _caller(), status, delay,
                                        availability.parse_date(until), via="API")
    commit()
    return jsonify({"slug": sheet.slug, "availability": availability_object(row)})


@bp.post("/api/v1/sheets")
@token_required
def create_sheet() -> Any:
    body = json_body()
    comment = str(body.pop("comment", "") or "Création")
    revision = operations.create_sheet(body, _caller(), comment)
    commit()
    status = 201 if revision.status == "approved" else 202
    return jsonify({"slug": revision.sheet.slug, "revision": revision.id,
                    "status": revision.status,
                    "url": url_for("api.get_sheet", slug=revision.sheet.slug)}), status


@bp.route("/api/v1/sheets/<slug>", methods=["PATCH", "PUT"])
@token_required
def update_sheet(slug: str) -> Any:
    """PATCH changes the fields sent; PUT replaces the sheet: a field left out is emptied."""
    sheet = get_sheet_or_404(slug, api_user())
    body = json_body()
    if request.method == "PUT":
        body = {**{f.name: f.empty() for f in FIELDS}, **body}
    try:
        base = body_int(body, "base_revision", "l'identifiant de la révision que vous avez "
                                               "modifiée")
    except BodyError as exc:
        return exc.response()
    body.pop("base_revision")
    comment = str(body.pop("comment", "") or "")
    try:
        revision = operations.edit_sheet(sheet, body, _caller(), base, comment)
    except operations.EditConflict as conflict:
        db.session.rollback()
        # `theirs` is the caller's own head (the approved text or their own proposal).
        return error(409, "conflict", conflict.message,
                     fields=conflict.fields, current_revision=conflict.theirs.id,
                     current={f: conflict.theirs.data.get(f) for f in conflict.fields},
                     yours={f: conflict.mine.get(f) for f in conflict.fields})
    commit()
    return jsonify({"slug": sheet.slug, "revision": revision.id, "status": revision.status}), \
        200 if revision.status == "approved" else 202


@bp.post("/api/v1/revisions/<int:revision_id>/<any(approve, reject):decision>")
@require(Capability.REVIEW)
def review_revision(revision_id: int, decision: str) -> Any:
    """Approve (with `choices` per overlapping field when the proposal is stale: 409 lists
    them) or reject (with a `reason`)."""
    revision = db.session.get(Revision, revision_id)
    if revision is None:
        raise NotFound("révision introuvable")
    body = request.get_json(silent=True) or {}
    body = body if isinstance(body, dict) else {}
    reason, choices = body.get("reason", ""), body.get("choices") or {}
    if not isinstance(reason, str):
        return error(400, "validation", "« reason » doit être un texte.")
    if not isinstance(choices, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in choices.items()):
        return error(400, "validation", "« choices » associe un champ à « proposal » ou "
                     "« published ».")
    user = _caller()
    published = revision
    if decision == "approve":
        published = moderation.approve(revision, user, choices)
    else:
        moderation.reject(revision, user, reason,
                          public=body.get("public_reason") is True)
    commit()
    return jsonify({"revision": revision.id, "status": revision.status,
                    "published_revision": published.id if decision == "approve" else None,
                    "sheet": revision.sheet.slug})


@bp.get("/api/v1/tags")
def list_tags() -> Any:
    return jsonify([{"name": t.name, "slug": t.slug, "count": n} for t, n in tag_counts()])


@bp.get("/api/openapi.json")
def openapi() -> Any:
    return jsonify(openapi_document())


def init_app(app: Flask) -> None:
    from kb.api.query import check_api_query

    app.before_request(check_api_query)  # the API's parameters, as its document declares them
