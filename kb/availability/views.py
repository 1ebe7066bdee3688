"""The availability block of a sheet page and its one-click update."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from kb.auth.identity import login_required
from kb.availability import operations
from kb.availability.models import STATUS_LABELS, STATUSES, Availability
from kb.errors import KbError, LinkError
from kb.extensions import db
from kb.sheets.models import Sheet
from kb.sheets.visibility import get_sheet_or_404
from kb.transaction import commit

bp = Blueprint("availability", __name__)


@bp.app_template_global()
def sheet_availability(sheet: Sheet) -> Availability | None:
    return operations.availability_of(sheet)


@bp.app_context_processor
def statuses() -> dict[str, object]:
    return {"AVAILABILITY_STATUSES": STATUSES}


@bp.post("/fiches/<slug>/disponibilite")
@login_required
def update(slug: str) -> Response:
    sheet = get_sheet_or_404(slug, current_user)
    if not FlaskForm().validate_on_submit():
        abort(400, "Formulaire expiré ou invalide, rechargez la page.")
    row = operations.set_availability(
        sheet, current_user, request.form.get("status", ""),
        operations.parse_delay(request.form.get("delay_days")),
        operations.parse_date(request.form.get("until")))
    commit()
    flash(f"Disponibilité : {STATUS_LABELS[row.status].lower()}.", "success")
    return redirect(url_for("sheets.show", slug=sheet.slug) + "#disponibilite")


@bp.route("/disponibilite/<token>", methods=["GET", "POST"])
def link(token: str) -> Any:
    """A letter's one-click availability link: GET shows what it will say, POST says it (mail
    scanners open links; they do not submit forms). No sign-in needed, only its addressee."""
    try:
        found = operations.load_link(token, current_user)
    except LinkError as exc:
        return render_template("availability/link.html", error=str(exc), link=None), exc.status
    if request.method == "POST":
        if not FlaskForm().validate_on_submit():
            abort(400, "Formulaire expiré ou invalide, rechargez la page.")
        try:
            found = operations.use_link(token, current_user)
        except KbError as exc:
            db.session.rollback()
            return render_template("availability/link.html", error=exc.message, link=None), \
                exc.status
        sheet, label = found.sheet, STATUS_LABELS[found.action]
        commit()
        return render_template("availability/link.html", error=None, link=None, done=sheet,
                               label=label)
    return render_template("availability/link.html", error=None, link=found,
                           label=STATUS_LABELS[found.action],
                           current=operations.availability_of(found.sheet), form=FlaskForm())
