"""Spam defence: honeypot, links from untrusted contributors, rate limits (French 429)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask, g, request_started
from sqlalchemy import select

from kb import create_app
from kb.auth.models import User
from kb.extensions import db
from kb.sheets import operations
from kb.sheets.fields import ValidationError
from kb.sheets.models import Sheet
from kb.transaction import commit
from tests.conftest import sheet_data

LINKS = "Voir https://a.example https://b.example http://c.example www.d.example"


def form_of(data):
    return {k: "\n".join(v) if isinstance(v, list) else v for k, v in data.items()}


# --- honeypot -------------------------------------------------------------------------------

def test_registration_with_the_honeypot_filled_is_refused(client):
    form = {"display_name": "Bot", "email": "bot@example.org", "password": "12345678abc",
            "confirm": "12345678abc"}
    assert 'name="homepage"' in client.get("/inscription").get_data(as_text=True)
    response = client.post("/inscription", data={**form, "homepage": "http://spam.example"})
    assert response.status_code == 400
    assert db.session.scalar(select(User)) is None
    assert client.post("/inscription", data={**form, "homepage": ""}).status_code == 302
    assert db.session.scalar(select(User.email)) == "bot@example.org"


def test_sheet_form_and_report_form_with_the_honeypot_filled_are_refused(client, login,
                                                                        contributor, make_sheet):
    login(contributor)
    assert 'name="homepage"' in client.get("/fiches/nouvelle").get_data(as_text=True)
    data = {**form_of(sheet_data(title="Piège")), "homepage": "x"}
    assert client.post("/fiches/nouvelle", data=data).status_code == 400
    assert db.session.scalar(select(Sheet).where(Sheet.slug == "piege")) is None
    slug = make_sheet().sheet.slug
    assert 'name="homepage"' in client.get(f"/fiches/{slug}/signaler").get_data(as_text=True)
    response = client.post(f"/fiches/{slug}/signaler", data={"reason": "spam", "homepage": "x"})
    assert response.status_code == 400


# --- links ----------------------------------------------------------------------------------

def test_untrusted_contributors_may_add_only_a_few_links(client, login, make_sheet, make_user,
                                                         contributor):
    with pytest.raises(ValidationError) as exc:
        operations.create_sheet(sheet_data(context=LINKS), contributor)
    assert "trop de liens" in exc.value.errors["context"]
    db.session.rollback()
    operations.create_sheet(sheet_data(context=LINKS), make_user(trusted=True))
    operations.create_sheet(sheet_data(context=LINKS, title="Trois liens suffisent"[:30]),
                            make_user("moderator"))
    assert operations.create_sheet(sheet_data(context="https://a.example https://b.example"),
                                   contributor).status == "pending"
    login(contributor)
    # A sheet of its own (the ones above would first trigger the duplicates confirmation).
    response = client.post("/fiches/nouvelle", data=form_of(sheet_data(
        title="Repair café itinérant", summary="", stakes="", method="", results="",
        actor_name="", city="Morlaix", tags=["réemploi"], partners=[], context=LINKS)))
    assert response.status_code == 422 and "Trop de liens" in response.get_data(as_text=True)


def test_links_already_in_the_sheet_do_not_count(make_sheet, contributor):
    first = make_sheet(further_reading=LINKS + " https://e.example https://f.example")
    edit = operations.edit_sheet(first.sheet, {"city": "Quimper"}, contributor, first.id)
    assert edit.status == "pending"
    with pytest.raises(ValidationError):
        operations.edit_sheet(first.sheet, {"results": LINKS.replace("example", "org")},
                              contributor, first.id)


def test_api_refuses_too_many_links_with_a_422(client, contributor, bearer):
    response = client.post("/api/v1/sheets", json=sheet_data(context=LINKS),
                           headers=bearer(contributor))
    assert response.status_code == 422 and "context" in response.json["fields"]


# --- rate limits ----------------------------------------------------------------------------

@pytest.fixture
def limited_app(app_config: dict[str, Any], pg_database: str | None):
    def make(**config: Any) -> Flask:
        app = create_app({**app_config, "RATELIMIT_ENABLED": True, **config})
        return app

    return make


def _run(app: Flask, pg_database: str | None, test) -> None:
    def fresh_g(sender: Flask, **extra: Any) -> None:  # as the `client` fixture does
        for key in list(g):
            g.pop(key)

    request_started.connect(fresh_g, app, weak=False)
    with app.app_context():
        if pg_database is None:
            db.create_all()
        try:
            test(app.test_client())
        finally:
            db.session.remove()
            db.engine.dispose()


def test_login_is_rate_limited_with_a_french_429(limited_app, pg_database):
    app = limited_app(KB_RATE_LIMIT_LOGIN="3 per minute")

    def test(client):
        for _ in range(3):
            assert client.post("/connexion", data={"email": "x@example.org",
                                                   "password": "faux"}).status_code == 200
        assert client.get("/connexion").status_code == 200  # only attempts count
        response = client.post("/connexion", data={"email": "x@example.org", "password": "faux"})
        assert response.status_code == 429
        assert "Trop de tentatives" in response.get_data(as_text=True)
        assert "Retry-After" in response.headers
        other = client.post("/connexion", data={"email": "x@example.org", "password": "faux"},
                            environ_base={"REMOTE_ADDR": "203.0.113.9"})
        assert other.status_code == 200  # counted per client

    _run(app, pg_database, test)


def test_reports_and_registration_are_rate_limited(limited_app, pg_database, make_sheet):
    app = limited_app(KB_RATE_LIMIT_REPORT="2 per hour", KB_RATE_LIMIT_REGISTER="1 per hour")

    def test(client):
        slug = make_sheet().sheet.slug
        statuses = [client.post(f"/api/v1/sheets/{slug}/reports",
                                json={"reason": reason, "comment": "Voir ailleurs"}).status_code
                    for reason in ("other", "outdated", "duplicate")]
        assert statuses == [201, 201, 429]
        response = client.post(f"/fiches/{slug}/signaler", data={"reason": "spam"})
        assert response.status_code == 429  # web and API share the report budget
        body = client.post(f"/api/v1/sheets/{slug}/reports", json={"reason": "spam"}).json
        assert body["error"] == "too_many_requests" and "Trop de tentatives" in body["message"]
        form = {"display_name": "A", "email": "a@example.org", "password": "12345678abc",
                "confirm": "12345678abc"}
        assert client.post("/inscription", data=form).status_code == 302
        # Counted per address typed (tests/test_shared_office_limits.py: per client address).
        assert client.post("/inscription", data=form).status_code == 429
        assert client.post("/inscription", data={**form, "email": "b@example.org"}
                           ).status_code == 302

    _run(app, pg_database, test)


def test_submissions_are_rate_limited_per_account(limited_app, pg_database):
    app = limited_app(KB_RATE_LIMIT_SUBMIT="2 per hour")

    def test(client):
        from kb.auth.operations import create_token, create_user

        user = create_user("c@example.org", "mot-de-passe-solide")
        token = create_token(user)
        commit()
        headers = {"Authorization": f"Bearer {token}"}
        statuses = [client.post("/api/v1/sheets", json=sheet_data(title=f"Fiche {n}"),
                                headers=headers).status_code for n in range(3)]
        assert statuses == [202, 202, 429]

    _run(app, pg_database, test)


def _redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_timeout=1).ping())
    except Exception:  # noqa: BLE001
        return False


@pytest.mark.skipif(not _redis_up(), reason="Redis is not running on 127.0.0.1:6379")
def test_rate_limits_use_redis_when_configured(limited_app, pg_database):
    import redis

    prefix_ip = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"
    config = {"RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
              "KB_RATE_LIMIT_LOGIN": "2 per minute"}
    first, second = limited_app(**config), limited_app(**config)

    codes: list[int] = []
    for app in (first, second, first):
        def test(client, app=app):
            codes.append(client.post("/connexion", data={"email": "x@example.org",
                                                         "password": "faux"},
                                     environ_base={"REMOTE_ADDR": prefix_ip}).status_code)
        _run(app, pg_database, test)
    # Two apps (two workers) share one budget through Redis.
    assert codes == [200, 200, 429]
    keys = redis.Redis.from_url("redis://127.0.0.1:6379/0").keys(f"*{prefix_ip}*")
    assert keys
