"""CSV injection: no cell of any CSV we write starts a spreadsheet formula; imports undo it."""

from __future__ import annotations

import csv
import io

import pytest

from kb.importers import run_import
from kb.importers.exports import export
from kb.importers.tabular import FORMULA_STARTS, from_spreadsheet, spreadsheet_safe
from kb.sheets.models import Sheet

DANGEROUS = {
    "title": "=HYPERLINK(\"http://evil.example\";\"Cliquez\")",
    "summary": "+33 1 23 45 67 89",
    "actor_name": "@SOMME(A1:A9)",
    "city": "-2+3",
    "contacts": "\tcmd|' /C calc'!A0",
    "results": "\r=1+1",
    "partners": ["=partenaire", "Autre"],
    "tags": ["@tag"],
}


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_every_formula_start_is_neutralised_and_restored(start: str) -> None:
    value = f"{start}1+1"
    assert spreadsheet_safe(value) == "'" + value
    assert from_spreadsheet(spreadsheet_safe(value)) == value
    # A value that already starts with an apostrophe before a formula survives the round trip.
    assert from_spreadsheet(spreadsheet_safe("'" + value)) == "'" + value
    assert spreadsheet_safe("'texte") == "'texte" == from_spreadsheet("'texte")
    assert spreadsheet_safe("Brest") == "Brest"


def _check_row(row: dict[str, str]) -> None:
    for column, cell in row.items():
        assert not cell.startswith(FORMULA_STARTS), (column, cell)
    assert row["title"] == "'" + DANGEROUS["title"]
    assert row["summary"] == "'+33 1 23 45 67 89"
    assert row["partners"] == "'=partenaire | Autre"


def test_the_http_csv_export_neutralises_formulas(client, make_sheet) -> None:
    make_sheet(**DANGEROUS)
    rows = _rows(client.get("/donnees/fiches.csv").get_data(as_text=True))
    assert len(rows) == 1
    _check_row(rows[0])


def test_the_cli_csv_export_neutralises_formulas_and_imports_back(app, make_sheet,
                                                                  tmp_path) -> None:
    revision = make_sheet(**DANGEROUS)
    original = dict(revision.data)
    out = io.StringIO()
    export(out, "csv")
    rows = _rows(out.getvalue())
    _check_row(rows[0])

    path = tmp_path / "fiches.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    counts = run_import(path, "csv", echo=lambda _: None)
    assert counts["unchanged"] == 1  # the apostrophes are taken off again
    sheet = app.extensions["sqlalchemy"].session.query(Sheet).one()
    for name in DANGEROUS:
        assert sheet.approved_revision.data[name] == original[name], name
