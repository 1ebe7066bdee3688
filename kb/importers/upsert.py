"""Upsert sheets as approved revisions by the import user, keyed by slug (default: the title's)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from kb.auth.models import User
from kb.extensions import db
from kb.sheets import operations
from kb.sheets.fields import empty_data
from kb.sheets.models import Sheet
from kb.text import slugify


def slug_for(data: dict[str, Any], slug: str | None = None) -> str:
    title = data.get("title")
    return slug or slugify(title if isinstance(title, str) else "")


class Upserter:
    """Creates or updates sheets; `prefetch` a batch's slugs to look them up in one query."""

    def __init__(self, author: User, comment: str):
        self.author = author
        self.comment = comment
        self.known: dict[str, Sheet] = {}
        self.looked_up: set[str] = set()

    def prefetch(self, slugs: Iterable[str]) -> None:
        wanted = {s for s in slugs if s and s not in self.looked_up}
        if wanted:
            self.known.update((sheet.slug, sheet) for sheet in db.session.scalars(
                select(Sheet).where(Sheet.slug.in_(wanted))))
            self.looked_up |= wanted

    def upsert(self, data: dict[str, Any], slug: str | None = None) -> tuple[str, Sheet]:
        """Returns ("created" | "updated" | "unchanged", sheet). Raises fields.ValidationError."""
        slug = slug_for(data, slug)
        self.prefetch([slug])
        sheet = self.known.get(slug)
        if sheet is None:
            revision = operations.create_sheet(data, self.author, self.comment, slug=slug or None)
            self.known[revision.sheet.slug] = revision.sheet
            return "created", revision.sheet
        if sheet.id is None:  # created earlier in this batch: its head must be visible to queries
            db.session.flush()
        head = operations.head_revision(sheet)
        full = {**empty_data(), **data}
        revision = operations.edit_sheet(sheet, full, self.author, head.id if head else None,
                                         self.comment)
        return ("unchanged" if head is not None and revision.id == head.id else "updated"), sheet


def upsert_sheet(data: dict[str, Any], author: User, comment: str,
                 slug: str | None = None) -> tuple[str, Sheet]:
    return Upserter(author, comment).upsert(data, slug)
