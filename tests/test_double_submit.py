"""A form sent twice is saved once; two sheets with one title at once both get saved.

The parallel tests send real requests from several threads at the same moment (a barrier),
against the test database: a file-based SQLite, or PostgreSQL with KB_TEST_DATABASE_URL.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from kb.auth.models import User
from kb.extensions import db
from kb.sheets import operations, submissions
from kb.sheets.models import Revision, Sheet
from kb.sheets.submissions import Submission
from kb.transaction import commit
from tests.conftest import sheet_data

THREADS = 4


def _form(data: dict[str, Any], **extra: str) -> dict[str, str]:
    form = {k: "\n".join(v) if isinstance(v, list) else v for k, v in data.items()}
    return {**form, **extra}


def _client(app: Flask, user: User) -> FlaskClient:
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
    return client


def _token(client: FlaskClient, url: str = "/fiches/nouvelle") -> str:
    page = client.get(url).get_data(as_text=True)
    match = re.search(r'name="submission" type="hidden" value="([0-9a-f]{32})"', page) \
        or re.search(r'type="hidden" name="submission" value="([0-9a-f]{32})"', page) \
        or re.search(r'id="submission" name="submission" type="hidden" value="([0-9a-f]{32})"', page)
    assert match, "no submission token in the form"
    return match.group(1)


def _at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads released together; return their results (or exceptions)."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - reported by the assertions
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def _count(model: Any, *where: Any) -> int:
    db.session.rollback()  # a fresh snapshot: the rows the threads committed
    return db.session.scalar(select(func.count(model.id)).where(*where)) or 0


def test_the_same_form_sent_several_times_at_once_saves_one_sheet(app, contributor):
    clients = [_client(app, contributor) for _ in range(THREADS)]
    data = _form(sheet_data(), submission=_token(clients[0]))

    responses = _at_once([lambda c=c: c.post("/fiches/nouvelle", data=data) for c in clients])

    assert [getattr(r, "status_code", r) for r in responses] == [302] * THREADS
    assert len({r.headers["Location"] for r in responses}) == 1
    assert _count(Sheet) == 1
    assert _count(Revision) == 1
    assert _count(Submission) == 1
    sheet = db.session.scalar(select(Sheet))
    assert responses[0].headers["Location"].startswith(f"/fiches/{sheet.slug}?revision=")
    # Every send is told what the first one was told: saved, waiting for a moderator.
    for client in clients:
        page = client.get(responses[0].headers["Location"]).get_data(as_text=True)
        assert "publiée après relecture" in page


@pytest.fixture
def slow_slug_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    """Widen the window between "this slug is free" and the insert, where the race happens."""
    real = operations.unique_slug

    def slow(title: str) -> str:
        slug = real(title)
        time.sleep(0.15)
        return slug

    monkeypatch.setattr(operations, "unique_slug", slow)


def test_sheets_with_the_same_title_sent_at_once_all_get_a_slug(app, make_user, slow_slug_lookup):
    authors = [make_user("moderator") for _ in range(THREADS)]
    clients = [_client(app, author) for author in authors]
    # Each writer confirms the initiative is another one (the others' sheets may be saved first).
    towns = ["Brest", "Quimper", "Morlaix", "Concarneau", "Landerneau", "Douarnenez"]  # all in 29
    data = [_form(sheet_data(city=towns[i]), submission=_token(c), duplicates_seen="1",
                  distinct="1", distinct_reason="Une autre ville.") for i, c in enumerate(clients)]

    responses = _at_once([lambda c=c, d=d: c.post("/fiches/nouvelle", data=d)
                          for c, d in zip(clients, data, strict=True)])

    assert [getattr(r, "status_code", r) for r in responses] == [302] * THREADS
    slugs = sorted(db.session.scalars(select(Sheet.slug)))
    assert slugs == sorted(["accueil-inconditionnel-en-mairie"]
                           + [f"accueil-inconditionnel-en-mairie-{n}" for n in range(2, THREADS + 1)])
    assert {r.headers["Location"].split("?")[0] for r in responses} == {f"/fiches/{s}" for s in slugs}


def test_api_sheets_with_the_same_title_sent_at_once_all_get_a_slug(app, make_user, bearer,
                                                                   slow_slug_lookup):
    headers = [bearer(make_user("moderator")) for _ in range(THREADS)]
    clients = [app.test_client() for _ in range(THREADS)]

    responses = _at_once([lambda c=c, h=h: c.post("/api/v1/sheets", json=sheet_data(), headers=h)
                          for c, h in zip(clients, headers, strict=True)])

    assert [getattr(r, "status_code", r) for r in responses] == [201] * THREADS
    assert len({r.get_json()["slug"] for r in responses}) == THREADS
    assert _count(Sheet) == THREADS


def test_the_same_edit_sent_several_times_at_once_saves_one_revision(app, make_sheet, moderator):
    sheet = make_sheet(author=moderator).sheet
    url = f"/fiches/{sheet.slug}/modifier"
    clients = [_client(app, moderator) for _ in range(THREADS)]
    data = _form(sheet_data(summary="Un résumé revu."), submission=_token(clients[0], url),
                 base_revision=str(sheet.approved_revision_id))

    responses = _at_once([lambda c=c: c.post(url, data=data) for c in clients])

    assert [getattr(r, "status_code", r) for r in responses] == [302] * THREADS
    assert len({r.headers["Location"] for r in responses}) == 1
    assert _count(Revision) == 2


def test_a_form_sent_again_later_returns_the_same_sheet(client, login, contributor):
    login(contributor)
    data = _form(sheet_data(), submission=_token(client))
    first = client.post("/fiches/nouvelle", data=data)
    again = client.post("/fiches/nouvelle", data=data)
    assert first.status_code == again.status_code == 302
    assert again.headers["Location"] == first.headers["Location"]
    assert _count(Sheet) == 1


def test_a_form_sent_again_with_changes_keeps_the_text_as_an_edit(client, login, contributor):
    login(contributor)
    token = _token(client)
    first = client.post("/fiches/nouvelle", data=_form(sheet_data(), submission=token))
    slug = first.headers["Location"].split("?")[0].rsplit("/", 1)[1]

    # Back in the browser, a change, sent again: nothing saved twice, nothing lost.
    changed = client.post("/fiches/nouvelle",
                          data=_form(sheet_data(summary="Ma phrase ajoutée après coup."),
                                     submission=token))
    page = changed.get_data(as_text=True)
    assert changed.status_code == 409
    assert "Ma phrase ajoutée après coup." in page
    assert "Ce formulaire a déjà été envoyé" in page
    assert f'action="/fiches/{slug}/modifier"' in page
    assert _count(Sheet) == 1

    # Sending that page saves the change as an edit of the same sheet.
    revision_id = re.search(r'name="base_revision" type="hidden" value="(\d+)"', page) \
        or re.search(r'id="base_revision" name="base_revision" type="hidden" value="(\d+)"', page)
    assert revision_id
    new_token = re.search(r'name="submission" type="hidden" value="([0-9a-f]{32})"', page)
    assert new_token and new_token.group(1) != token
    saved = client.post(f"/fiches/{slug}/modifier", data=_form(
        sheet_data(summary="Ma phrase ajoutée après coup."), submission=new_token.group(1),
        base_revision=revision_id.group(1)))
    assert saved.status_code == 302
    assert _count(Sheet) == 1
    assert _count(Revision) == 2


def test_a_form_with_errors_keeps_its_token_for_the_corrected_send(client, login, contributor):
    login(contributor)
    token = _token(client)
    refused = client.post("/fiches/nouvelle", data=_form(sheet_data(title=""), submission=token))
    assert refused.status_code == 422
    assert token in refused.get_data(as_text=True)
    saved = client.post("/fiches/nouvelle", data=_form(sheet_data(), submission=token))
    assert saved.status_code == 302
    assert _count(Sheet) == 1


def test_a_form_without_token_is_still_saved(client, login, contributor):
    login(contributor)
    assert client.post("/fiches/nouvelle", data=_form(sheet_data())).status_code == 302
    assert client.post("/fiches/nouvelle",
                       data=_form(sheet_data(), submission="pas-un-jeton")).status_code in (302, 422)
    assert _count(Sheet) >= 1


def test_a_slug_taken_between_lookup_and_insert_gives_the_next_one(app, make_sheet, moderator,
                                                                  monkeypatch):
    """The race, made certain: the lookup says the slug is free, another request has taken it."""
    taken = make_sheet(author=moderator).sheet.slug
    looked_up: list[str] = []
    real = operations.unique_slug

    def stale_lookup(title: str) -> str:
        looked_up.append(title)
        return taken if len(looked_up) == 1 else real(title)

    monkeypatch.setattr(operations, "unique_slug", stale_lookup)
    revision = operations.create_sheet(sheet_data(), moderator)
    commit()
    assert revision.sheet.slug == f"{taken}-2"
    assert len(looked_up) == 2
    assert _count(Sheet) == 2


def test_a_token_claimed_between_lookup_and_insert_gives_the_first_sheet(app, contributor,
                                                                        monkeypatch):
    """The other race, made certain: the lookup misses a claim another request just committed."""
    data = sheet_data()
    token = submissions.new_token()
    first = submissions.claim(token, contributor.id, data)
    revision = operations.create_sheet(data, contributor)
    first.done(revision)
    commit()

    real_find = submissions._find
    calls: list[int] = []

    def stale_find(user_id: int, token: str) -> Submission | None:
        calls.append(user_id)
        return None if len(calls) == 1 else real_find(user_id, token)

    monkeypatch.setattr(submissions, "_find", stale_find)
    second = submissions.claim(token, contributor.id, data)
    assert second.previous is not None and second.previous.id == revision.id
    assert second.same_content
    db.session.rollback()
    assert _count(Submission) == 1


@pytest.mark.parametrize("value", ["", None, "abc", "0" * 31])
def test_only_well_formed_tokens_are_claimed(value):
    assert submissions.parse_token(value) is None
