"""Exports of the published sheets (jsonl, csv) and the full backup (json), streamed."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import IO, Any

from sqlalchemy.orm import joinedload

from kb.availability.serialize import sheet_objects
from kb.extensions import db
from kb.importers.backup import write_backup
from kb.importers.tabular import LIST_SEPARATOR, spreadsheet_safe
from kb.sheets.fields import FIELD_NAMES, FIELDS_BY_NAME, Kind
from kb.sheets.models import Sheet, published_sheets

CSV_COLUMNS = ("slug", *FIELD_NAMES, "url", "updated_at")
# `csv-excel`: what a spreadsheet set up for French opens as columns on a double click
# (Excel reads ";" there, and UTF-8 only after a byte order mark). Same rows otherwise.
EXCEL_BOM = "\ufeff"
CSV_DELIMITERS = {"csv": ",", "csv-excel": ";"}
EXPORT_BATCH = 200


def csv_writer(out: IO[str], fmt: str = "csv") -> Any:
    """A CSV writer for `csv` or `csv-excel` (the caller writes EXCEL_BOM first for the latter)."""
    return csv.writer(out, delimiter=CSV_DELIMITERS[fmt])


def published_objects() -> Iterator[dict[str, Any]]:
    # yield_per streams rows (server-side cursor on PostgreSQL); the approved revision comes
    # in the same row, not one query per sheet.
    query = (published_sheets().options(joinedload(Sheet.approved_revision), joinedload(Sheet.structure))
             .order_by(Sheet.id).execution_options(yield_per=200))
    batch: list[Sheet] = []
    for sheet in db.session.scalars(query):
        batch.append(sheet)
        if len(batch) == EXPORT_BATCH:  # the availabilities of a batch in one query
            yield from sheet_objects(batch)
            batch = []
    yield from sheet_objects(batch)


def csv_row(obj: dict[str, Any]) -> list[str]:
    """One CSV row; every CSV output (CLI export, /donnees) writes its rows with this, so that
    no cell starts a spreadsheet formula."""
    row = []
    for name in CSV_COLUMNS:
        value = obj.get(name, "")
        field = FIELDS_BY_NAME.get(name)
        if field is not None and field.is_list:
            value = LIST_SEPARATOR.join(value)
        elif field is not None and field.kind is Kind.RECORDS:
            # One cell of JSON (indicators): the importer validates it back as the API does;
            # /donnees/indicateurs.csv has one row per indicator for spreadsheets.
            value = json.dumps(value, ensure_ascii=False) if value else ""
        row.append(spreadsheet_safe("" if value is None else str(value)))
    return row


def indicator_rows() -> Iterator[list[str]]:
    """/donnees/indicateurs.csv: the header, then one row per indicator of each published
    sheet (approved revision), every cell spreadsheet-safe."""
    from kb.sheets.indicators import CSV_COLUMNS as INDICATOR_COLUMNS
    from kb.sheets.indicators import csv_rows

    yield list(INDICATOR_COLUMNS)
    for obj in published_objects():
        for row in csv_rows(obj):
            yield [spreadsheet_safe(cell) for cell in row]


def export(out: IO[str], fmt: str) -> int:
    if fmt == "json":
        return write_backup(out)
    if fmt == "data-inclusion":
        from kb.importers import datainclusion

        return datainclusion.export(out)
    count = 0
    writer = csv_writer(out, fmt) if fmt in CSV_DELIMITERS else None
    if fmt == "csv-excel":
        out.write(EXCEL_BOM)
    if writer is not None:
        writer.writerow(CSV_COLUMNS)
    for obj in published_objects():
        if writer is not None:
            writer.writerow(csv_row(obj))
        else:
            out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        count += 1
    return count
