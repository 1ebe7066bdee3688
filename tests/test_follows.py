"""Following a theme, a territory or a search: what changed comes in one section of the letter
(kb/letters) whatever the number of follows, nothing when nothing changed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kb.auth.models import User
from kb.auth.preferences import letter_sections, set_letter_period
from kb.extensions import db
from kb.follows import operations
from kb.letters.operations import build_letters
from kb.sheets import operations as sheets
from kb.sheets.models import Revision
from kb.transaction import commit, mark_changed
from tests.letter_helpers import Queued, queued_fixture  # noqa: F401  (fixture "queued")


@pytest.fixture
def follower(make_user: Callable[..., User]) -> User:
    return make_user("contributor", email="suiveuse@example.org", name="Sophie Suiveuse")


# A Monday far from any week or month boundary; every time in these tests is set from it.
T0 = datetime(2030, 1, 7, 9, 0)


def _at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def _follow(client: FlaskClient, user: User, *params: dict[str, str]) -> None:
    for p in params:
        assert client.post("/suivre", data=p).status_code == 302
    for row in operations.follows_of(user):
        row.created_at = T0
    commit()


def _published_at(revision: Revision, hours: float, new: bool = True) -> Revision:
    """Date a sheet's publication, or an update's when not `new` (the index is told, as after
    any change)."""
    sheet = revision.sheet
    sheet.updated_at = _at(hours)
    if new:
        sheet.created_at = sheet.updated_at
    mark_changed([sheet])
    commit()
    return revision


FIVE = ({"tag": "accueil"}, {"tag": "numerique"}, {"department": "29"}, {"q": "mairie"},
        {"q": "insertion", "scale": "commune"})


def _letters(queued: Queued, user: User) -> list[str]:
    return [m.body for m in queued.letters(user.email)]


def _weekly_on_monday(user: User) -> None:
    set_letter_period(user, "week", 0)  # T0 is a Monday: each _at(24 * 7 * n + 1) a new period
    commit()


def test_five_follows_one_section_each_sheet_once_and_nothing_when_nothing_changed(
        app: Flask, client: FlaskClient, login: Callable[[User | None], None], queued: Queued,
        follower: User, make_sheet: Callable[..., Revision]) -> None:
    login(follower)
    _weekly_on_monday(follower)
    _follow(client, follower, *FIVE)
    assert len(operations.follows_of(follower)) == 5
    # Nothing published since the follows were made: no letter this week.
    build_letters(_at(1))
    assert _letters(queued, follower) == []
    # One sheet matching all five follows, one matching two: in next week's letter.
    _published_at(make_sheet(title="Accueil en mairie pour l'insertion",
                             tags=["accueil", "numerique"], summary="Insertion et accueil."), 2)
    _published_at(make_sheet(title="Atelier numérique", tags=["numerique"], department="56",
                             city="Vannes", summary="Ateliers."), 2)
    build_letters(_at(3))
    assert _letters(queued, follower) == []  # this week's letter was decided: empty
    build_letters(_at(24 * 7 + 1))
    [body] = _letters(queued, follower)
    assert body.count("Accueil en mairie pour l'insertion") == 1  # listed once, not per follow
    assert "Atelier numérique" in body
    # Twice in the same period: nothing more, even with new changes.
    _published_at(make_sheet(title="Accueil numérique à Quimper", tags=["accueil"]), 24 * 7 + 2)
    build_letters(_at(24 * 7 + 3))
    assert len(_letters(queued, follower)) == 1
    # Next week: the new sheet, and only it.
    build_letters(_at(24 * 14 + 1))
    second = _letters(queued, follower)[1]
    assert "Accueil numérique à Quimper" in second and "Atelier numérique" not in second
    # And the week after, with nothing new: nothing.
    build_letters(_at(24 * 21 + 1))
    assert len(_letters(queued, follower)) == 2


def test_a_letter_lists_updates_of_followed_sheets_but_never_pending_text(
        app: Flask, client: FlaskClient, login: Callable[[User | None], None], queued: Queued,
        follower: User, make_user: Callable[..., User], make_sheet: Callable[..., Revision]
) -> None:
    revision = _published_at(make_sheet(title="Accueil partagé", tags=["accueil"]), -24)
    login(follower)
    _weekly_on_monday(follower)
    _follow(client, follower, {"tag": "accueil"})
    untrusted = make_user("contributor")
    sheets.edit_sheet(revision.sheet, {"title": "Titre en attente zqpending"}, untrusted,
                      revision.id)
    commit()
    build_letters(_at(1))
    assert _letters(queued, follower) == []  # a pending proposal is not a change readers see
    trusted = make_user("contributor", trusted=True)
    edit = sheets.edit_sheet(revision.sheet, {"summary": "Résumé relu."}, trusted, revision.id)
    commit()
    _published_at(edit, 2, new=False)
    build_letters(_at(24 * 7 + 1))
    [body] = _letters(queued, follower)
    assert "Accueil partagé" in body and "zqpending" not in body
    assert "(mise à jour — suivi : mots-clés : accueil)" in body  # an update, not a new sheet


def test_links_of_the_former_digest_still_unsubscribe_from_the_follows_section(
        app: Flask, client: FlaskClient, login: Callable[[User | None], None], queued: Queued,
        follower: User, make_sheet: Callable[..., Revision]) -> None:
    login(follower)
    _follow(client, follower, {"tag": "accueil"})
    login(None)  # the mail client posts with no session and no CSRF token
    app.config["WTF_CSRF_ENABLED"] = True
    path = "/suivis/desabonner/" + operations._serializer().dumps(follower.id)
    assert client.get(path).status_code == 200  # a GET (link scanner) changes nothing
    assert "suivis" in letter_sections(db.session.get(User, follower.id))
    assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    db.session.expire_all()
    assert "suivis" not in letter_sections(db.session.get(User, follower.id))
    _published_at(make_sheet(title="Accueil de nuit", tags=["accueil"]), 24 * 7)
    build_letters(_at(24 * 7 + 1))
    assert _letters(queued, follower) == []
    assert client.post("/suivis/desabonner/forged").status_code == 404


def test_the_manage_page_points_to_the_letter_and_removes_follows(
        client: FlaskClient, login: Callable[[User | None], None], follower: User) -> None:
    login(follower)
    _follow(client, follower, {"tag": "accueil"})
    page = client.get("/mes-suivis").get_data(as_text=True)
    assert "mots-clés : accueil" in page.lower() and "La lettre des fiches" in page
    assert "chaque mois (le premier mercredi)" in page and "/compte#notifications" in page
    follow_id = operations.follows_of(follower)[0].id
    client.post(f"/mes-suivis/{follow_id}/supprimer")
    assert operations.follows_of(follower) == []


def test_nobody_removes_another_person_s_follow(
        client: FlaskClient, login: Callable[[User | None], None], follower: User,
        make_user: Callable[..., User], bearer: Callable[[User], dict[str, str]]) -> None:
    login(follower)
    client.post("/suivre", data={"tag": "accueil"})
    follow_id = operations.follows_of(follower)[0].id
    other = make_user("contributor")
    login(other)
    assert client.post(f"/mes-suivis/{follow_id}/supprimer").status_code == 404
    assert client.delete(f"/api/v1/follows/{follow_id}", headers=bearer(other)).status_code == 404
    assert len(operations.follows_of(follower)) == 1


def test_follow_buttons_on_search_results(
        client: FlaskClient, login: Callable[[User | None], None], follower: User,
        make_sheet: Callable[..., Revision]) -> None:
    make_sheet()
    anonymous = client.get("/recherche?q=accueil").get_data(as_text=True)
    assert "pour suivre cette page" in anonymous
    login(follower)
    page = client.get("/recherche?q=accueil&department=29").get_data(as_text=True)
    assert 'action="/suivre"' in page and 'name="department" value="29"' in page


def test_api_follows_create_list_delete(
        client: FlaskClient, follower: User, bearer: Callable[[User], dict[str, str]]) -> None:
    headers = bearer(follower)
    assert client.post("/api/v1/follows", json={"tag": "accueil"}).status_code == 401
    created = client.post("/api/v1/follows", headers=headers, json={"tag": "accueil"})
    assert created.status_code == 201 and created.get_json()["kind"] == "tag"
    territory = client.post("/api/v1/follows", headers=headers, json={"territory": "29"})
    assert territory.status_code == 201 and territory.get_json()["params"] == {"department": "29"}
    assert client.post("/api/v1/follows", headers=headers, json={"q": "accueil mairie"}).status_code == 201
    assert client.post("/api/v1/follows", headers=headers, json={"territory": "zz"}).status_code == 422
    assert client.post("/api/v1/follows", headers=headers, json={}).status_code == 422
    assert client.post("/api/v1/follows", headers=headers, json=[1]).status_code == 422
    # Following the same thing twice keeps one follow.
    client.post("/api/v1/follows", headers=headers, json={"tag": "accueil"})
    items = client.get("/api/v1/follows", headers=headers).get_json()["items"]
    assert len(items) == 3
    assert client.delete(f"/api/v1/follows/{items[0]['id']}", headers=headers).status_code == 204
    assert len(client.get("/api/v1/follows", headers=headers).get_json()["items"]) == 2
    spec = client.get("/api/openapi.json").get_json()
    assert {"get", "post"} <= set(spec["paths"]["/api/v1/follows"])
