"""Sheets' places: the backfill of old sheets and the places a moderator must settle. Nothing here commits."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from kb.auth.models import User
from kb.errors import ValidationError
from kb.extensions import db
from kb.sheets.filters import projection
from kb.sheets.models import Revision, Sheet, published_sheets
from kb.sheets.operations import edit_sheet
from kb.territories.places import derive, resolve
from kb.territories.register import Commune
from kb.transaction import mark_changed

PROJECTED = ("city", "commune_code", "epci", "department", "region")


@dataclass
class BackfillReport:
    resolved: list[str] = field(default_factory=list)  # slugs whose place has codes
    updated: list[str] = field(default_factory=list)  # ... of which the projection changed
    ambiguous: list[tuple[str, str, list[str]]] = field(default_factory=list)  # slug, name, labels
    unknown: list[tuple[str, str]] = field(default_factory=list)  # slug, name
    no_place: list[str] = field(default_factory=list)


def backfill(dry_run: bool = False) -> BackfillReport:
    """Derive the official codes of every sheet's approved place into its projection.

    Revisions are never rewritten (history is append-only): the codes are derived from what
    each approved revision says, the way every new write derives them.
    """
    report = BackfillReport()
    sheets = db.session.scalars(
        select(Sheet).where(Sheet.approved_revision_id.is_not(None))
        .options(selectinload(Sheet.approved_revision)).order_by(Sheet.id))
    changed: list[Sheet] = []
    for sheet in sheets:
        assert sheet.approved_revision is not None
        data = sheet.approved_revision.data
        done = resolve(data, None)
        if done.ambiguous is not None:
            report.ambiguous.append((sheet.slug, done.ambiguous.name,
                                     [c.label for c in done.ambiguous.candidates]))
        elif done.unknown_city:
            report.unknown.append((sheet.slug, done.unknown_city))
        elif done.place.territories():
            report.resolved.append(sheet.slug)
        else:
            report.no_place.append(sheet.slug)
        place = derive(data)
        values = projection({**data, **place.codes()})
        values["city"] = place.city or str(data.get("city") or "")
        if any(getattr(sheet, name) != values[name] for name in PROJECTED):
            report.updated.append(sheet.slug)
            if not dry_run:
                for name in PROJECTED:
                    setattr(sheet, name, values[name])
                changed.append(sheet)
    if changed:
        mark_changed(changed)  # the search index follows (facet columns are in its stamps)
    return report


# --- ambiguous places, settled once by a moderator ---------------------------------------------

@dataclass
class AmbiguousSheet:
    sheet: Sheet
    name: str  # the commune name as the sheet gives it
    candidates: list[Commune]


def ambiguous_places() -> list[AmbiguousSheet]:
    """Published sheets whose commune name several communes share (imports keep it unresolved,
    and edits that leave the place alone keep it so): the moderators' list to settle."""
    sheets = db.session.scalars(
        published_sheets().where(Sheet.commune_code == "", Sheet.city != "")
        .options(selectinload(Sheet.approved_revision)).order_by(Sheet.title))
    found = []
    for sheet in sheets:
        assert sheet.approved_revision is not None
        done = resolve(sheet.approved_revision.data, None)
        if done.ambiguous is not None:
            found.append(AmbiguousSheet(sheet, done.ambiguous.name, done.ambiguous.candidates))
    return found


def settle_place(sheet: Sheet, code: str, moderator: User) -> Revision:
    """Give an ambiguous place the commune a moderator chose among its candidates: a new
    revision (history is append-only), published at once as any moderator's edit."""
    head = sheet.approved_revision
    done = resolve(head.data, None) if head is not None else None
    if done is None or done.ambiguous is None:
        raise ValidationError({"commune_code": "le lieu de cette fiche n'est plus ambigu"})
    chosen = next((c for c in done.ambiguous.candidates if c.code == code), None)
    if chosen is None:
        raise ValidationError({"commune_code": f"choisissez l'une des communes proposées pour "
                                               f"« {done.ambiguous.name} »"})
    return edit_sheet(sheet, {"commune_code": chosen.code, "city": chosen.name}, moderator, None,
                      comment=f"Commune précisée : {chosen.label}")
