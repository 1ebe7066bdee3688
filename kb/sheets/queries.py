"""Read helpers shared by pages and the API."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.sql import Select

from kb.extensions import db
from kb.sheets.models import Sheet, Tag, published_sheets, sheet_tags

MAX_PER_PAGE = 100


@dataclass
class Page:
    items: list[Any]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def parse_page(value: Any, default: int = 1, maximum: int = 10_000) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return min(max(number, 1), maximum)


def paginate(query: Select[Any], page: Any, per_page: int) -> Page:
    number = parse_page(page)
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    items = db.session.scalars(query.limit(per_page).offset((number - 1) * per_page)).all()
    return Page(list(items), total, number, per_page)


def _tagged(slug: str) -> Select[Any]:
    return select(sheet_tags.c.sheet_id).join(Tag, Tag.id == sheet_tags.c.tag_id).where(
        Tag.slug == slug)


def tagged_ids(slug: str) -> set[int]:
    """The sheets that carry this tag, whatever their state (a tag page's members)."""
    return set(db.session.scalars(_tagged(slug)))


def tag_admits(slug: str, sheet_ids: set[int]) -> bool:
    """Whether any of these sheets carries the tag now."""
    return db.session.scalar(_tagged(slug).where(
        sheet_tags.c.sheet_id.in_(sorted(sheet_ids))).limit(1)) is not None


def tag_counts() -> list[tuple[Tag, int]]:
    """Tags of published sheets with their counts, most used first."""
    published_ids = published_sheets().with_only_columns(Sheet.id).subquery()
    rows = db.session.execute(
        select(Tag, func.count(sheet_tags.c.sheet_id))
        .join(sheet_tags, sheet_tags.c.tag_id == Tag.id)
        .where(sheet_tags.c.sheet_id.in_(select(published_ids.c.id)))
        .group_by(Tag.id)
        .order_by(func.count(sheet_tags.c.sheet_id).desc(), Tag.name)
    ).all()
    return [(tag, count) for tag, count in rows]


def family_counts() -> list[tuple[str, str, int]]:
    """(family, French label, published sheets) for the 16 families of thématiques, in the
    schema's order. The count is the filter `thematique=<family>` over published sheets, as
    search and /fiches count it (kb/sheets/filters.py)."""
    from kb.sheets.fields import FAMILIES
    from kb.sheets.filters import count_facets, published_ids

    _, counts = count_facets(published_ids(), only={"thematique"})
    found = counts.get("thematique", {})
    return [(value, label, found.get(value, 0)) for value, label in FAMILIES]


def _words(text: str) -> str:
    from kb.text import fold

    return " ".join(re.split(r"[^0-9a-z]+", fold(text.replace("’", "'")))).strip()


def thematiques_named(query: str, limit: int = 3) -> list[tuple[str, str]]:
    """(value, label) of the families and thématiques a search query names ("mobilité",
    "garde d'enfants"): the label is the query, or stands whole in it. Search offers their
    pages above its results."""
    from kb.sheets.fields import FAMILIES, THEMATIQUES

    words = _words(query)
    if len(words) < 4:
        return []
    padded = f" {words} "
    return [(value, label) for value, label in (*FAMILIES, *THEMATIQUES)
            if f" {_words(label)} " in padded][:limit]


@dataclass
class Contribution:
    """One sheet in "Mes contributions": its state for its author, and their revisions."""

    sheet: Sheet
    revisions: list[Any]  # the author's revisions of it, newest first
    state: str  # "publiee" | "en-attente" | "modifications-en-attente" | "refusee" | ...

    @property
    def label(self) -> str:
        return CONTRIBUTION_STATES[self.state]

    @property
    def latest(self) -> Any:
        return self.revisions[0]

    @property
    def pending(self) -> Any:
        return next((r for r in self.revisions if r.status == "pending"), None)


CONTRIBUTION_STATES = {
    "publiee": "publiée",
    "en-attente": "en attente de relecture",
    "modifications-en-attente": "modifications en attente de relecture",
    "refusee": "refusée",
    "masquee": "masquée",
    "archivee": "archivée",
    "fusionnee": "fusionnée dans une autre fiche",
}


def contributions(user: Any, limit: int = 500) -> list[Contribution]:
    """The sheets `user` wrote revisions of, most recently touched first, one row each."""
    from kb.sheets.models import Revision, RevisionStatus, SheetState

    revisions = db.session.scalars(
        select(Revision).where(Revision.author_id == user.id)
        .order_by(Revision.id.desc()).limit(limit)).all()
    by_sheet: dict[int, list[Any]] = {}
    for revision in revisions:
        by_sheet.setdefault(revision.sheet_id, []).append(revision)
    rows = []
    for own in by_sheet.values():
        sheet = own[0].sheet
        waiting = any(r.status == RevisionStatus.PENDING for r in own)
        if sheet.state == SheetState.MERGED:
            state = "fusionnee"
        elif sheet.state == SheetState.HIDDEN:
            state = "masquee"
        elif sheet.approved_revision_id is None:
            state = "en-attente" if waiting else "refusee"
        elif waiting:
            state = "modifications-en-attente"
        elif sheet.state == SheetState.ARCHIVED:
            state = "archivee"
        else:
            state = "publiee"
        rows.append(Contribution(sheet, own, state))
    return rows


def results_share() -> tuple[int, int]:
    """(published sheets with at least one measured indicator, published sheets): the
    moderators' dashboard figure (issue 26). Read from sheet_keys, which publish() fills."""
    from kb.sheets.models import sheet_keys

    published = published_sheets().with_only_columns(Sheet.id).subquery()
    total = db.session.scalar(select(func.count()).select_from(published)) or 0
    measured = db.session.scalar(
        select(func.count()).select_from(published).where(published.c.id.in_(
            select(sheet_keys.c.sheet_id).where(sheet_keys.c.field == "indicators",
                                                sheet_keys.c.key == "1")))) or 0
    return int(measured), int(total)
