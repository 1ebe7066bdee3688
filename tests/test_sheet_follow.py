"""« Suivre cette fiche »: a sheet page offers to follow it; the digest says when it changes."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from flask import Flask
from flask.testing import FlaskClient

from kb.auth.models import User
from kb.follows import operations
from kb.sheets import operations as sheets
from kb.sheets.models import Revision
from kb.transaction import commit
from tests.test_follows import T0, _at, _published_at


def _page(client: FlaskClient, slug: str) -> str:
    return client.get(f"/fiches/{slug}").get_data(as_text=True)


def test_anonymous_readers_are_offered_to_sign_in_and_come_back(
        client: FlaskClient, make_sheet: Callable[..., Revision]) -> None:
    slug = make_sheet().sheet.slug
    page = _page(client, slug)
    link = re.search(r'<a href="([^"]+)">Suivre cette fiche</a>', page)
    assert link, "the sheet page offers to follow it"
    url = urlsplit(link.group(1).replace("&amp;", "&"))
    assert url.path == "/connexion" and parse_qs(url.query)["next"] == [f"/fiches/{slug}"]
    assert f'action="/fiches/{slug}/suivre"' not in page


def test_signed_in_readers_follow_with_a_form_then_can_stop(
        app: Flask, client: FlaskClient, login: Callable[[User | None], None],
        make_user: Callable[..., User], make_sheet: Callable[..., Revision]) -> None:
    sheet = make_sheet().sheet
    reader = make_user("contributor")
    login(reader)
    page = _page(client, sheet.slug)
    form = re.search(rf'<form method="post" action="/fiches/{sheet.slug}/suivre".*?</form>', page, re.S)
    assert form and "csrf_token" in form.group(0) and "Suivre cette fiche" in form.group(0)

    response = client.post(f"/fiches/{sheet.slug}/suivre")
    assert response.status_code == 302 and response.headers["Location"] == f"/fiches/{sheet.slug}"
    client.post(f"/fiches/{sheet.slug}/suivre")  # twice: still one follow
    follows = operations.follows_of(reader)
    assert [(f.kind, f.label) for f in follows] == [("sheet", "Accueil inconditionnel en mairie")]
    page = _page(client, sheet.slug)
    assert "Ne plus suivre" in page and f'action="/fiches/{sheet.slug}/ne-plus-suivre"' in page
    mine = client.get("/mes-suivis").get_data(as_text=True)
    assert f'href="/fiches/{sheet.slug}">Accueil inconditionnel en mairie</a>' in mine

    assert client.post(f"/fiches/{sheet.slug}/ne-plus-suivre").status_code == 302
    assert operations.follows_of(reader) == []
    assert "Suivre cette fiche" in _page(client, sheet.slug)


def test_following_needs_the_form_token(
        app: Flask, client: FlaskClient, login: Callable[[User | None], None],
        make_user: Callable[..., User], make_sheet: Callable[..., Revision]) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    slug = make_sheet().sheet.slug
    reader = make_user("contributor")
    login(reader)
    assert client.post(f"/fiches/{slug}/suivre").status_code == 400
    assert operations.follows_of(reader) == []


def test_the_letter_tells_when_a_followed_sheet_changes_and_only_then(
        app: Flask, client: FlaskClient, login: Callable[[User | None], None],
        make_user: Callable[..., User], make_sheet: Callable[..., Revision]) -> None:
    followed = _published_at(make_sheet(), -24)
    other = _published_at(make_sheet(title="Une autre fiche", tags=["accueil"]), -24)
    reader = make_user("contributor", email="lectrice@example.org")
    login(reader)
    client.post(f"/fiches/{followed.sheet.slug}/suivre")
    operations.follows_of(reader)[0].created_at = T0
    commit()
    assert operations.updates_for(reader, _at(1)) == []
    edit = sheets.edit_sheet(other.sheet, {"summary": "Changée."}, make_user("moderator"), other.id)
    commit()
    _published_at(edit, 2, new=False)
    assert operations.updates_for(reader, _at(1)) == []  # another sheet: not news
    edit = sheets.edit_sheet(followed.sheet, {"summary": "Relue."}, make_user("moderator"),
                             followed.id)
    commit()
    _published_at(edit, 4, new=False)
    assert [u.sheet.id for u in operations.updates_for(reader, _at(3))] == [followed.sheet.id]
    assert operations.updates_for(reader, _at(5)) == []  # nothing since the last letter


def test_the_follows_api_lists_a_sheet_follow(
        client: FlaskClient, make_user: Callable[..., User],
        make_sheet: Callable[..., Revision], bearer: Callable[[User], dict[str, str]]) -> None:
    sheet = make_sheet().sheet
    reader = make_user("contributor")
    operations.follow_sheet(reader, sheet)
    commit()
    items = client.get("/api/v1/follows", headers=bearer(reader)).json["items"]  # type: ignore[index]
    assert [(i["kind"], i["params"]) for i in items] == [("sheet", {"sheet": sheet.id})]
