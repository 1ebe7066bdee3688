"""data·inclusion records of the published sheets: one service per sheet, one structure per
carrier (`actor_name`), valid against the schema package's own models (`Service`,
`Structure`): every record is built, then validated by the package, then written as the
package dumps it. `GET /api/v1/data-inclusion/services|structures` and
`kb export --format data-inclusion` read this module (docs/data-inclusion.md)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from data_inclusion.schema import v1 as di
from flask import current_app
from sqlalchemy import Select, func, select
from sqlalchemy.orm import joinedload

from kb.extensions import db
from kb.sheets.models import Revision, Sheet, published_sheets
from kb.sheets.serialize import sheet_url, structure_url
from kb.structures.models import Structure
from kb.territories.places import derive
from kb.territories.register import register
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
    """Its structure (kb/structures) when it names one, else one per carrier's name."""
    if sheet.structure_id is not None:
        return f"{source()}--structure-{sheet.structure_id}"
    actor = str(sheet.approved_revision.data.get("actor_name") or "") \
        if sheet.approved_revision else ""
    return f"{source()}--{_actor_key(actor, sheet.id)}"


def _actor_key(actor: str | None, sheet_id: int) -> str:
    return slugify(actor, 80) if actor and actor.strip() else f"fiche-{sheet_id}"


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


def structure_row_record(structure: Structure, updated: datetime) -> dict[str, Any]:
    """A structure of kb/structures that carries published sheets; `updated`: its last
    sheet's update (or its creation)."""
    commune = register().commune(structure.commune_code) if structure.commune_code else None
    record: dict[str, Any] = {
        "source": source(), "id": f"{source()}--structure-{structure.id}",
        "nom": _name(structure.name, "Structure"), "date_maj": updated.date().isoformat(),
        "lien_source": structure_url(structure), "siret": structure.siret or None,
        "site_web": structure.website or None,
        "commune": commune.name if commune else None,
        "code_insee": commune.code if commune else None,
        "reseaux_porteurs": list(structure.networks or []) or None,
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


def _carriers() -> Select[Any]:
    """Structures (kb/structures) carrying published sheets, with their last sheet's update."""
    carried = (published_sheets().where(Sheet.structure_id.is_not(None))
               .with_only_columns(Sheet.structure_id.label("structure_id"),
                                  func.max(Sheet.updated_at).label("updated"))
               .group_by(Sheet.structure_id).subquery())
    return (select(Structure, carried.c.updated)
            .join(carried, carried.c.structure_id == Structure.id).order_by(Structure.id))


def _actors() -> list[int]:
    """Published sheets without a structure, one per carrier's name (`actor_name`; a sheet
    without one is its own): the id of each name's most recently updated sheet, in the order
    of their structure ids. Three columns per sheet are read, no record is built."""
    by_name: dict[str, tuple[datetime, int]] = {}  # names as written: slugified once each
    latest: dict[str, tuple[datetime, int]] = {}
    for sheet_id, updated, actor in db.session.execute(
            published_sheets().where(Sheet.structure_id.is_(None))
            .join(Revision, Revision.id == Sheet.approved_revision_id)
            .with_only_columns(Sheet.id, Sheet.updated_at,
                               Revision.data["actor_name"].as_string())):
        if not (actor or "").strip():
            latest[_actor_key("", sheet_id)] = (updated, sheet_id)
        elif actor not in by_name or (updated, sheet_id) > by_name[actor]:
            by_name[actor] = (updated, sheet_id)
    for actor, seen in by_name.items():
        key = _actor_key(actor, seen[1])
        if key not in latest or seen > latest[key]:
            latest[key] = seen
    return [latest[key][1] for key in sorted(latest)]


def structures_page(offset: int = 0, limit: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """A page of structures and how many there are: first the structures of kb/structures
    (paged in SQL), then one per carrier's name for the sheets without a structure. Only the
    page's records are built."""
    carriers = db.session.scalar(select(func.count()).select_from(
        _carriers().order_by(None).subquery())) or 0
    actors = _actors()
    items: list[dict[str, Any]] = []
    if offset < carriers:
        for structure, updated in db.session.execute(_carriers().offset(offset).limit(limit)):
            items.append(structure_row_record(structure, updated))
    if limit is None or len(items) < limit:
        start = max(0, offset - carriers)
        wanted = actors[start:None if limit is None else start + limit - len(items)]
        by_id = {s.id: s for s in db.session.scalars(
            select(Sheet).where(Sheet.id.in_(wanted)).options(joinedload(Sheet.approved_revision)))}
        items += [structure_record(by_id[sheet_id]) for sheet_id in wanted]
    return items, carriers + len(actors)


def structures() -> list[dict[str, Any]]:
    """Every structure (the export)."""
    return structures_page()[0]


def export(out: IO[str]) -> int:
    """{"structures": [...], "services": [...]} as one JSON document; returns the services."""
    written = services()
    json.dump({"structures": structures(), "services": written}, out, ensure_ascii=False,
              indent=1)
    out.write("\n")
    return len(written)



# --- import ---------------------------------------------------------------------------------

DRAFTS_EMAIL = "data-inclusion@kb.local"


def _drafts_user() -> Any:
    """The author of imported drafts: a contributor, so that its sheets wait for review."""
    from kb.auth.models import Role, User
    from kb.timeutil import utcnow

    user = db.session.scalar(select(User).where(User.email == DRAFTS_EMAIL))
    if user is None:
        user = User(email=DRAFTS_EMAIL, display_name="Import data·inclusion",
                    role=Role.CONTRIBUTOR.value, email_confirmed_at=utcnow())
        db.session.add(user)
        db.session.flush()
    return user


def _array_rows(text: str, start: int) -> Iterator[tuple[int, Any]]:
    """(line, element) of the JSON array opening at `start`."""
    decoder = json.JSONDecoder()
    index = start + 1
    while True:
        while index < len(text) and text[index] in " \t\r\n,":
            index += 1
        if index >= len(text) or text[index] == "]":
            return
        element, end = decoder.raw_decode(text, index)
        yield text.count("\n", 0, index) + 1, element
        index = end


def read_records(path: Path) -> tuple[list[tuple[int, Any]], dict[str, str]]:
    """Services as (line, record), and structure id -> name. The file is data·inclusion's
    `services.json` (an array), our export (`{"structures": [...], "services": [...]}`), or
    one service per line."""
    from kb.importers.common import ImportFailed

    text = path.read_text(encoding="utf-8-sig")
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        rows: list[tuple[int, Any]] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append((number, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise ImportFailed(f"{path.name} ligne {number} : JSON invalide "
                                       f"({exc.msg})") from None
        return rows, {}
    structures: dict[str, str] = {}
    if isinstance(document, dict):
        for record in document.get("structures") or []:
            if isinstance(record, dict) and record.get("id") and record.get("nom"):
                structures[str(record["id"])] = str(record["nom"])
        services = document.get("services")
        found = re.search(r'"services"\s*:\s*\[', text)
        if not isinstance(services, list):
            raise ImportFailed(f"{path.name} : une liste « services » est attendue")
        start = found.end() - 1 if found else -1
    elif isinstance(document, list):
        services, start = document, text.index("[")
    else:
        raise ImportFailed(f"{path.name} : une liste de services est attendue")
    rows = list(_array_rows(text, start)) if start >= 0 else []
    if [record for _, record in rows] != services:  # the text fooled the scan: count instead
        rows = [(n, record) for n, record in enumerate(services, start=1)]
    return rows, structures


def _reason(exc: Exception) -> str:
    from pydantic import ValidationError as SchemaError

    if isinstance(exc, SchemaError):
        return " ; ".join(f"{'.'.join(str(p) for p in error['loc']) or 'service'} : "
                          f"{error['msg']}" for error in exc.errors()[:5])
    return str(exc)


def sheet_data(record: dict[str, Any], structures: dict[str, str]) -> dict[str, Any]:
    """One service -> our fields (validated by kb.sheets.fields afterwards)."""
    service = di.Service.model_validate(record)
    zone = ["france" if code in ("france", "99100") else code
            for code in service.zone_eligibilite or []]

    def keys(values: Any) -> list[str]:
        return sorted(str(v.value) for v in values or [])

    return {
        "title": service.nom, "context": service.description,
        "actor_name": structures.get(service.structure_id, ""),
        "city": service.commune or "", "commune_code": service.code_insee or "",
        "website": str(service.lien_source) if service.lien_source else "",
        "thematiques": keys(service.thematiques), "publics": keys(service.publics),
        "modes_mobilisation": keys(service.modes_mobilisation),
        "mobilisable_par": keys(service.mobilisable_par),
        "frais": service.frais.value if service.frais else "",
        "lien_mobilisation": str(service.lien_mobilisation) if service.lien_mobilisation else "",
        "mobilisation_precisions": service.mobilisation_precisions or "",
        "conditions_acces": service.conditions_acces or "", "zone_eligibilite": zone,
    }


def import_slug(record: dict[str, Any]) -> str:
    """Idempotence by (source, id): the sheet's slug is made from both."""
    ident, origin = str(record.get("id") or ""), str(record.get("source") or "")
    return slugify(ident if ident.startswith(f"{origin}--") else f"{origin}--{ident}", 120)


def import_services(path: Path, echo: Any, publish: bool = False) -> dict[str, int]:
    """Every row is checked first (the package's model, then our fields); one rejected row
    and nothing is imported, each rejection named with its line and reason. Then all rows
    are written in one transaction: drafts for review by default, published with `publish`.
    A new row close to an existing sheet of ours (kb/duplicates) neither updates it nor is
    published beside it: it becomes a draft paired with it in the moderators' duplicates queue,
    who merge them or say they differ; re-importing it leaves it there."""
    from kb.importers.common import ImportFailed
    from kb.importers.upsert import Upserter
    from kb.sheets import operations
    from kb.sheets.fields import validate
    from kb.transaction import commit

    rows, structures = read_records(path)
    checked: list[tuple[int, str, dict[str, Any]]] = []
    rejected: list[str] = []
    for line, record in rows:
        try:
            if not isinstance(record, dict):
                raise ValueError("un objet service est attendu")
            if not str(record.get("id") or "").strip():
                raise ValueError("id : identifiant manquant")
            data = sheet_data(record, structures)
            validate(data)
        except Exception as exc:  # noqa: BLE001 - every reason is reported, none stops the check
            rejected.append(f"{path.name} ligne {line} : rejetée : {_reason(exc)}")
            continue
        checked.append((line, import_slug(record), data))
    seen: dict[str, int] = {}
    for line, slug, _ in checked:
        if slug in seen:
            rejected.append(f"{path.name} ligne {line} : rejetée : même (source, id) que la "
                            f"ligne {seen[slug]}")
        seen.setdefault(slug, line)
    if rejected:
        for message in rejected:
            echo(message)
        raise ImportFailed(f"{len(rejected)} ligne(s) rejetée(s) : rien n'a été importé.")
    author = operations.system_user() if publish else _drafts_user()
    upserter = Upserter(author, "Import data·inclusion")
    counts = {"created": 0, "updated": 0, "unchanged": 0, "matched": 0, "distinct": 0}
    upserter.prefetch([slug for _, slug, _ in checked], [(slug, data) for _, slug, data in checked])
    queue = upserter
    if publish:  # near-duplicates wait for the moderators, even with --publish
        queue = Upserter(_drafts_user(), upserter.comment)
        queue.existing_upto = upserter.existing_upto
    queue.pair_reason = ("Import data·inclusion : service très proche d'une fiche existante, "
                         "importé en brouillon ; fusionner, ou dire que ce sont deux "
                         "initiatives.")
    for line, slug, data in checked:
        match = upserter.matches.pop(slug, None)
        known = upserter.known.get(slug)
        if match is not None or (known is not None and _queued(known)):
            if match is not None:
                queue.matches[slug] = match
            outcome, sheet = queue.upsert(data, slug, "distinct")
            if match is not None:
                other = db.session.get(Sheet, match.sheet_id)
                echo(f"{path.name} ligne {line} : très proche de la fiche "
                     f"« {other.slug if other else match.sheet_id} » : importée en brouillon, "
                     "dans la file des doublons des modérateurs.")
        else:
            # Looked for at prefetch already: nothing close, no second lookup.
            outcome, sheet = upserter.upsert(data, slug, "ignore")
        counts[outcome] += 1
    commit()
    echo(f"{counts['created']} fiche(s) créée(s){'' if publish else ' (à relire)'}, "
         f"{counts['updated']} mise(s) à jour, {counts['unchanged']} inchangée(s), "
         f"{counts['distinct']} en double possible (file des doublons).")
    return counts


def _queued(sheet: Sheet) -> bool:
    """An imported draft waiting in the duplicates queue: a new import leaves it there."""
    from kb.duplicates.models import CandidateStatus, DuplicateCandidate

    return sheet.approved_revision_id is None and db.session.scalar(
        select(DuplicateCandidate.id).where(
            DuplicateCandidate.status == CandidateStatus.OPEN.value,
            (DuplicateCandidate.sheet_a_id == sheet.id)
            | (DuplicateCandidate.sheet_b_id == sheet.id)).limit(1)) is not None


# --- quality ---------------------------------------------------------------------------------

CRITERIA_LABELS = {
    "adresse_bien_definie": "adresse", "modes_mobilisation_bien_definis": "modes de mobilisation",
    "au_moins_un_public": "publics", "au_moins_une_thematique": "thématiques",
    "au_moins_un_moyen_de_contact": "moyen de contact", "courriel_bien_defini": "courriel",
    "date_maj_recente": "mise à jour récente", "frais_bien_definis": "frais",
    "description_bien_definie": "description", "telephone_bien_defini": "téléphone",
}


def quality(sheet: Sheet) -> tuple[float, list[str]]:
    """data·inclusion's quality score of the sheet's service (0 to 1, the package computes it)
    and the French names of the criteria it misses."""
    from data_inclusion.schema.v1 import score_qualite

    value, details = score_qualite.score(di.Service.model_validate(service_record(sheet)))
    missing = [CRITERIA_LABELS.get(name, name) for name, result in details.items()
               if result is not None and result < 1]
    return value, missing


def lowest_quality(limit: int = 50) -> list[tuple[Sheet, float, list[str]]]:
    scored = [(sheet, *quality(sheet)) for sheet in _sheets()]
    return sorted(scored, key=lambda row: (row[1], row[0].id))[:limit]
