"""`jsonl` and `csv`: one published sheet per line/row, with the declaration's field names."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import current_app

from kb.extensions import db
from kb.importers.common import Echo, ImportFailed
from kb.importers.upsert import Upserter, slug_for
from kb.sheets import operations
from kb.sheets.fields import FIELD_NAMES, FIELDS_BY_NAME, ValidationError
from kb.territories.places import PLACE_NAMES
from kb.transaction import commit

BATCH = 500  # commit (and index) in batches: 10,000 sheets take seconds
LIST_SEPARATOR = " | "
# Set by a source that knows a sheet is another initiative than a similar existing one.
DISTINCT = "distinct_from_existing"
# Cells a spreadsheet would run as a formula (CSV injection): every CSV we write goes through
# spreadsheet_safe() (a leading apostrophe, which spreadsheets show as text); the importer
# takes it off again, so an export imports back unchanged.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    return "'" + value if value.lstrip("'").startswith(FORMULA_STARTS) else value


def from_spreadsheet(value: str) -> str:
    return value[1:] if value.startswith("'") and value.lstrip("'").startswith(FORMULA_STARTS) \
        else value


# Members of the API's sheet objects that an import reads past (computed, or kept outside the
# sheet's text: the availability is said by its team, never imported).
READ_ONLY = {"url", "structure", "status", "revision", "created_at", "updated_at", "last_reviewed_at",
             "review_due_at", "fresh", "state", "availability", *PLACE_NAMES}


def _rows_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ImportFailed(f"{path} ligne {number} : JSON invalide ({exc.msg})") from exc
            if not isinstance(obj, dict):
                raise ImportFailed(f"{path} ligne {number} : un objet JSON est attendu")
            yield number, obj


def _rows_csv(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        unknown = set(reader.fieldnames or []) - set(FIELD_NAMES) - READ_ONLY - {"slug", DISTINCT}
        if unknown:
            raise ImportFailed(f"{path} ligne 1 : colonnes inconnues : {', '.join(sorted(unknown))}")
        for row in reader:
            obj: dict[str, Any] = {}
            for key, raw in row.items():
                if key is None:
                    raise ImportFailed(f"{path} ligne {reader.line_num} : trop de colonnes")
                value = from_spreadsheet(raw or "")
                field = FIELDS_BY_NAME.get(key)
                if field is not None and field.is_list:
                    obj[key] = [v.strip() for v in (value or "").split("|") if v.strip()]
                else:
                    obj[key] = value or ""
            yield reader.line_num, obj


def _batches(rows: Iterator[tuple[int, dict[str, Any]]]) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    # One transaction per batch: a killed import leaves whole batches, a re-run completes it.
    size = int(current_app.config.get("KB_IMPORT_BATCH") or BATCH)
    batch: list[tuple[int, dict[str, Any]]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("1", "true", "oui", "yes")


def _import_rows(path: Path, rows: Iterator[tuple[int, dict[str, Any]]], fmt: str,
                 echo: Echo) -> dict[str, int]:
    upserter = Upserter(operations.system_user(), f"Import {fmt}")
    counts = {"created": 0, "updated": 0, "unchanged": 0, "skipped": 0, "matched": 0,
              "distinct": 0}
    for batch in _batches(rows):
        items = [(number, obj.pop("slug", None) or None, _truthy(obj.pop(DISTINCT, "")),
                  {k: v for k, v in obj.items() if k not in READ_ONLY}) for number, obj in batch]
        upserter.prefetch([slug_for(data, slug) for _, slug, _, data in items],
                          [(slug_for(data, slug), data) for _, slug, distinct, data in items])
        with db.session.no_autoflush:  # one flush per batch, at commit
            for number, slug, distinct, data in items:
                try:
                    outcome, sheet = upserter.upsert(data, slug,
                                                     "distinct" if distinct else "update")
                except ValidationError as exc:
                    counts["skipped"] += 1
                    echo(f"{path.name} ligne {number} : ignorée : {exc}")
                    continue
                counts[outcome] += 1
                if outcome == "matched":
                    echo(f"{path.name} ligne {number} : même initiative que la fiche "
                         f"« {sheet.slug} » (doublon) : celle-ci a été mise à jour.")
                elif outcome == "distinct":
                    echo(f"{path.name} ligne {number} : créée comme initiative distincte "
                         f"({sheet.slug}) malgré une fiche très proche ; paire signalée aux "
                         "modérateurs.")
        commit()
    echo(f"{counts['created']} fiche(s) créée(s), {counts['updated']} mise(s) à jour, "
         f"{counts['unchanged']} inchangée(s), {counts['skipped']} ignorée(s), "
         f"{counts['matched']} rapprochée(s) d'une fiche existante, "
         f"{counts['distinct']} créée(s) malgré une fiche très proche.")
    return counts


def import_jsonl(path: Path, echo: Echo) -> dict[str, int]:
    return _import_rows(path, _rows_jsonl(path), "jsonl", echo)


def import_csv(path: Path, echo: Echo) -> dict[str, int]:
    return _import_rows(path, _rows_csv(path), "csv", echo)
