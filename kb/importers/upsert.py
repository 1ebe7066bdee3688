"""Upsert one sheet as an approved revision by the import user."""

from __future__ import annotations

from typing import Any, Literal

from slugify import slugify
from sqlalchemy import select

from kb.auth.models import User
from kb.extensions import db
from kb.sheets import operations
from kb.sheets.fields import empty_data
from kb.sheets.models import Sheet

# What to do with a new slug whose content matches an existing sheet (kb/duplicates):
# "update" that sheet, create a "distinct" one and queue the pair, or "ignore" similarity.
Similar = Literal["update", "distinct", "ignore"]


def upsert_sheet(data: dict[str, Any], author: User, comment: str,
                 slug: str | None = None, similar: Similar = "update") -> tuple[str, Sheet]:
    """Create or update the sheet keyed by `slug` (default: the title's slug).

    A slug that does not exist yet but whose content matches a published sheet above the
    duplicates threshold updates that sheet ("matched"), unless the source says it is another
    initiative (`similar="distinct"`: created, the pair goes to the moderators' queue).
    Returns ("created" | "updated" | "unchanged" | "matched" | "distinct", sheet).
    Raises fields.ValidationError.
    """
    from kb.duplicates.operations import import_match, record_import_pair

    slug = slug or slugify(data.get("title") or "", max_length=100, word_boundary=True)
    sheet = db.session.scalar(select(Sheet).where(Sheet.slug == slug)) if slug else None
    outcome = ""
    match = None
    if sheet is None and similar != "ignore":
        match = import_match(data)
        if match is not None and similar == "update":
            sheet, outcome = db.session.get(Sheet, match.sheet_id), "matched"
    if sheet is None:
        revision = operations.create_sheet(data, author, comment, slug=slug or None)
        if match is not None:
            record_import_pair(revision.sheet, match, author)
            return "distinct", revision.sheet
        return "created", revision.sheet
    head = operations.head_revision(sheet)
    full = {**empty_data(), **data}
    revision = operations.edit_sheet(sheet, full, author, head.id if head else None, comment)
    if outcome:
        return outcome, sheet
    return ("unchanged" if head is not None and revision.id == head.id else "updated"), sheet
