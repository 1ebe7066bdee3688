"""The `availability` member of the API's sheet objects (docs/data-inclusion.md)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from kb.availability.models import UNKNOWN, Availability
from kb.extensions import db
from kb.sheets.models import Sheet
from kb.sheets.serialize import sheet_object
from kb.timeutil import isoformat, utcnow


def availability_object(row: Availability | None, now: datetime | None = None
                        ) -> dict[str, Any] | None:
    """None when nothing was ever said; "inconnue" after 30 days, its delay and date then
    left out (as on the page: a stale count misleads more than none)."""
    if row is None:
        return None
    now = now or utcnow()
    status = row.shown_status(now)
    obj: dict[str, Any] = {"status": status, "updated_at": isoformat(row.updated_at),
                           "age_days": max(0, (now - row.updated_at).days)}
    if status != UNKNOWN:
        if row.delay_days is not None:
            obj["entry_delay"] = row.delay_days
        if row.until is not None:
            obj["until"] = row.until.isoformat()
    return obj


def availability_by_sheet(sheet_ids: Iterable[int]) -> dict[int, Availability]:
    """A page of sheets' availabilities in one query."""
    ids = list(sheet_ids)
    if not ids:
        return {}
    return {row.sheet_id: row for row in db.session.scalars(
        select(Availability).where(Availability.sheet_id.in_(ids)))}


def openapi_schema() -> dict[str, Any]:
    from kb.availability.models import STATUSES

    return {"type": ["object", "null"],
            "description": "Disponibilité (information volatile, hors révisions) : null si "
                           "jamais indiquée ; « inconnue » après 30 jours sans mise à jour.",
            "required": ["status", "updated_at", "age_days"],
            "properties": {
                "status": {"type": "string",
                           "enum": [value for value, _ in STATUSES] + [UNKNOWN]},
                "entry_delay": {"type": "integer", "minimum": 0,
                                "description": "Délai d'entrée, en jours."},
                "until": {"type": "string", "format": "date",
                          "description": "Réouverture (fermé) ou prochaines places."},
                "updated_at": {"type": "string", "format": "date-time"},
                "age_days": {"type": "integer", "minimum": 0}}}


def sheet_objects(sheets: Sequence[Sheet]) -> list[dict[str, Any]]:
    """The API's sheet objects, as the exports give them too: the fields (kb.sheets.serialize)
    and the availability, read for all of `sheets` at once."""
    rows = availability_by_sheet(s.id for s in sheets)
    return [{**sheet_object(s), "availability": availability_object(rows.get(s.id))}
            for s in sheets]
