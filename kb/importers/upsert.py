"""Upsert sheets as approved revisions by the import user, keyed by slug (default: the title's)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import func, select

from kb.auth.models import User
from kb.extensions import db
from kb.sheets import operations
from kb.sheets.fields import empty_data, validate
from kb.sheets.models import Revision, Sheet
from kb.sheets.visibility import editing_base
from kb.territories.places import complete
from kb.text import slugify

if TYPE_CHECKING:
    from kb.duplicates.index import Match

# What to do when a new sheet matches an existing one above the duplicates threshold.
Similar = Literal["update", "distinct", "ignore"]


def slug_for(data: dict[str, Any], slug: str | None = None) -> str:
    title = data.get("title")
    return slug or slugify(title if isinstance(title, str) else "")


_NOT_LOOKED_UP = object()
DERIVED_PLACE = ("commune_code", "epci", "department", "region")


class Upserter:
    """Creates or updates sheets. `prefetch` a batch first: its existing sheets and their head
    revisions are read in two queries, and its new rows are matched against existing sheets
    for duplicates all at once, instead of a few queries per row."""

    def __init__(self, author: User, comment: str):
        self.author = author
        self.comment = comment
        self.known: dict[str, Sheet] = {}
        self.looked_up: set[str] = set()
        self.heads: dict[int, Revision] = {}
        self.matches: dict[str, Match | None] = {}  # slug -> duplicate found by prefetch
        self.pair_reason = ""  # what the duplicates queue says of a "distinct" pair
        # Duplicates are looked for among the sheets that existed before this import: rows of
        # one file among themselves are left to `kb duplicates scan`, which keeps a bulk
        # import from matching every row against all the rows before it.
        self.existing_upto: int = db.session.scalar(select(func.max(Sheet.id))) or 0

    def prefetch(self, slugs: Iterable[str],
                 new_rows: Iterable[tuple[str, dict[str, Any]]] = ()) -> None:
        """Read these slugs' sheets and heads; `new_rows` (slug, data) that turn out to be new
        are matched for duplicates now, as one batch."""
        wanted = {s for s in slugs if s and s not in self.looked_up}
        if wanted:
            found = list(db.session.scalars(select(Sheet).where(Sheet.slug.in_(wanted))))
            self.known.update((sheet.slug, sheet) for sheet in found)
            self.looked_up |= wanted
            # The import user publishes at once: its head is the approved revision, never
            # anyone's pending proposal (kb.sheets.visibility.editing_base).
            approved = [sheet.approved_revision_id for sheet in found if sheet.approved_revision_id]
            if approved:
                self.heads.update((revision.sheet_id, revision) for revision in db.session.scalars(
                    select(Revision).where(Revision.id.in_(approved))))
        if not self.existing_upto:
            return
        from kb.duplicates.index import similar_many
        from kb.duplicates.similarity import HIGH, Fingerprint

        new = [(slug, data) for slug, data in new_rows
               if slug not in self.known and slug not in self.matches
               and str(data.get("title") or "").strip()]
        found_matches = similar_many([Fingerprint.of(data) for _, data in new], limit=1,
                                     min_score=HIGH, upto=self.existing_upto)
        for (slug, _), matches in zip(new, found_matches, strict=True):
            self.matches[slug] = matches[0] if matches else None

    def _match(self, slug: str, data: dict[str, Any]) -> Match | None:
        from kb.duplicates.operations import import_match

        found = self.matches.pop(slug, _NOT_LOOKED_UP)
        if found is _NOT_LOOKED_UP:
            return import_match(data, upto=self.existing_upto)
        return found  # type: ignore[return-value]

    def _head(self, sheet: Sheet) -> Revision | None:
        if sheet.id is None:  # created earlier in this batch: its head must be visible to queries
            db.session.flush()
        head = self.heads.get(sheet.id)
        return head if head is not None else editing_base(sheet, self.author)

    def upsert(self, data: dict[str, Any], slug: str | None = None,
               similar: Similar = "update") -> tuple[str, Sheet]:
        """Returns ("created" | "updated" | "unchanged" | "matched" | "distinct", sheet).

        A slug that does not exist yet but whose content matches a published sheet above the
        duplicates threshold updates that sheet ("matched"), unless the source says it is
        another initiative (`similar="distinct"`: created, the pair goes to the moderators'
        queue). Raises fields.ValidationError.
        """
        from kb.duplicates.operations import record_import_pair

        slug = slug_for(data, slug)
        self.prefetch([slug])
        sheet = self.known.get(slug)
        match = None
        if sheet is None and similar != "ignore" and self.existing_upto:
            match = self._match(slug, data)
            if match is not None and similar == "update":
                sheet = db.session.get(Sheet, match.sheet_id)
        if sheet is None:
            # Imports warn about places they cannot resolve rather than stop (lenient_places).
            revision = operations.create_sheet(data, self.author, self.comment, slug=slug or None,
                                               lenient_places=True)
            self.known[revision.sheet.slug] = revision.sheet
            if match is not None:
                record_import_pair(revision.sheet, match, self.author, self.pair_reason)
                return "distinct", revision.sheet
            return "created", revision.sheet
        head = self._head(sheet)
        full = {**empty_data(), **data}
        if head is not None:
            # Codes the source does not carry are the ones derived last time: a changed commune
            # name re-resolves them (kb.territories.places.complete), an unchanged row stays so.
            full.update({name: head.data.get(name, "") for name in DERIVED_PLACE
                         if not data.get(name)})
        if head is not None and complete({**empty_data(), **head.data,
                                          **validate(full, partial=True)},
                                         base=head.data, strict=False)[0] == head.data:
            # What edit_sheet() would find without its two queries: nothing to change.
            return ("matched" if match is not None else "unchanged"), sheet
        revision = operations.edit_sheet(sheet, full, self.author, head.id if head else None,
                                         self.comment, lenient_places=True)
        if sheet.id is not None:
            self.heads[sheet.id] = revision
        if match is not None:
            return "matched", sheet
        return ("unchanged" if head is not None and revision.id == head.id else "updated"), sheet

# What to do with a new slug whose content matches an existing sheet (kb/duplicates):
# "update" that sheet, create a "distinct" one and queue the pair, or "ignore" similarity.


def upsert_sheet(data: dict[str, Any], author: User, comment: str,
                 slug: str | None = None, similar: Similar = "update") -> tuple[str, Sheet]:
    return Upserter(author, comment).upsert(data, slug, similar)
