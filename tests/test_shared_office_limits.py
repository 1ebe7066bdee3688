"""Issue 20, item 4: colleagues behind one office IP address can all register; one inbox is
not flooded. The forms that mail a typed address are limited per address typed, within a much
larger budget per client address."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask, g, request_started
from flask.testing import FlaskClient

from kb import create_app
from kb.extensions import db

OFFICE = {"REMOTE_ADDR": "198.51.100.7"}  # one public address for a whole training room


@pytest.fixture
def limited(app_config: dict[str, Any], pg_database: str | None
            ) -> Iterator[Callable[..., FlaskClient]]:
    apps: list[Flask] = []

    def make(**config: Any) -> FlaskClient:
        app = create_app({**app_config, "RATELIMIT_ENABLED": True, **config})

        def fresh_g(sender: Flask, **extra: Any) -> None:  # as the `client` fixture does
            for key in list(g):
                g.pop(key)

        request_started.connect(fresh_g, app, weak=False)
        context = app.app_context()
        context.push()
        if pg_database is None:
            db.create_all()
        apps.append(app)
        return app.test_client()

    yield make
    for _ in apps:
        db.session.remove()
        db.engine.dispose()


def _register(client: FlaskClient, email: str) -> int:
    form = {"display_name": "Agent", "email": email, "password": "12345678abc",
            "confirm": "12345678abc"}
    return client.post("/inscription", data=form, environ_base=OFFICE).status_code


def test_twenty_colleagues_register_from_one_office_address(limited: Any) -> None:
    client = limited()  # the default limits
    statuses = [_register(client, f"agent{n}@mairie.example.org") for n in range(20)]
    assert statuses == [302] * 20


def test_six_resets_of_one_address_are_limited_in_french(limited: Any) -> None:
    client = limited()
    # The same address however capitalised.
    typed = ["agent@example.org", "Agent@Example.org", "AGENT@EXAMPLE.ORG", "agent@example.org",
             "agent@EXAMPLE.org"]
    for email in typed:
        response = client.post("/connexion/mot-de-passe-oublie", data={"email": email},
                               environ_base=OFFICE)
        assert response.status_code == 302
    sixth = client.post("/connexion/mot-de-passe-oublie", data={"email": "agent@example.org"},
                        environ_base={"REMOTE_ADDR": "203.0.113.50"})  # from anywhere
    assert sixth.status_code == 429
    assert "Trop de tentatives en peu de temps" in sixth.get_data(as_text=True)
    assert "Retry-After" in sixth.headers
    # A colleague's address is another budget.
    other = client.post("/connexion/mot-de-passe-oublie", data={"email": "voisin@example.org"},
                        environ_base=OFFICE)
    assert other.status_code == 302


def test_one_client_address_still_has_a_budget(limited: Any) -> None:
    client = limited(KB_RATE_LIMIT_REGISTER_IP="3 per hour")
    statuses = [_register(client, f"agent{n}@example.org") for n in range(4)]
    assert statuses == [302, 302, 302, 429]
    elsewhere = client.post("/inscription/renvoyer", data={"email": "agent9@example.org"},
                            environ_base={"REMOTE_ADDR": "203.0.113.50"})
    assert elsewhere.status_code == 302  # another office
