"""Upsert one sheet as an approved revision by the import user."""

from __future__ import annotations

from typing import Any

from slugify import slugify
from sqlalchemy import select

from kb.auth.models import User
from kb.extensions import db
from kb.sheets import operations
from kb.sheets.fields import empty_data
from kb.sheets.models import Sheet


def upsert_sheet(data: dict[str, Any], author: User, comment: str,
                 slug: str | None = None) -> tuple[str, Sheet]:
    """Create or update the sheet keyed by `slug` (default: the title's slug).

    Returns ("created" | "updated" | "unchanged", sheet). Raises fields.ValidationError.
    """
    slug = slug or slugify(data.get("title") or "", max_length=100, word_boundary=True)
    sheet = db.session.scalar(select(Sheet).where(Sheet.slug == slug)) if slug else None
    if sheet is None:
        revision = operations.create_sheet(data, author, comment, slug=slug or None)
        return "created", revision.sheet
    head = operations.head_revision(sheet)
    full = {**empty_data(), **data}
    revision = operations.edit_sheet(sheet, full, author, head.id if head else None, comment)
    return ("unchanged" if head is not None and revision.id == head.id else "updated"), sheet
