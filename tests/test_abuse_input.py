"""Text that no output could show never enters: a lone surrogate ("\\ud800") or a body nested
too deep is refused where JSON enters (kb/limits.py) with a French 400 naming the field, on
every write route, and nothing is stored."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update
from werkzeug.routing import AnyConverter, Rule

from kb.extensions import db
from kb.limits import MAX_JSON_DEPTH, json_problem
from kb.sheets.models import Revision
from kb.transaction import commit
from tests.conftest import sheet_data

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
LONE = "\ud800"


def _write_routes(app: Flask) -> list[tuple[str, Rule]]:
    return [(method, rule) for rule in app.url_map.iter_rules()
            for method in sorted(WRITE_METHODS & (rule.methods or set()))]


def _url(rule: Rule, slug: str, ids: int) -> str:
    values: dict[str, Any] = {}
    for name, converter in rule._converters.items():
        if isinstance(converter, AnyConverter):
            values[name] = sorted(converter.items)[0]  # type: ignore[attr-defined]
        elif name == "slug":
            values[name] = slug
        elif name.endswith("_id"):
            values[name] = ids
        else:
            values[name] = "jeton"
    return rule.build(values, append_unknown=False)[1]  # type: ignore[index]


def _message(answer: Any) -> str:
    return str(answer.json["message"]) if answer.is_json else answer.get_data(as_text=True)


def _everything(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, read outside the requests' session."""
    with db.engine.connect() as connection:
        return {table.name: sorted(map(tuple, connection.execute(select(table))), key=repr)
                for table in db.metadata.sorted_tables}


def _stored_text_is_utf8(rows: dict[str, list[tuple[Any, ...]]]) -> None:
    for table, values in rows.items():
        for row in values:
            for value in row:
                text = value if isinstance(value, str) else json.dumps(value, default=str,
                                                                       ensure_ascii=False)
                text.encode("utf-8")  # raises on a lone surrogate
                assert "\\ud800" not in text.lower(), (table, row)


def test_the_api_refuses_a_lone_surrogate_naming_the_field(client, contributor, bearer) -> None:
    answer = client.post("/api/v1/sheets", headers=bearer(contributor),
                         json=sheet_data(actor_name=f"Association {LONE}"))
    assert answer.status_code == 400
    assert "« actor_name »" in answer.json["message"]
    assert "UTF-8" in answer.json["message"]
    # Raw bytes ED A0 80 (what "\ud800" would be in UTF-8) decode to the same lone surrogate.
    raw = client.post("/api/v1/sheets", headers={**bearer(contributor),
                                                 "Content-Type": "application/json"},
                      data=b'{"title": "Accueil \xed\xa0\x80"}')
    assert raw.status_code == 400 and "« title »" in raw.json["message"]
    assert client.get("/api/v1/sheets").json["total"] == 0


def test_the_field_is_named_inside_lists_and_objects() -> None:
    assert "« partners[1] »" in json_problem({"partners": ["Agence", f"x{LONE}"]})
    assert "« contact.name »" in json_problem({"contact": {"name": LONE}})
    assert "Nom de champ" in json_problem({f"a{LONE}": 1})
    assert json_problem({"title": "Café 😀 — « ok »", "tags": ["a"], "n": 1}) == ""


def test_every_write_route_refuses_a_lone_surrogate_and_stores_nothing(
        app, client, make_sheet, moderator, login, bearer) -> None:
    revision = make_sheet()
    headers = bearer(moderator)
    login(moderator)
    routes = _write_routes(app)
    assert len(routes) > 40  # the url_map was read, not an empty list
    body = {key: f"texte {LONE}" for key in (
        "title", "summary", "actor_name", "comment", "reason", "question", "answer", "label",
        "name", "email", "q", "city")}
    body["data"] = {"actor_name": f"Association {LONE}"}
    before = _everything(app)
    for method, rule in routes:
        url = _url(rule, revision.sheet.slug, revision.id)
        answer = client.open(url, method=method, json=body, headers=headers)
        assert answer.status_code == 400, (method, url, answer.status_code)
        assert "UTF-8" in _message(answer), (method, url)
    assert _everything(app) == before


def test_forms_cannot_carry_a_lone_surrogate(app, client, make_sheet, moderator, login) -> None:
    """Werkzeug decodes the bytes ED A0 80 of a form with replacement characters (or keeps
    them %-escaped): whatever a form route does with them, it never fails and stores only
    valid UTF-8."""
    revision = make_sheet()
    login(moderator)
    names = ("title", "summary", "actor_name", "comment", "reason", "question", "answer",
             "display_name", "email", "password", "label", "nom-display_name")
    form = "&".join(f"{name}=texte%ED%A0%80" for name in names).encode()
    for method, rule in _write_routes(app):
        url = _url(rule, revision.sheet.slug, revision.id)
        answer = client.open(url, method=method, data=form,
                             content_type="application/x-www-form-urlencoded")
        assert answer.status_code < 500, (method, url)
    _stored_text_is_utf8(_everything(app))


@pytest.mark.parametrize("body", ["[" * 400 + "]" * 400, '{"a":' * 400 + "1" + "}" * 400,
                                  "[" * 100_000])
def test_a_deeply_nested_body_is_a_400_with_one_short_log_line(
        client, make_sheet, body, caplog) -> None:
    slug = make_sheet().sheet.slug
    with caplog.at_level(logging.DEBUG):
        for method, url in (("POST", "/api/v1/sheets"), ("PATCH", f"/api/v1/sheets/{slug}"),
                            ("POST", "/api/v1/follows"), ("POST", "/fiches/apercu")):
            answer = client.open(url, method=method, data=body,
                                 content_type="application/json")
            assert answer.status_code == 400, (method, url)
            assert "trop imbriqué" in _message(answer)
    assert len(caplog.records) <= 4  # at most one line per request
    assert len(caplog.text) < 2000  # no traceback


def test_a_body_at_the_depth_limit_is_read() -> None:
    nested: Any = "x"
    for _ in range(MAX_JSON_DEPTH):  # MAX_JSON_DEPTH lists, one in the other
        nested = [nested]
    assert json_problem(nested) == ""
    assert "trop imbriqué" in json_problem([nested])


def test_text_stored_before_the_refusal_is_repaired_by_a_command(app, client,
                                                                 make_sheet) -> None:
    revision = make_sheet()
    slug = revision.sheet.slug
    # What the API accepted before: the JSON column keeps "\ud800" as an ASCII escape.
    db.session.execute(update(Revision).where(Revision.id == revision.id).values(
        data={**revision.data, "actor_name": f"Association {LONE}"}))
    commit()
    with pytest.raises(UnicodeEncodeError):  # the page cannot be encoded (a 500 in production)
        client.get(f"/fiches/{slug}")

    runner = app.test_cli_runner()
    listed = runner.invoke(args=["repair-text", "--dry-run"])
    assert listed.exit_code == 0 and f"revisions.data id={revision.id}" in listed.output
    assert "1 valeur(s) à réparer" in listed.output
    with pytest.raises(UnicodeEncodeError):  # --dry-run changed nothing
        client.get(f"/fiches/{slug}")

    repaired = runner.invoke(args=["repair-text"])
    assert repaired.exit_code == 0 and "1 valeur(s) réparée(s)" in repaired.output
    page = client.get(f"/fiches/{slug}")
    assert page.status_code == 200 and "Association \ufffd" in page.get_data(as_text=True)
    assert "0 valeur(s) réparée(s)" in runner.invoke(args=["repair-text"]).output
