"""Help while writing a sheet: the Markdown preview, rendered by the server (kb/text.py).

Two ways in, one rendering. With JavaScript (static/js/sheet-form.js) the "Aperçu" button of a
long text posts that text and gets its HTML back. Without it, "Aperçu des textes" posts the
whole form here and gets the same form back, filled, with every long text rendered below its
field; sending it then goes where the form was going (creation or edit).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, abort, jsonify, render_template, request, url_for
from flask_login import current_user, login_required

from kb.sheets.fields import FIELDS, FIELDS_BY_NAME, Kind
from kb.sheets.forms import SheetForm
from kb.sheets.visibility import get_sheet_or_404
from kb.text import render_markdown

bp = Blueprint("writing", __name__)


def _add_suggested(form: SheetForm) -> None:
    """"Ajouter cet indicateur": the author confirmed one found in the texts (kb/sheets/
    indicators.py); it joins the form's indicators, to complete and save (or remove)."""
    raw = request.form.get("add_indicator", "")
    if not raw:
        return
    try:
        item = json.loads(raw)
    except json.JSONDecodeError:
        abort(400, "Indicateur proposé illisible.")
    parts = FIELDS_BY_NAME["indicators"].parts_by_name
    if not isinstance(item, dict) or not set(item) <= set(parts):
        abort(400, "Indicateur proposé illisible.")
    form.add_record("indicators", {k: "" if v is None else str(v) if not isinstance(v, str)
                                   else v for k, v in item.items()})


@bp.post("/fiches/apercu")
@login_required
def preview() -> Any:
    name = request.form.get("preview_field")
    if name is not None:
        field = FIELDS_BY_NAME.get(name)
        if field is None or field.kind is not Kind.LONG:
            abort(400, "Ce champ n'a pas d'aperçu.")
        return jsonify({"html": str(render_markdown(request.form.get("text", "")))})

    form = SheetForm()  # the whole form, as sent: nothing is validated or saved here
    _add_suggested(form)
    previews = {f.name: render_markdown(form[f.name].data or "") for f in FIELDS
                if f.kind is Kind.LONG and str(form[f.name].data or "").strip()}
    slug = request.args.get("fiche")
    if not slug:
        return render_template("duplicates/sheet_form.html", form=form, sheet=None,
                               duplicates=None, previews=previews,
                               form_action=url_for("sheets.create"))
    sheet = get_sheet_or_404(slug, current_user)  # the same rule as the edit form
    return render_template("sheets/form.html", form=form, sheet=sheet, previews=previews,
                           form_action=url_for("sheets.edit", slug=sheet.slug))
