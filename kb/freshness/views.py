"""Freshness pages: the moderators' freshness queue, archiving, "toujours à jour" and intervals."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from kb.auth.identity import login_required
from kb.auth.permissions import Capability, require
from kb.errors import KbError
from kb.extensions import db
from kb.freshness import operations
from kb.moderation.forms import ReasonForm
from kb.moderation.queries import reachable_contributors
from kb.sheets.models import Sheet, SheetState
from kb.sheets.visibility import get_sheet_or_404
from kb.transaction import commit

bp = Blueprint("freshness", __name__)


def _checked_form() -> ReasonForm:
    form = ReasonForm()
    if not form.validate_on_submit():
        abort(400, "Formulaire expiré ou invalide, rechargez la page.")
    return form


@bp.get("/moderation/fraicheur")
@require(Capability.MODERATE)
def queue() -> str:
    due = operations.due_sheets()
    contributors = reachable_contributors(s.id for s in due)
    archived = db.session.scalars(select(Sheet).where(
        Sheet.state == SheetState.ARCHIVED.value).order_by(Sheet.archived_at.desc())).all()
    return render_template("freshness/queue.html", due=due, contributors=contributors,
                           stale=[s for s in due if not contributors.get(s.id)],
                           candidates=operations.archive_candidates(due=due), archived=archived,
                           form=ReasonForm())


@bp.post("/moderation/fiches/<slug>/<any(archiver, desarchiver):action>")
@require(Capability.MODERATE)
def archive(slug: str, action: str) -> Response:
    sheet = get_sheet_or_404(slug, current_user)
    form = _checked_form()
    try:
        if action == "archiver":
            operations.archive_sheet(sheet, current_user, form.reason.data or "",
                                     public=bool(form.public_reason.data))
        else:
            operations.unarchive_sheet(sheet, current_user, form.reason.data or "",
                                       public=bool(form.public_reason.data))
    except ValueError as exc:  # not from this state
        db.session.rollback()
        flash(str(exc).capitalize() + ".", "error")
    else:
        commit()
        flash("Fiche archivée." if action == "archiver" else "Fiche remise en ligne.", "success")
    return redirect(url_for("freshness.queue"))


@bp.post("/fiches/<slug>/toujours-a-jour")
@login_required
def confirm(slug: str) -> Response:
    sheet = get_sheet_or_404(slug, current_user)
    _checked_form()
    operations.confirm_fresh(sheet, current_user, via="page de la fiche")
    commit()
    flash("Merci : la fiche est confirmée à jour.", "success")
    return redirect(url_for("sheets.show", slug=sheet.slug))


@bp.post("/fiches/<slug>/frequence")
@login_required
def interval(slug: str) -> Response:
    sheet = get_sheet_or_404(slug, current_user)
    _checked_form()
    months = request.form.get("months", type=int)
    operations.set_interval(sheet, current_user, months or 0)
    commit()
    flash(f"Fréquence de relecture : tous les {sheet.review_interval_months} mois.", "success")
    return redirect(url_for("sheets.show", slug=sheet.slug))


@bp.route("/fraicheur/confirmer/<token>", methods=["GET", "POST"])
def confirm_link(token: str) -> Any:
    """GET shows the sheet and one button; POST confirms. Mail scanners that pre-open links
    (Outlook Safe Links…) would otherwise burn the single-use token before the person clicks."""
    try:
        row = operations.load_token(token)
    except operations.TokenError as exc:
        return render_template("freshness/confirm.html", error=str(exc), row=None), \
            410 if exc.gone else 404
    if request.method == "POST":
        _checked_form()
        sheet = row.sheet
        try:
            operations.use_token(token)
        except (operations.TokenError, KbError) as exc:
            db.session.rollback()
            return render_template("freshness/confirm.html", error=str(exc), row=None), 410
        commit()
        return render_template("freshness/confirm.html", error=None, row=None, done=sheet)
    return render_template("freshness/confirm.html", error=None, row=row, form=ReasonForm())
