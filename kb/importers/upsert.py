"""Upsert sheets as approved revisions by the import user, keyed by slug (default: the title's)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from sqlalchemy import func, select

from kb.auth.models import User
from kb.extensions import db
from kb.sheets import operations
from kb.sheets.fields import empty_data
from kb.sheets.models import Sheet
from kb.sheets.visibility import editing_base
from kb.text import slugify

# What to do when a new sheet matches an existing one above the duplicates threshold.
Similar = Literal["update", "distinct", "ignore"]


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
        # Duplicates are looked for among the sheets that existed before this import: rows of
        # one file among themselves are left to `kb duplicates scan`, which keeps a bulk
        # import from matching every row against all the rows before it.
        self.existing_upto: int = db.session.scalar(select(func.max(Sheet.id))) or 0

    def prefetch(self, slugs: Iterable[str]) -> None:
        wanted = {s for s in slugs if s and s not in self.looked_up}
        if wanted:
            self.known.update((sheet.slug, sheet) for sheet in db.session.scalars(
                select(Sheet).where(Sheet.slug.in_(wanted))))
            self.looked_up |= wanted

    def upsert(self, data: dict[str, Any], slug: str | None = None,
               similar: Similar = "update") -> tuple[str, Sheet]:
        """Returns ("created" | "updated" | "unchanged" | "matched" | "distinct", sheet).

        A slug that does not exist yet but whose content matches a published sheet above the
        duplicates threshold updates that sheet ("matched"), unless the source says it is
        another initiative (`similar="distinct"`: created, the pair goes to the moderators'
        queue). Raises fields.ValidationError.
        """
        from kb.duplicates.operations import import_match, record_import_pair

        slug = slug_for(data, slug)
        self.prefetch([slug])
        sheet = self.known.get(slug)
        match = None
        if sheet is None and similar != "ignore" and self.existing_upto:
            match = import_match(data, upto=self.existing_upto)
            if match is not None and similar == "update":
                sheet = db.session.get(Sheet, match.sheet_id)
        if sheet is None:
            # Imports warn about places they cannot resolve rather than stop (lenient_places).
            revision = operations.create_sheet(data, self.author, self.comment, slug=slug or None,
                                               lenient_places=True)
            self.known[revision.sheet.slug] = revision.sheet
            if match is not None:
                record_import_pair(revision.sheet, match, self.author)
                return "distinct", revision.sheet
            return "created", revision.sheet
        if sheet.id is None:  # created earlier in this batch: its head must be visible to queries
            db.session.flush()
        # The import user publishes at once: it builds on the approved text, never on anyone's
        # pending proposal (those stay pending).
        head = editing_base(sheet, self.author)
        full = {**empty_data(), **data}
        revision = operations.edit_sheet(sheet, full, self.author, head.id if head else None,
                                         self.comment, lenient_places=True)
        if match is not None:
            return "matched", sheet
        return ("unchanged" if head is not None and revision.id == head.id else "updated"), sheet

# What to do with a new slug whose content matches an existing sheet (kb/duplicates):
# "update" that sheet, create a "distinct" one and queue the pair, or "ignore" similarity.


def upsert_sheet(data: dict[str, Any], author: User, comment: str,
                 slug: str | None = None, similar: Similar = "update") -> tuple[str, Sheet]:
    return Upserter(author, comment).upsert(data, slug, similar)
