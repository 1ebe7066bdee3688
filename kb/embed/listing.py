"""The sheets a list widget shows: the search filters, in SQL on published sheets."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload
from sqlalchemy.sql import Select
from werkzeug.datastructures import MultiDict

from kb.extensions import db
from kb.search.service import search_sheets
from kb.sheets.fields import FIELDS_BY_NAME
from kb.sheets.models import Revision, Sheet, Tag, published_sheets, sheet_tags
from kb.sheets.territories import DEPARTMENTS, department_code

log = logging.getLogger(__name__)
FILTERS = ("q", "tag", "scale", "department", "city")
DEFAULT_LIMIT = 5
MAX_LIMIT = 20


@dataclass
class ListParams:
    q: str = ""
    filters: dict[str, str] = field(default_factory=dict)  # tag, scale, department, city
    limit: int = DEFAULT_LIMIT

    def query_args(self) -> dict[str, Any]:
        """The parameters as a partner writes them in `data-list` (empty ones left out)."""
        args: dict[str, Any] = {"q": self.q} if self.q else {}
        args.update(self.filters)
        if self.limit != DEFAULT_LIMIT:
            args["limit"] = self.limit
        return args


def parse_params(args: MultiDict[str, str]) -> ListParams:
    """Read list parameters; ValueError (French message) for a bad scale or limit."""
    params = ListParams(q=args.get("q", "").strip()[:200])
    for name in ("tag", "scale", "department", "city"):
        value = " ".join(args.get(name, "").split())[:120]
        if value:
            params.filters[name] = value
    scale = params.filters.get("scale")
    if scale and scale not in FIELDS_BY_NAME["scale"].choice_values:
        raise ValueError("Échelle inconnue : « " + scale + " ». Valeurs possibles : "
                         + ", ".join(FIELDS_BY_NAME["scale"].choice_values) + ".")
    try:
        params.limit = min(max(int(args.get("limit", DEFAULT_LIMIT)), 1), MAX_LIMIT)
    except ValueError:
        raise ValueError(f"« limit » doit être un nombre entre 1 et {MAX_LIMIT}.") from None
    return params


def filtered(query: Select[Any], filters: dict[str, str]) -> Select[Any]:
    """Apply tag/scale/department/city to a query on Sheet (the search page's filters)."""
    if "tag" in filters:
        query = query.where(Sheet.id.in_(
            select(sheet_tags.c.sheet_id).join(Tag, Tag.id == sheet_tags.c.tag_id)
            .where(Tag.slug == filters["tag"])))
    if "scale" in filters:
        query = query.where(Sheet.scale == filters["scale"])
    if "city" in filters:
        query = query.where(func.lower(Sheet.city) == filters["city"].lower())
    if "department" in filters:
        value = filters["department"]
        code = department_code(value)
        # Sheets hold a code ("29") or a name ("Finistère"): accept either spelling.
        names = {value.lower()} | ({code.lower(), DEPARTMENTS[code].lower()} if code else set())
        query = query.where(func.lower(Sheet.department).in_(sorted(names)))
    return query


def _with_cards(query: Select[Any]) -> Select[Any]:
    return query.options(selectinload(Sheet.approved_revision), selectinload(Sheet.tags))


def list_sheets(params: ListParams) -> tuple[list[Sheet], int]:
    """The sheets to show (at most `limit`) and how many match in all."""
    base = filtered(published_sheets(), params.filters)
    if params.q:
        slugs = matching_slugs(params.q, params.filters)
        by_slug = {s.slug: s for s in db.session.scalars(
            _with_cards(base.where(Sheet.slug.in_(slugs))))}
        ranked = [by_slug[slug] for slug in slugs if slug in by_slug]
        return ranked[:params.limit], len(ranked)
    total = db.session.scalar(select(func.count()).select_from(base.subquery())) or 0
    sheets = db.session.scalars(_with_cards(
        base.order_by(Sheet.updated_at.desc(), Sheet.id.desc()).limit(params.limit))).all()
    return list(sheets), total


MAX_MATCHES = 100  # the search service's largest page


def matching_slugs(q: str, filters: dict[str, str]) -> list[str]:
    """Slugs of published sheets matching `q`, best first, from the search service."""
    result = search_sheets(q, filters, "relevance", 1, MAX_MATCHES)
    if not result["unavailable"]:
        return [hit["slug"] for hit in result["items"]]
    # The index is missing or being rebuilt: a substring match keeps partner pages useful.
    summary = Revision.data["summary"].as_string()
    query = (filtered(published_sheets(), filters)
             .join(Revision, Revision.id == Sheet.approved_revision_id)
             .where(or_(Sheet.title.icontains(q, autoescape=True),
                        summary.icontains(q, autoescape=True)))
             .order_by(Sheet.updated_at.desc(), Sheet.id.desc())
             .limit(MAX_MATCHES).with_only_columns(Sheet.slug))
    return list(db.session.scalars(query))
