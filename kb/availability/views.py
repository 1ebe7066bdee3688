"""The availability block of a sheet page and its one-click update."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from kb.auth.identity import login_required
from kb.availability import operations
from kb.availability.models import STATUS_LABELS, STATUSES, Availability
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
