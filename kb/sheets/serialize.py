"""The sheet object of the API, jsonl export and embeds: declared fields plus metadata."""

from __future__ import annotations

from typing import Any

from kb.sheets.fields import FIELDS, Kind
from kb.sheets.models import Revision, Sheet
from kb.territories.places import PLACE_NAMES, derive
from kb.timeutil import isoformat
from kb.urls import base_url

META_FIELDS = ("slug", "url", "structure", "status", "revision", "created_at", "updated_at",
               "last_reviewed_at", "review_due_at", "fresh", "state", *PLACE_NAMES)


def sheet_url(sheet: Sheet) -> str:
    # Built by hand: exports and the CLI run outside any request.
    return f"{base_url()}/fiches/{sheet.slug}"


def structure_url(structure: Any) -> str:
    return f"{base_url()}/structures/{structure.id}-{structure.slug}"


def structure_ref(sheet: Sheet) -> dict[str, Any] | None:
    """The structure that carries the sheet (kb/structures), as every sheet object names it."""
    structure = sheet.structure
    if structure is None:
        return None
    return {"id": structure.id, "name": structure.name, "siret": structure.siret,
            "url": structure_url(structure)}


def sheet_object(sheet: Sheet, revision: Revision | None = None) -> dict[str, Any]:
    """`revision` defaults to the approved one; moderators and authors may ask for a pending one."""
    revision = revision or sheet.approved_revision
    assert revision is not None, "an unpublished sheet has no public object"
    obj: dict[str, Any] = {f.name: revision.data.get(f.name, f.empty()) for f in FIELDS}
    # Official codes and names of the place, derived for revisions older than the register.
    place = derive(revision.data)
    obj.update(place.codes(), **place.names(), city=place.city or obj["city"])
    for f in FIELDS:
        if f.kind is Kind.URL and not obj[f.name]:
            obj[f.name] = None  # "" is no URI: an empty link is null (the schema says so)
    obj.update(
        slug=sheet.slug,
        url=sheet_url(sheet),
        structure=structure_ref(sheet),
        status=revision.status,
        revision=revision.id,
        created_at=isoformat(sheet.created_at),
        updated_at=isoformat(sheet.updated_at),
        last_reviewed_at=isoformat(sheet.last_reviewed_at),
        review_due_at=isoformat(sheet.review_due_at),
        fresh=sheet.fresh,
        state=sheet.state,
    )
    return obj
