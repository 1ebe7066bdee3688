"""Similar sheets API, moderators' duplicates queue (side by side, "pas un doublon", merge)."""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Blueprint, Flask, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import aliased
from werkzeug.wrappers import Response

from kb.auth.permissions import Capability, require
from kb.duplicates import index, notify
from kb.duplicates import operations as dup_ops
from kb.duplicates.models import CandidateStatus, DuplicateCandidate
from kb.duplicates.similarity import (
    FINGERPRINT_FIELDS,
    HIGH,
    HINT,
    fingerprint,
    percent,
)
from kb.extensions import csrf, db
from kb.sheets.diff import as_text, word_diff
from kb.sheets.fields import FIELDS, FIELDS_BY_NAME, Kind
from kb.sheets.models import Revision, Sheet, SheetState
from kb.sheets.queries import paginate, parse_page
from kb.sheets.serialize import sheet_url
from kb.sheets.visibility import visible_revision
from kb.transaction import BULK_IMPORT, commit, sheets_changed

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
# POST takes the same parameters in a form body: the new-sheet form sends all its fields, so
# the score shown while typing is the one computed when the form is sent. It writes nothing,
# hence no CSRF token is needed.
@bp.route("/api/v1/sheets/similar", methods=["GET", "POST"])
@csrf.exempt
def similar_api() -> Any:
    values = request.values
    title = values.get("title", "")
    text = values.get("text", "")
    if len(title) > MAX_TITLE or len(text) > MAX_TEXT:
        return _api_error(400, f"« title » fait au plus {MAX_TITLE} caractères et « text » "
                               f"au plus {MAX_TEXT}.")
    data: dict[str, Any] = {}
    for name in FINGERPRINT_FIELDS:
        value = values.get(name, "")
        if len(value) > FIELDS_BY_NAME[name].max_length and name != "title":
            return _api_error(400, f"« {name} » fait au plus "
                                   f"{FIELDS_BY_NAME[name].max_length} caractères.")
        if value.strip():
            data[name] = value
    if text.strip():  # free text (older clients): read as the description
        data["context"] = "\n\n".join(v for v in (data.get("context", ""), text) if v)
    if not data:
        return jsonify({"items": []})  # nothing typed yet, nothing similar
    limit = parse_page(values.get("limit"), 5, 20)
    matches = index.similar(fingerprint(data), limit=limit, min_score=HINT)
    return jsonify({"items": [
        {"slug": m.slug, "title": m.title, "url": sheet_url_for(m.slug), "score": m.score}
        for m in matches]})


def sheet_url_for(slug: str) -> str:
    return sheet_url(Sheet(slug=slug))


# --- moderators ----------------------------------------------------------------------------

def _open_pairs() -> Any:
    a, b = aliased(Sheet), aliased(Sheet)
    return (select(DuplicateCandidate)
            .join(a, a.id == DuplicateCandidate.sheet_a_id)
            .join(b, b.id == DuplicateCandidate.sheet_b_id)
            .where(DuplicateCandidate.status == CandidateStatus.OPEN.value,
                   a.state != SheetState.MERGED.value, b.state != SheetState.MERGED.value)
            .order_by(DuplicateCandidate.score.desc(), DuplicateCandidate.id))


def open_pair_count() -> int:
    """The duplicates queue's length (the tab's count, the dashboard's tile)."""
    return db.session.scalar(select(func.count()).select_from(
        _open_pairs().order_by(None).subquery())) or 0


@bp.get("/moderation/doublons")
@require(Capability.MODERATE)
def queue() -> str:
    page = paginate(_open_pairs(), request.args.get("page"), PER_PAGE)
    return render_template("duplicates/queue.html", page=page, high=HIGH)


TITLE_CHOICES = 10


@bp.get("/moderation/doublons/titres")
@require(Capability.MODERATE)
def titles() -> Response:
    """Title autocomplete of the manual comparison: sheets (not merged) whose title contains
    the typed words, as "Titre (adresse)" values the comparison reads back."""
    words = request.args.get("q", "")[:MAX_TITLE].split()[:6]
    if not words or sum(len(w) for w in words) < 2:
        return jsonify({"items": []})
    query = select(Sheet.slug, Sheet.title).where(Sheet.state != SheetState.MERGED.value,
                                                  Sheet.title != "")
    for word in words:
        query = query.where(func.lower(Sheet.title).contains(word.lower(), autoescape=True))
    rows = db.session.execute(query.order_by(Sheet.title, Sheet.id).limit(TITLE_CHOICES))
    return jsonify({"items": [{"slug": slug, "title": title, "value": f"{title} ({slug})"}
                              for slug, title in rows]})


_TITLE_AND_SLUG = re.compile(r"\(([a-z0-9-]+)\)\s*$")


def _sheet_from(value: str) -> Sheet | None:
    """A sheet from the autocomplete's "Titre (adresse)", its address or its slug, or its exact
    title when only one sheet has it."""
    chosen = _TITLE_AND_SLUG.search(value.strip())
    if chosen is not None:
        found = db.session.scalar(select(Sheet).where(Sheet.slug == chosen.group(1)))
        if found is not None:
            return found
    by_title = db.session.scalars(select(Sheet).where(
        Sheet.title == value.strip(), Sheet.state != SheetState.MERGED.value).limit(2)).all()
    if len(by_title) == 1:
        return by_title[0]
    slug = value.strip().rstrip("/").split("?")[0].split("#")[0]
    slug = slug.rsplit("/fiches/", 1)[-1].split("/")[0] if "/" in slug else slug
    return db.session.scalar(select(Sheet).where(Sheet.slug == slug)) if slug else None


@bp.post("/moderation/doublons/comparer")
@require(Capability.MODERATE)
def compare_any() -> Response:
    """Two sheets a moderator suspects are one initiative: open them side by side."""
    if not FlaskForm().validate_on_submit():
        abort(400, "Formulaire expiré, rechargez la page.")
    a, b = _sheet_from(request.form.get("a", "")), _sheet_from(request.form.get("b", ""))
    if a is None or b is None:
        flash("Indiquez deux fiches existantes : tapez le début de leur titre et choisissez "
              "dans la liste, ou collez leur adresse (…/fiches/nom-de-la-fiche).", "error")
        return redirect(url_for("duplicates.queue"))
    try:
        candidate = dup_ops.manual_pair(a, b, current_user)
    except dup_ops.MergeRefused as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("duplicates.queue"))
    commit()
    return redirect(url_for("duplicates.compare", candidate_id=candidate.id))


def _candidate_or_404(candidate_id: int) -> DuplicateCandidate:
    candidate = db.session.get(DuplicateCandidate, candidate_id)
    if candidate is None:
        abort(404, "Cette paire de fiches n'existe pas.")
    return candidate


def _shown_revision(sheet: Sheet) -> Revision | None:
    """What the moderator sees of the sheet: the published text, or for a sheet still waiting
    for its first review, its latest proposal."""
    return visible_revision(sheet, current_user)


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
@require(Capability.MODERATE)
def compare(candidate_id: int) -> str:
    candidate = _candidate_or_404(candidate_id)
    a_rev, b_rev = _shown_revision(candidate.sheet_a), _shown_revision(candidate.sheet_b)
    if a_rev is None or b_rev is None:
        abort(404, "Une des deux fiches n'a pas de révision.")
    return render_template("duplicates/compare.html", candidate=candidate, a_rev=a_rev,
                           b_rev=b_rev, rows=_rows(a_rev.data, b_rev.data), form=FlaskForm())


@bp.post("/moderation/doublons/<int:candidate_id>/pas-un-doublon")
@require(Capability.MODERATE)
def reject(candidate_id: int) -> Response:
    candidate = _candidate_or_404(candidate_id)
    if not FlaskForm().validate_on_submit():
        abort(400, "Formulaire expiré, rechargez la page.")
    dup_ops.not_duplicate(candidate, current_user)
    commit()
    flash("C'est noté : ces deux fiches ne seront plus proposées comme doublons.", "success")
    return redirect(url_for("duplicates.queue"))


@bp.post("/moderation/doublons/<int:candidate_id>/fusionner")
@require(Capability.MODERATE)
def merge(candidate_id: int) -> Response:
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
    subject, body = notify.merge_notice(survivor_title, sheet_url_for(survivor_slug),
                                        other_title, current_user.name)
    notify.queue_notices(result.recipients, subject, body)  # in the merge's transaction
    commit()
    flash(f"Fiches fusionnées : « {other_title} » redirige désormais vers cette fiche.", "success")
    return redirect(url_for("sheets.show", slug=survivor_slug))


# --- derived index upkeep ------------------------------------------------------------------

# A commit that published more sheets than this (an import batch) leaves the comparison to
# the scheduled `kb duplicates scan`: a lookup per sheet would slow bulk imports down.
SCAN_AFTER_COMMIT_MAX = 50


def _on_sheets_changed(app: Flask, sheet_ids: list[int]) -> None:
    """After each commit: refresh the lookup rows of the changed sheets (derived data), then
    compare the sheets just published with the others, so that the moderators' queue fills
    without anyone running `kb duplicates scan`."""
    try:
        index.refresh(sheet_ids)
        commit()
        if len(sheet_ids) <= SCAN_AFTER_COMMIT_MAX and not db.session.info.get(BULK_IMPORT):
            new = dup_ops.scan_sheets(sheet_ids)
            commit()
            if new:
                log.info("%d new duplicate pair(s) queued for sheets %s", new, sheet_ids[:10])
    except Exception:
        db.session.rollback()  # leave the request's session usable; `kb duplicates scan` repairs
        raise


def init_app(app: Flask) -> None:
    sheets_changed.connect(_on_sheets_changed, sender=app)
    app.jinja_env.globals.update(DUPLICATES_HIGH=HIGH, open_duplicate_pairs=dup_ops.open_pairs_with,
                                 similar_published=dup_ops.similar_published)
    app.jinja_env.filters["similarity"] = percent
