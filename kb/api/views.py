"""JSON API v1. Reads are public (approved content only); writes need a bearer token."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, abort, g, jsonify, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from kb.api.cors import add_cors_headers
from kb.api.openapi import openapi_document
from kb.api.serialize import sheet_object
from kb.auth.models import User
from kb.auth.operations import user_for_token
from kb.auth.permissions import can_see_revision
from kb.extensions import csrf, db
from kb.sheets import operations
from kb.sheets.fields import ValidationError
from kb.sheets.models import Revision, Sheet, SheetState, Tag, published_sheets, sheet_tags
from kb.sheets.queries import MAX_PER_PAGE, paginate, parse_page, tag_counts
from kb.transaction import commit

bp = Blueprint("api", __name__)
csrf.exempt(bp)  # the API authenticates with bearer tokens, never with the session cookie
bp.after_request(add_cors_headers)  # reads open to any origin, writes not

LIST_FILTERS = ("scale", "city", "department", "actor_type")


def _error(status: int, error: str, message: str, **extra: Any) -> Response:
    response = jsonify({"error": error, "message": message, **extra})
    response.status_code = status
    return response


def api_user() -> User | None:
    if "api_user" not in g:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        g.api_user = user_for_token(token) if token else None
    return g.api_user


def token_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if api_user() is None:
            return _error(401, "unauthorized", "Jeton d'API manquant ou invalide "
                          "(en-tête « Authorization: Bearer … »).")
        return view(*args, **kwargs)
    return wrapper


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, "Le corps de la requête doit être un objet JSON.")
    return body


def _visible_sheet(slug: str) -> tuple[Sheet, Revision]:
    """The sheet and the revision this caller sees, or 404."""
    sheet = db.session.scalar(select(Sheet).where(Sheet.slug == slug))
    user = api_user()
    if sheet is not None:
        head = operations.head_revision(sheet)
        if user is not None and head is not None and can_see_revision(user, head) \
                and (sheet.state != SheetState.HIDDEN or user.is_moderator):
            return sheet, head
        if sheet.is_published and sheet.approved_revision is not None:
            return sheet, sheet.approved_revision
        if sheet.state in (SheetState.ARCHIVED, SheetState.MERGED) \
                and sheet.approved_revision is not None:
            return sheet, sheet.approved_revision
    abort(404, "Fiche introuvable.")


@bp.get("/api/v1/sheets")
def list_sheets() -> Any:
    query = published_sheets()
    for name in LIST_FILTERS:
        value = request.args.get(name, "").strip()
        if value:
            query = query.where(func.lower(getattr(Sheet, name)) == value.lower())
    tag = request.args.get("tag", "").strip()
    if tag:
        query = query.where(Sheet.id.in_(
            select(sheet_tags.c.sheet_id).join(Tag, Tag.id == sheet_tags.c.tag_id)
            .where(Tag.slug == tag)))
    per_page = parse_page(request.args.get("per_page"), 20, MAX_PER_PAGE)
    # The approved revisions of the page in one query, not one lazy load per sheet.
    page = paginate(query.order_by(Sheet.updated_at.desc(), Sheet.id.desc())
                    .options(selectinload(Sheet.approved_revision)),
                    request.args.get("page"), per_page)
    return jsonify({"items": [sheet_object(s) for s in page.items], "total": page.total,
                    "page": page.page, "per_page": page.per_page})


@bp.get("/api/v1/sheets/<slug>")
def get_sheet(slug: str) -> Any:
    sheet, revision = _visible_sheet(slug)
    if sheet.state == SheetState.MERGED and sheet.merged_into is not None:
        return Response(status=301, headers={
            "Location": url_for("api.get_sheet", slug=sheet.merged_into.slug)})
    return jsonify(sheet_object(sheet, revision))


@bp.post("/api/v1/sheets")
@token_required
def create_sheet() -> Any:
    body = _json_body()
    comment = str(body.pop("comment", "") or "Création")
    try:
        revision = operations.create_sheet(body, api_user(), comment)  # type: ignore[arg-type]
    except ValidationError as exc:
        return _error(422, "validation", "Données invalides.", fields=exc.errors)
    except operations.PermissionDenied as exc:
        return _error(403, "forbidden", str(exc))
    commit()
    status = 201 if revision.status == "approved" else 202
    return jsonify({"slug": revision.sheet.slug, "revision": revision.id,
                    "status": revision.status,
                    "url": url_for("api.get_sheet", slug=revision.sheet.slug)}), status


@bp.patch("/api/v1/sheets/<slug>")
@token_required
def update_sheet(slug: str) -> Any:
    sheet, _ = _visible_sheet(slug)
    body = _json_body()
    base = body.pop("base_revision", None)
    comment = str(body.pop("comment", "") or "")
    if not isinstance(base, int) or isinstance(base, bool):
        return _error(400, "validation", "« base_revision » (entier) est obligatoire : "
                      "l'identifiant de la révision que vous avez modifiée.",
                      fields={"base_revision": "obligatoire"})
    try:
        revision = operations.edit_sheet(sheet, body, api_user(), base, comment)  # type: ignore[arg-type]
    except ValidationError as exc:
        return _error(422, "validation", "Données invalides.", fields=exc.errors)
    except operations.EditConflict as conflict:
        db.session.rollback()
        return _error(409, "conflict",
                      "La fiche a été modifiée depuis la révision de départ ; les mêmes champs "
                      "ont changé des deux côtés.",
                      fields=conflict.fields, current_revision=conflict.head.id,
                      current={f: conflict.head.data.get(f) for f in conflict.fields},
                      yours={f: conflict.mine.get(f) for f in conflict.fields})
    except operations.PermissionDenied as exc:
        return _error(403, "forbidden", str(exc))
    except ValueError as exc:
        return _error(400, "validation", str(exc), fields={"base_revision": str(exc)})
    commit()
    return jsonify({"slug": sheet.slug, "revision": revision.id, "status": revision.status}), \
        200 if revision.status == "approved" else 202


@bp.post("/api/v1/revisions/<int:revision_id>/<any(approve, reject):decision>")
@token_required
def review_revision(revision_id: int, decision: str) -> Any:
    user = api_user()
    assert user is not None
    if not user.is_moderator:
        return _error(403, "forbidden", "Réservé aux modérateurs.")
    revision = db.session.get(Revision, revision_id)
    if revision is None:
        return _error(404, "not_found", "Révision introuvable.")
    body = request.get_json(silent=True) or {}
    reason = body.get("reason", "") if isinstance(body, dict) else ""
    if not isinstance(reason, str):
        return _error(400, "validation", "« reason » doit être un texte.")
    try:
        from kb.moderation import operations as moderation  # audit log + e-mail to the author

        if decision == "approve":
            moderation.approve(revision, user)
        else:
            moderation.reject(revision, user, reason)
    except ValueError as exc:
        return _error(409 if "traitée" in str(exc) else 400, "invalid", str(exc))
    commit()
    return jsonify({"revision": revision.id, "status": revision.status,
                    "sheet": revision.sheet.slug})


@bp.get("/api/v1/tags")
def list_tags() -> Any:
    return jsonify([{"name": t.name, "slug": t.slug, "count": n} for t, n in tag_counts()])


@bp.get("/api/openapi.json")
def openapi() -> Any:
    return jsonify(openapi_document())
