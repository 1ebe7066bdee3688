"""data·inclusion records of the published sheets: one service per sheet, one structure per
carrier (`actor_name`), valid against the schema package's own models (`Service`,
`Structure`): every record is built, then validated by the package, then written as the
package dumps it. `GET /api/v1/data-inclusion/services|structures` and
`kb export --format data-inclusion` read this module (docs/data-inclusion.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

from data_inclusion.schema import v1 as di
from flask import current_app
from sqlalchemy import func
from sqlalchemy.orm import joinedload

from kb.extensions import db
from kb.sheets.models import Sheet, published_sheets
from kb.sheets.serialize import sheet_url
from kb.territories.places import derive
from kb.text import slugify

DEFAULT_SOURCE = "fiches-initiatives"
NAME_MAX = 150
DESCRIPTION_MAX = 10_000


def source() -> str:
    """Our producer id in data·inclusion (`KB_DATA_INCLUSION_SOURCE`)."""
    return str(current_app.config.get("KB_DATA_INCLUSION_SOURCE") or DEFAULT_SOURCE)


def _name(text: str, fallback: str) -> str:
    """3 to 150 characters, no final full stop (the schema's rule)."""
    name = " ".join(text.split())[:NAME_MAX].rstrip(". ")
    return name if len(name) >= 3 else f"{fallback} {name}".strip()[:NAME_MAX]


def structure_id(sheet: Sheet) -> str:
    actor = str(sheet.approved_revision.data.get("actor_name") or "") \
        if sheet.approved_revision else ""
    key = slugify(actor, 80) if actor.strip() else f"fiche-{sheet.id}"
    return f"{source()}--{key}"


def service_record(sheet: Sheet) -> dict[str, Any]:
    assert sheet.approved_revision is not None
    data = sheet.approved_revision.data
    place = derive(data)
    description = "\n\n".join(str(data.get(name) or "").strip()
                              for name in ("summary", "context", "method", "results")
                              if str(data.get(name) or "").strip())[:DESCRIPTION_MAX]
    if len(description) < 5:
        description = f"Fiche initiative : {data.get('title', '')}"

    def several(name: str) -> list[str] | None:
        return list(data.get(name) or []) or None

    record: dict[str, Any] = {
        "source": source(), "id": f"{source()}--{sheet.id}", "structure_id": structure_id(sheet),
        "nom": _name(str(data.get("title") or ""), "Fiche"), "description": description,
        "lien_source": sheet_url(sheet), "date_maj": sheet.updated_at.date().isoformat(),
        "thematiques": several("thematiques"), "publics": several("publics"),
        "modes_mobilisation": several("modes_mobilisation"),
        "mobilisable_par": several("mobilisable_par"),
        "zone_eligibilite": several("zone_eligibilite"),
        "frais": data.get("frais") or None,
        "lien_mobilisation": data.get("lien_mobilisation") or None,
        "mobilisation_precisions": data.get("mobilisation_precisions") or None,
        "conditions_acces": data.get("conditions_acces") or None,
        "commune": (place.commune.name if place.commune else data.get("city")) or None,
        "code_insee": place.commune.code if place.commune else None,
    }
    return di.Service.model_validate(record).model_dump(mode="json")


def structure_record(sheet: Sheet) -> dict[str, Any]:
    assert sheet.approved_revision is not None
    data = sheet.approved_revision.data
    place = derive(data)
    record: dict[str, Any] = {
        "source": source(), "id": structure_id(sheet),
        "nom": _name(str(data.get("actor_name") or data.get("title") or ""), "Structure"),
        "date_maj": sheet.updated_at.date().isoformat(),
        "lien_source": sheet_url(sheet), "site_web": data.get("website") or None,
        "commune": (place.commune.name if place.commune else data.get("city")) or None,
        "code_insee": place.commune.code if place.commune else None,
    }
    return di.Structure.model_validate(record).model_dump(mode="json")


def _sheets(offset: int = 0, limit: int | None = None) -> Iterator[Sheet]:
    query = (published_sheets().options(joinedload(Sheet.approved_revision))
             .order_by(Sheet.id).offset(offset).limit(limit).execution_options(yield_per=200))
    yield from db.session.scalars(query)


def published_count() -> int:
    return db.session.scalar(published_sheets().with_only_columns(func.count())) or 0


def services(offset: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
    return [service_record(sheet) for sheet in _sheets(offset, limit)]


def structures() -> list[dict[str, Any]]:
    """One per structure id, from its most recently updated sheet."""
    found: dict[str, dict[str, Any]] = {}
    latest: dict[str, Any] = {}
    for sheet in _sheets():
        key = structure_id(sheet)
        if key not in found or sheet.updated_at > latest[key]:
            found[key], latest[key] = structure_record(sheet), sheet.updated_at
    return sorted(found.values(), key=lambda r: r["id"])


def export(out: IO[str]) -> int:
    """{"structures": [...], "services": [...]} as one JSON document; returns the services."""
    written = services()
    json.dump({"structures": structures(), "services": written}, out, ensure_ascii=False,
              indent=1)
    out.write("\n")
    return len(written)

