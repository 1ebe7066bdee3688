"""Rows in every table, and the rows of every table, to compare two instances (issue 28)."""

from __future__ import annotations

import itertools
from datetime import date, datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import JSON, Boolean, Date, DateTime, Float, Integer, Numeric, String, Text, func, select

from kb.extensions import db
from kb.sheets import operations
from kb.timeutil import utcnow
from kb.transaction import commit

_counter = itertools.count(1)


def _value(column: Any) -> Any:
    kind = column.type
    n = next(_counter)
    if isinstance(kind, Boolean):
        return False
    if isinstance(kind, DateTime):
        return utcnow().replace(microsecond=0)
    if isinstance(kind, Date):
        return date(2026, 3, 1 + n % 27)
    if isinstance(kind, Integer):
        return n
    if isinstance(kind, Float | Numeric):
        return 0.5
    if isinstance(kind, JSON):
        return {"n": n}
    if isinstance(kind, String | Text):
        length = getattr(kind, "length", None) or 40
        return f"v{n}"[:length]
    raise AssertionError(f"{column}: type {kind!r} not filled by the test helper")


def fill_every_table(make_sheet: Any, make_user: Any) -> None:
    """Real content through the operations (sheets, a history with a pending proposal), then
    one row made from the metadata in each table still empty: a table added later is filled
    without anyone thinking of it."""
    author = make_user("contributor", email="ana@example.org", name="Ana")
    first = make_sheet(title="Accueil inconditionnel en mairie")
    make_sheet(title="Épicerie solidaire du quartier", city="Rennes", department="35")
    operations.edit_sheet(first.sheet, {"city": "Quimper"}, author, first.id, "ville")
    commit()
    from kb.importers.backup import exported_tables

    for table in exported_tables():
        if db.session.scalar(select(func.count()).select_from(table)):
            continue
        row = {}
        for column in table.columns:
            keys = list(column.foreign_keys)
            if keys:
                target = keys[0].column
                row[column.name] = db.session.scalar(select(func.min(target)))
            elif column.primary_key and isinstance(column.type, Integer) and \
                    len(table.primary_key.columns) == 1:
                continue
            else:
                row[column.name] = _value(column)
        db.session.execute(table.insert().values(**row))
    db.session.commit()


def all_rows(tables: list[str] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    rows = {}
    for table in db.metadata.sorted_tables:
        if tables is not None and table.name not in tables:
            continue
        keys = list(table.primary_key.columns) or list(table.columns)
        rows[table.name] = [tuple(_plain(v) for v in row)
                            for row in db.session.execute(select(table).order_by(*keys))]
    db.session.rollback()
    return rows


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime | date) else value


API_PATHS = ("/api/v1/sheets", "/api/v1/sheets?q=accueil", "/api/v1/tags",
             "/api/v1/sheets/accueil-inconditionnel-en-mairie",
             "/api/v1/sheets/epicerie-solidaire-du-quartier")


def api_answers(app: Flask) -> dict[str, Any]:
    client: FlaskClient = app.test_client()
    answers = {}
    for path in API_PATHS:
        response = client.get(path)
        answers[path] = (response.status_code, response.get_json())
    return answers
