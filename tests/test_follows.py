"""Following a theme, a territory or a search: exactly one digest per person per period whatever
the number of follows, none when nothing changed, one-click unsubscribe (RFC 8058)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kb.auth.models import User
from kb.extensions import db
from kb.follows import operations
from kb.sheets import operations as sheets
from kb.sheets.models import Revision
from kb.transaction import commit, mark_changed
from tests.smtp_server import Inbox


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


def test_five_follows_one_digest_per_period_and_none_when_nothing_changed(
        app: Flask, client: FlaskClient, login: Callable[[User | None], None], smtp: Inbox,
        follower: User, make_sheet: Callable[..., Revision]) -> None:
    login(follower)
    _follow(client, follower, *FIVE)
    assert len(operations.follows_of(follower)) == 5
    # Nothing published since the follows were made: no mail.
    assert operations.send_digests(_at(1)).nothing_new == 1
    assert smtp.to(follower.email) == []
    # One sheet matching all five follows, one matching two.
    _published_at(make_sheet(title="Accueil en mairie pour l'insertion",
                             tags=["accueil", "numerique"], summary="Insertion et accueil."), 2)
    _published_at(make_sheet(title="Atelier numérique", tags=["numerique"], department="56",
                             city="Vannes", summary="Ateliers."), 2)
    run = operations.send_digests(_at(3))
    assert [(u.email, n) for u, n in run.sent] == [(follower.email, 2)]
    assert len(smtp.to(follower.email)) == 1
    body = Inbox.body(smtp.to(follower.email)[0])
    assert body.count("Accueil en mairie pour l'insertion") == 1  # listed once, not per follow
    # Twice in the same period: nothing more, even with new changes.
    _published_at(make_sheet(title="Accueil numérique à Quimper", tags=["accueil"]), 4)
    again = operations.send_digests(_at(5))
    assert again.already == 1 and not again.sent
    assert len(smtp.to(follower.email)) == 1
    # Next week: the new sheet, and only it.
    operations.send_digests(_at(24 * 7 + 1))
    assert len(smtp.to(follower.email)) == 2
    second = Inbox.body(smtp.to(follower.email)[1])
    assert "Accueil numérique à Quimper" in second and "Atelier numérique" not in second
    # And the week after, with nothing new: nothing.
    operations.send_digests(_at(24 * 14 + 1))
    assert len(smtp.to(follower.email)) == 2


def test_a_digest_lists_updates_of_followed_sheets_but_never_pending_text(
        app: Flask, client: FlaskClient, login: Callable[[User | None], None], smtp: Inbox,
        follower: User, make_user: Callable[..., User], make_sheet: Callable[..., Revision]
) -> None:
    revision = _published_at(make_sheet(title="Accueil partagé", tags=["accueil"]), -24)
    login(follower)
    _follow(client, follower, {"tag": "accueil"})
    untrusted = make_user("contributor")
    sheets.edit_sheet(revision.sheet, {"title": "Titre en attente zqpending"}, untrusted,
                      revision.id)
    commit()
    operations.send_digests(_at(1))
    assert smtp.to(follower.email) == []  # a pending proposal is not a change readers can see
    trusted = make_user("contributor", trusted=True)
    edit = sheets.edit_sheet(revision.sheet, {"summary": "Résumé relu."}, trusted, revision.id)
    commit()
    _published_at(edit, 2, new=False)
    operations.send_digests(_at(3))
    body = Inbox.body(smtp.to(follower.email)[0])
    assert "Accueil partagé" in body and "zqpending" not in body
    assert "(nouvelle)" not in body  # an update, not a new sheet


def test_one_click_unsubscribe_headers_and_post(
        app: Flask, client: FlaskClient, login: Callable[[User | None], None], smtp: Inbox,
        follower: User, make_sheet: Callable[..., Revision]) -> None:
    login(follower)
    _follow(client, follower, {"tag": "accueil"})
    _published_at(make_sheet(title="Accueil partagé", tags=["accueil"]), 1)
    operations.send_digests(_at(2))
    message = smtp.to(follower.email)[0]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = re.fullmatch(r"<http://kb\.test(/suivis/desabonner/\S+)>", message["List-Unsubscribe"].strip())
    assert url
    login(None)  # the mail client posts with no session and no CSRF token
    assert client.get(url.group(1)).status_code == 200  # a GET (link scanner) changes nothing
    assert operations.settings_for(follower).period == "week"
    response = client.post(url.group(1), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    db.session.expire_all()
    assert operations.settings_for(follower).period == "off"
    _published_at(make_sheet(title="Accueil de nuit", tags=["accueil"]), 24 * 7)
    operations.send_digests(_at(24 * 7 + 1))
    assert len(smtp.to(follower.email)) == 1
    assert client.post("/suivis/desabonner/forged").status_code == 404


def test_monthly_period_and_manage_page(
        client: FlaskClient, login: Callable[[User | None], None], smtp: Inbox, follower: User,
        make_sheet: Callable[..., Revision]) -> None:
    login(follower)
    _follow(client, follower, {"tag": "accueil"})
    client.post("/mes-suivis/frequence", data={"period": "month"})
    page = client.get("/mes-suivis").get_data(as_text=True)
    assert "mots-clés : accueil" in page.lower() and 'value="month" checked' in page
    _published_at(make_sheet(title="Accueil partagé", tags=["accueil"]), 1)
    operations.send_digests(_at(2))
    _published_at(make_sheet(title="Accueil de nuit", tags=["accueil"]), 3)
    operations.send_digests(_at(24 * 8))  # a week later, same month
    assert len(smtp.to(follower.email)) == 1
    operations.send_digests(_at(24 * 31))  # next month
    assert len(smtp.to(follower.email)) == 2
    follow_id = operations.follows_of(follower)[0].id
    client.post(f"/mes-suivis/{follow_id}/supprimer")
    assert operations.follows_of(follower) == []
    assert client.post("/mes-suivis/frequence", data={"period": "daily"}).status_code == 422


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


def test_two_digest_runs_at_once_send_one_mail(
        app: Flask, client: FlaskClient, login: Callable[[User | None], None], smtp: Inbox,
        follower: User, make_sheet: Callable[..., Revision], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The period is claimed by a unique row before the mail goes: a run that computed the same
    digest while another run claimed and sent it finds the claim and sends nothing."""
    login(follower)
    _follow(client, follower, {"tag": "accueil"})
    _published_at(make_sheet(title="Accueil partagé", tags=["accueil"]), 1)
    when = _at(2)
    real_matching = operations._matching

    def other_run_claims_meanwhile(params: dict[str, str], since: datetime) -> object:
        with db.engine.begin() as other:  # another process, its own connection
            other.execute(operations.FollowDigest.__table__.insert().values(
                user_id=follower.id, period_key=operations.period_key("week", when),
                sent_at=when, sheet_ids=[]))
        return real_matching(params, since)

    monkeypatch.setattr(operations, "_matching", other_run_claims_meanwhile)
    run = operations.send_digests(when)
    assert not run.sent and run.already == 1 and smtp.to(follower.email) == []
