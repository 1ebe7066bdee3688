"""Moderators' view of data·inclusion quality: each sheet's score and the lowest ones."""

from __future__ import annotations

from flask import Blueprint, render_template

from kb.auth.permissions import Capability, require
from kb.importers import datainclusion
from kb.sheets.models import Sheet

bp = Blueprint("datainclusion", __name__)


@bp.app_template_global()
def quality_of(sheet: Sheet) -> tuple[float, list[str]]:
    return datainclusion.quality(sheet)


@bp.get("/moderation/qualite")
@require(Capability.MODERATE)
def lowest() -> str:
    return render_template("moderation/quality.html", rows=datainclusion.lowest_quality())
