"""Indicators of published sheets, read from their approved revision."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import joinedload

from kb.extensions import db
from kb.sheets.filters import Filters, apply_filters
from kb.sheets.indicators import Dot, indicators_of
from kb.sheets.models import Sheet, published_sheets

MAX_SHEETS = 300  # one kind across sheets: a plot of more rows reads as noise
MAX_COMPARED = 4


@dataclass
class Series:
    """The indicators of one kind in one unit: one dot plot."""

    unit: str
    dots: list[Dot] = field(default_factory=list)


def across_sheets(kind: str, filters: Filters) -> tuple[list[Series], int]:
    """The indicators of `kind` in the published sheets matching `filters` (and having one of
    that kind), grouped by unit; and the number of sheets."""
    stmt = apply_filters(published_sheets(), filters.with_value("indicator_kind", kind))
    sheets = db.session.scalars(stmt.options(joinedload(Sheet.approved_revision))
                                .order_by(Sheet.title).limit(MAX_SHEETS)).unique().all()
    by_unit: dict[str, Series] = {}
    for sheet in sheets:
        assert sheet.approved_revision is not None
        for item in indicators_of(sheet.approved_revision.data):
            if item.get("kind") == kind and item.get("value") is not None:
                unit = item.get("unit") or ""
                by_unit.setdefault(unit, Series(unit)).dots.append(
                    Dot(sheet.title, item, sheet.slug))
    series = sorted(by_unit.values(), key=lambda s: -len(s.dots))
    for one in series:
        one.dots.sort(key=lambda d: -float(d.item["value"]))
    return series, len(sheets)


def published_by_slug(slugs: list[str]) -> dict[str, Sheet]:
    """Published sheets among `slugs` (any other slug, unknown or not public, is absent)."""
    if not slugs:
        return {}
    stmt = published_sheets().where(Sheet.slug.in_(slugs)).options(
        joinedload(Sheet.approved_revision))
    return {sheet.slug: sheet for sheet in db.session.scalars(stmt).unique()}


def compared(slugs: list[str]) -> list[tuple[str, Sheet | None, list[dict[str, Any]]]]:
    """(slug, sheet or None, its indicators) in the order asked."""
    found = published_by_slug(slugs)
    out = []
    for slug in slugs:
        sheet = found.get(slug)
        items = indicators_of(sheet.approved_revision.data) \
            if sheet is not None and sheet.approved_revision is not None else []
        out.append((slug, sheet, items))
    return out
