"""Moderation and freshness endpoints of API v1 (documented in kb/api/openapi.py)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, jsonify, request

from kb.api.http import error, json_body
from kb.auth.identity import api_user, token_required
from kb.auth.permissions import Capability, require
from kb.extensions import csrf, db
from kb.freshness import operations as freshness
from kb.moderation import operations, queries
from kb.moderation.spam import client_fingerprint, init_rate_limits
from kb.sheets.models import Sheet
from kb.sheets.visibility import PUBLISHED, get_sheet_or_404
from kb.timeutil import isoformat
from kb.transaction import commit

bp = Blueprint("moderation_api", __name__)
csrf.exempt(bp)


@bp.post("/api/v1/sheets/<slug>/reports")
def report(slug: str) -> Any:
    """Readers report a sheet; a bearer token is optional."""
    sheet = get_sheet_or_404(slug, PUBLISHED)
    body = json_body()
    reason, comment = body.get("reason"), body.get("comment", "")
    if not isinstance(reason, str) or not isinstance(comment, str):
        return error(400, "validation", "« reason » et « comment » doivent être des textes.")
    try:
        row = operations.report_sheet(sheet, reason, comment, api_user(), client_fingerprint())
    except operations.ModerationError as exc:
        db.session.rollback()
        return error(422, "validation", str(exc))
    commit()
    return jsonify({"report": row.id, "sheet": sheet.slug, "reason": row.reason,
                    "sheet_state": sheet.state}), 201


@bp.post("/api/v1/sheets/<slug>/confirm")
@token_required
def confirm(slug: str) -> Any:
    """"Toujours à jour", by one of the sheet's contributors or a moderator."""
    sheet = get_sheet_or_404(slug, PUBLISHED)
    freshness.confirm_fresh(sheet, api_user(), via="API")  # type: ignore[arg-type]
    commit()
    return jsonify({"sheet": sheet.slug, "last_reviewed_at": isoformat(sheet.last_reviewed_at),
                    "review_due_at": isoformat(sheet.review_due_at), "fresh": sheet.fresh})


@bp.get("/api/v1/moderation/revisions")
@require(Capability.REVIEW)
def pending() -> Any:
    kind = request.args.get("type", "")
    if kind not in ("", "new", "edit"):
        return error(400, "validation", "« type » vaut new ou edit.")
    filters = queries.QueueFilters(kind=kind, tag=request.args.get("tag", ""),
                                   author=request.args.get("author", ""))
    return jsonify({"items": [queries.as_dict(r) for r in queries.pending_revisions(filters)]})


@bp.get("/api/v1/moderation/reports")
@require(Capability.MODERATE)
def open_reports() -> Any:
    return jsonify({"items": [
        {"report": r.id, "sheet": r.sheet.slug, "sheet_state": r.sheet.state,
         "reason": r.reason, "comment": r.comment, "created_at": isoformat(r.created_at)}
        for r in queries.open_reports()]})


@bp.get("/api/v1/moderation/stale")
@require(Capability.MODERATE)
def stale() -> Any:
    """Due sheets with nobody to remind, and sheets past the grace period (to archive)."""

    def row(s: Sheet) -> dict[str, Any]:
        return {"sheet": s.slug, "title": s.title,
                "last_reviewed_at": isoformat(s.last_reviewed_at),
                "review_due_at": isoformat(s.review_due_at)}

    return jsonify({"stale": [row(s) for s in freshness.stale_sheets()],
                    "archive_candidates": [row(s) for s in freshness.archive_candidates()]})


def init_app(app: Flask) -> None:
    # Listed last in BLUEPRINTS: the limits wrap endpoints of blueprints registered before.
    init_rate_limits(app)
