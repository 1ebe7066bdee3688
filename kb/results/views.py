"""/resultats: one kind of measured indicator across published sheets; /resultats/comparer:
up to four sheets side by side. Server-rendered SVG, no JavaScript."""

from __future__ import annotations

import re

from flask import Blueprint, abort, render_template, request

from kb.results.queries import MAX_COMPARED, across_sheets, compared
from kb.sheets.filters import FilterError, parse_filters
from kb.sheets.indicators import NOT_COMPARABLE, PARTS, kind_label

bp = Blueprint("results", __name__)
DEFAULT_KIND = "sorties-positives"


@bp.get("/resultats")
def index() -> str:
    raw = request.args.get("kind", "") or DEFAULT_KIND
    try:
        kind = PARTS["kind"].choice_key(raw[:100])
        filters = parse_filters(request.args)
    except FilterError as exc:
        abort(400, exc.message)
    except ValueError as exc:
        abort(400, f"Type d'indicateur : {exc}.")
    series, sheet_count = across_sheets(kind, filters)
    return render_template("results/index.html", kind=kind, kind_title=kind_label(kind),
                           kinds=PARTS["kind"].choices, series=series, sheet_count=sheet_count,
                           filters=filters, not_comparable=NOT_COMPARABLE)


def _slugs() -> list[str]:
    """`fiches=a,b` or `fiches=a&fiches=b` (the checkboxes of /resultats)."""
    slugs: list[str] = []
    for value in request.args.getlist("fiches"):
        for slug in re.split(r"[,\s]+", value[:1000]):
            if slug and slug not in slugs:
                slugs.append(slug[:120])
    return slugs


@bp.get("/resultats/comparer")
def compare() -> str:
    slugs = _slugs()
    if len(slugs) > MAX_COMPARED:
        abort(400, f"Comparez au plus {MAX_COMPARED} fiches à la fois ({len(slugs)} demandées).")
    return render_template("results/compare.html", rows=compared(slugs),
                           max_compared=MAX_COMPARED, not_comparable=NOT_COMPARABLE)
