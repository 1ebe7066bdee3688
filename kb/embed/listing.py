"""The sheets a list widget shows: the declared filters (kb.sheets.filters) on published sheets."""

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
from kb.sheets.filters import ACCEPTED_PARAMS, Filters, apply_filters, parse_filters
from kb.sheets.models import Revision, Sheet, published_sheets

log = logging.getLogger(__name__)
DEFAULT_LIMIT = 5
MAX_LIMIT = 20
# What a list widget reads from `data-list` (widget.js and the configurator get it from here).
LIST_KEYS: tuple[str, ...] = ("q", *ACCEPTED_PARAMS, "limit")


@dataclass
class ListParams:
    q: str = ""
    filters: Filters = field(default_factory=Filters)  # the declared facets (kb.sheets.filters)
    limit: int = DEFAULT_LIMIT

    def query_args(self) -> dict[str, Any]:
        """The parameters as a partner writes them in `data-list` (empty ones left out)."""
        args: dict[str, Any] = {"q": self.q} if self.q else {}
        args.update(self.filters.active())
        if self.limit != DEFAULT_LIMIT:
            args["limit"] = self.limit
        return args


def parse_params(args: MultiDict[str, str]) -> ListParams:
    """Read list parameters; ValueError (French message) for a bad filter or limit."""
    params = ListParams(q=args.get("q", "").strip()[:200], filters=parse_filters(args))
    try:
        params.limit = min(max(int(args.get("limit", DEFAULT_LIMIT)), 1), MAX_LIMIT)
    except ValueError:
        raise ValueError(f"« limit » doit être un nombre entre 1 et {MAX_LIMIT}.") from None
    return params


def _with_cards(query: Select[Any]) -> Select[Any]:
    return query.options(selectinload(Sheet.approved_revision), selectinload(Sheet.tags))


def list_sheets(params: ListParams) -> tuple[list[Sheet], int]:
    """The sheets to show (at most `limit`) and how many match in all."""
    base = apply_filters(published_sheets(), params.filters)
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


def matching_slugs(q: str, filters: Filters) -> list[str]:
    """Slugs of published sheets matching `q`, best first, from the search service."""
    result = search_sheets(q, filters, "relevance", 1, MAX_MATCHES)
    if not result["unavailable"]:
        return [hit["slug"] for hit in result["items"]]
    # The index is missing or being rebuilt: a substring match keeps partner pages useful.
    summary = Revision.data["summary"].as_string()
    query = (apply_filters(published_sheets(), filters)
             .join(Revision, Revision.id == Sheet.approved_revision_id)
             .where(or_(Sheet.title.icontains(q, autoescape=True),
                        summary.icontains(q, autoescape=True)))
             .order_by(Sheet.updated_at.desc(), Sheet.id.desc())
             .limit(MAX_MATCHES).with_only_columns(Sheet.slug))
    return list(db.session.scalars(query))
