"""Similar sheets API, moderators' duplicates queue (side by side, "pas un doublon", merge)."""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Blueprint, Flask, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import aliased
from werkzeug.wrappers import Response

from kb.api.serialize import sheet_url
from kb.auth.permissions import is_moderator
from kb.duplicates import index, notify
from kb.duplicates import operations as dup_ops
from kb.duplicates.models import CandidateStatus, DuplicateCandidate
from kb.duplicates.similarity import HIGH, HINT, Fingerprint, normalise, shingles, title_key
from kb.extensions import db
from kb.sheets import operations
from kb.sheets.diff import as_text, word_diff
from kb.sheets.fields import FIELDS, Kind
from kb.sheets.models import Revision, Sheet, SheetState
from kb.sheets.queries import paginate, parse_page
from kb.transaction import commit, sheets_changed

bp = Blueprint("duplicates", __name__)
log = logging.getLogger(__name__)
PER_PAGE = 30
# The form sends at most the first 2,000 characters (static/js/similar.js): a query string
# that fits the server's limits (KB_MAX_QUERY, kb/limits.py) whatever the characters.
MAX_TITLE, MAX_TEXT = 300, 2_000


def _api_error(status: int, message: str) -> Response:
    response = jsonify({"error": "validation", "message": message})
    response.status_code = status
    return response


# Static segment: Werkzeug matches it before /api/v1/sheets/<slug> (see the routing test).
@bp.get("/api/v1/sheets/similar")
def similar_api() -> Any:
    title = request.args.get("title", "")
    text = request.args.get("text", "")
    if len(title) > MAX_TITLE or len(text) > MAX_TEXT:
        return _api_error(400, f"« title » fait au plus {MAX_TITLE} caractères et « text » "
                               f"au plus {MAX_TEXT}.")
    if not title.strip() and not text.strip():
        return jsonify({"items": []})  # nothing typed yet, nothing similar
    limit = parse_page(request.args.get("limit"), 5, 20)
    fp = Fingerprint(title_key(title), shingles(normalise(text)))
    matches = index.similar(fp, limit=limit, min_score=HINT)
    return jsonify({"items": [
        {"slug": m.slug, "title": m.title, "url": sheet_url_for(m.slug), "score": m.score}
        for m in matches]})


def sheet_url_for(slug: str) -> str:
    return sheet_url(Sheet(slug=slug))


# --- moderators ----------------------------------------------------------------------------

def _moderator_only() -> None:
    if not is_moderator(current_user):
        abort(403, "Réservé aux modérateurs.")


def _open_pairs() -> Any:
    a, b = aliased(Sheet), aliased(Sheet)
    return (select(DuplicateCandidate)
            .join(a, a.id == DuplicateCandidate.sheet_a_id)
            .join(b, b.id == DuplicateCandidate.sheet_b_id)
            .where(DuplicateCandidate.status == CandidateStatus.OPEN.value,
                   a.state != SheetState.MERGED.value, b.state != SheetState.MERGED.value)
            .order_by(DuplicateCandidate.score.desc(), DuplicateCandidate.id))


@bp.get("/moderation/doublons")
@login_required
def queue() -> str:
    _moderator_only()
    page = paginate(_open_pairs(), request.args.get("page"), PER_PAGE)
    return render_template("duplicates/queue.html", page=page, high=HIGH)


def _candidate_or_404(candidate_id: int) -> DuplicateCandidate:
    candidate = db.session.get(DuplicateCandidate, candidate_id)
    if candidate is None:
        abort(404, "Cette paire de fiches n'existe pas.")
    return candidate


def _shown_revision(sheet: Sheet) -> Revision | None:
    """The published text, or for a sheet still waiting for review, its pending text."""
    return sheet.approved_revision or operations.head_revision(sheet)


_INS = re.compile(r"<ins>.*?</ins>", re.S)
_DEL = re.compile(r"<del>.*?</del>", re.S)


def _rows(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per filled field: both texts side by side, differences highlighted."""
    rows = []
    for f in FIELDS:
        left, right = as_text(f, a.get(f.name)), as_text(f, b.get(f.name))
        if not left and not right:
            continue
        html = str(word_diff(left, right))
        rows.append({"field": f, "same": left == right, "list": f.kind is Kind.LIST,
                     "left": Markup(_INS.sub("", html)), "right": Markup(_DEL.sub("", html)),
                     "default": "b" if not left and right else "a"})
    return rows


@bp.get("/moderation/doublons/<int:candidate_id>")
@login_required
def compare(candidate_id: int) -> str:
    _moderator_only()
    candidate = _candidate_or_404(candidate_id)
    a_rev, b_rev = _shown_revision(candidate.sheet_a), _shown_revision(candidate.sheet_b)
    if a_rev is None or b_rev is None:
        abort(404, "Une des deux fiches n'a pas de révision.")
    return render_template("duplicates/compare.html", candidate=candidate, a_rev=a_rev,
                           b_rev=b_rev, rows=_rows(a_rev.data, b_rev.data), form=FlaskForm())


@bp.post("/moderation/doublons/<int:candidate_id>/pas-un-doublon")
@login_required
def reject(candidate_id: int) -> Response:
    _moderator_only()
    candidate = _candidate_or_404(candidate_id)
    if not FlaskForm().validate_on_submit():
        abort(400, "Formulaire expiré, rechargez la page.")
    dup_ops.not_duplicate(candidate, current_user)
    commit()
    flash("C'est noté : ces deux fiches ne seront plus proposées comme doublons.", "success")
    return redirect(url_for("duplicates.queue"))


@bp.post("/moderation/doublons/<int:candidate_id>/fusionner")
@login_required
def merge(candidate_id: int) -> Response:
    _moderator_only()
    candidate = _candidate_or_404(candidate_id)
    if not FlaskForm().validate_on_submit():
        abort(400, "Formulaire expiré, rechargez la page.")
    keep = request.form.get("survivor", "")
    if keep not in ("a", "b"):
        abort(400, "Choisissez la fiche qui reste (A ou B).")
    sides = {"a": candidate.sheet_a, "b": candidate.sheet_b}
    survivor, other = sides[keep], sides["b" if keep == "a" else "a"]
    choices = {f.name: "survivor" if request.form.get(f"field_{f.name}", keep) == keep
               else "other" for f in FIELDS}
    try:
        result = dup_ops.merge(survivor, other, choices, current_user,
                               request.form.get("comment", "").strip()[:200])
    except dup_ops.MergeRefused as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("duplicates.compare", candidate_id=candidate_id))
    survivor_title, survivor_slug, other_title = survivor.title, survivor.slug, other.title
    commit()
    subject, body = notify.merge_notice(survivor_title, sheet_url_for(survivor_slug),
                                        other_title, current_user.name)
    notify.send(result.recipients, subject, body)
    flash(f"Fiches fusionnées : « {other_title} » redirige désormais vers cette fiche.", "success")
    return redirect(url_for("sheets.show", slug=survivor_slug))


# --- derived index upkeep ------------------------------------------------------------------

def _on_sheets_changed(app: Flask, sheet_ids: list[int]) -> None:
    """After each commit: refresh the lookup rows of the changed sheets (derived data)."""
    try:
        index.refresh(sheet_ids)
    except Exception:
        db.session.rollback()  # leave the request's session usable; `kb duplicates scan` repairs
        raise
    commit()


def init_app(app: Flask) -> None:
    sheets_changed.connect(_on_sheets_changed, sender=app)
    app.jinja_env.globals["DUPLICATES_HIGH"] = HIGH
