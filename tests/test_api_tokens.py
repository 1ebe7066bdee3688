"""API tokens end with the account's recovery: a reset by link revokes every token, a voluntary
change offers to, an unconfirmed account makes none, and "Mon compte" shows each token's last
use (written at most once a minute, reads included)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, select

import kb.auth.operations
from kb.auth.models import ApiToken
from kb.auth.operations import find_user
from kb.extensions import db
from kb.transaction import commit
from tests.conftest import PASSWORD, sheet_data, token_for
from tests.smtp_server import Inbox
from tests.test_accounts import NEW_PASSWORD, link_in, logged_in, register, web_login

NOW = datetime(2026, 12, 7, 14, 0, 0)


def _token_from_page(response) -> str:
    return re.search(r'id="new-token" readonly value="([^"]+)"',
                     response.get_data(as_text=True)).group(1)


def _make_token(client, name: str) -> dict[str, str]:
    """A token made in "Mon compte" by the logged-in account, as request headers."""
    made = client.post("/compte/jetons", data={"jeton-name": name, "jeton-expires": "30"})
    assert made.status_code == 201, made.get_data(as_text=True)
    return {"Authorization": f"Bearer {_token_from_page(made)}"}


def _reset_by_link(client, smtp, email: str):
    assert client.post("/connexion/mot-de-passe-oublie", data={"email": email}).status_code == 302
    path = link_in(smtp.to(email)[-1], "/connexion/nouveau-mot-de-passe/")
    form = client.get(path).get_data(as_text=True)
    assert "tous ses jetons d'API révoqués" in form  # said before the owner decides
    done = client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
                       follow_redirects=True)
    assert done.status_code == 200
    return done.get_data(as_text=True)


def test_a_reset_by_link_revokes_every_token_and_says_so(client, contributor, smtp):
    web_login(client, "contrib@example.org")
    script, widget = _make_token(client, "Script"), _make_token(client, "Site")
    assert client.get("/api/v1/follows", headers=script).status_code == 200

    page = _reset_by_link(client, smtp, "contrib@example.org")
    assert "2 jetons d&#39;API révoqués" in page
    notice = [m for m in smtp.to("contrib@example.org")
              if m["Subject"].startswith("Votre mot de passe a été changé")][-1]
    assert "Vos jetons d'API (2) sont révoqués" in Inbox.body(notice)
    for headers in (script, widget):
        assert client.get("/api/v1/follows", headers=headers).status_code == 401
    assert db.session.scalars(select(ApiToken)).all() == []


def test_a_voluntary_change_offers_to_revoke_the_tokens(client, contributor, smtp):
    web_login(client, "contrib@example.org")
    assert "Révoquer aussi tous mes jetons" not in client.get("/compte").get_data(as_text=True)
    headers = _make_token(client, "Script")
    page = client.get("/compte").get_data(as_text=True)
    assert "Révoquer aussi tous mes jetons d&#39;API</label>" not in page  # the count follows
    assert "Révoquer aussi tous mes jetons d&#39;API (1 jeton)" in page

    kept = client.post("/compte/mot-de-passe", data={
        "mdp-current": PASSWORD, "mdp-password": NEW_PASSWORD, "mdp-confirm": NEW_PASSWORD},
        follow_redirects=True)
    assert "jeton" not in re.search(r"Mot de passe changé[^<]*", kept.get_data(as_text=True))[0]
    assert client.get("/api/v1/follows", headers=headers).status_code == 200

    revoked = client.post("/compte/mot-de-passe", data={
        "mdp-current": NEW_PASSWORD, "mdp-password": PASSWORD, "mdp-confirm": PASSWORD,
        "mdp-revoke_tokens": "y"}, follow_redirects=True)
    assert "vos autres sessions sont fermées et 1 jeton d&#39;API révoqué" in \
        revoked.get_data(as_text=True)
    assert client.get("/api/v1/follows", headers=headers).status_code == 401
    assert logged_in(client)


def test_an_unconfirmed_account_cannot_create_tokens(app, client, smtp):
    register(client, email="neuf@example.org", name="Compte Neuf")
    web_login(client, "neuf@example.org")
    page = client.get("/compte").get_data(as_text=True)
    assert "Confirmez d'abord votre adresse" in page
    assert 'action="/compte/jetons"' not in page
    refused = client.post("/compte/jetons", data={"jeton-name": "Script", "jeton-expires": "30"})
    assert refused.status_code == 422
    assert '<p class="error" role="alert">Confirmez d\'abord votre adresse' in \
        refused.get_data(as_text=True)

    command = app.test_cli_runner().invoke(args=["tokens", "create", "neuf@example.org"])
    assert command.exit_code != 0
    assert "confirmez d'abord l'adresse du compte" in command.output
    assert db.session.scalars(select(ApiToken)).all() == []


def test_the_owner_reclaiming_an_address_cuts_off_whoever_registered_it(app, client, smtp):
    """Someone registers with another person's address; the owner takes the account over with
    "Mot de passe oublié". Whatever the squatter made before, nothing of it still works."""
    squatter = app.test_client()
    assert register(squatter, email="victime@example.org", name="Faux Nom").status_code == 302
    web_login(squatter, "victime@example.org")
    # Today: no token while the address is unconfirmed.
    refused = squatter.post("/compte/jetons", data={"jeton-name": "x", "jeton-expires": "365"})
    assert refused.status_code == 422
    # A token made before this rule existed (or by any other way in) still dies at the reset.
    headers = {"Authorization": f"Bearer {token_for(find_user('victime@example.org'))}"}
    commit()
    assert squatter.post("/api/v1/follows", json={"tag": "accueil"},
                         headers=headers).status_code == 201

    page = _reset_by_link(client, smtp, "victime@example.org")  # the real owner
    assert "1 jeton d&#39;API révoqué" in page
    assert find_user("victime@example.org").is_confirmed

    assert squatter.get("/api/v1/follows", headers=headers).status_code == 401
    assert squatter.post("/api/v1/sheets", json=sheet_data(),
                         headers=headers).status_code == 401
    assert not logged_in(squatter)
    web_login(client, "victime@example.org", NEW_PASSWORD)
    assert "Aucun jeton." in client.get("/compte").get_data(as_text=True)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    now = [NOW]
    monkeypatch.setattr(kb.auth.operations, "utcnow", lambda: now[0])
    return now


def test_last_use_is_kept_for_reads_and_written_at_most_once_a_minute(
        app, client, contributor, bearer, clock, login):
    headers = bearer(contributor)
    updates: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # noqa: ARG001
        if statement.lstrip().upper().startswith("UPDATE API_TOKENS"):
            updates.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert client.get("/api/v1/follows", headers=headers).status_code == 200  # a read
        db.session.expire_all()
        assert db.session.scalar(select(ApiToken)).last_used_at == NOW
        clock[0] = NOW + timedelta(seconds=59)
        for _ in range(5):
            assert client.get("/api/v1/follows", headers=headers).status_code == 200
        assert len(updates) == 1
        clock[0] = NOW + timedelta(seconds=61)
        assert client.get("/api/v1/follows", headers=headers).status_code == 200
        assert len(updates) == 2
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    db.session.expire_all()
    assert db.session.scalar(select(ApiToken)).last_used_at == NOW + timedelta(seconds=61)

    login(contributor)
    page = client.get("/compte").get_data(as_text=True)
    row = re.search(r"<tr>\s*<td>[^<]*</td>(.*?)</tr>", page, re.S)[1]
    assert "7 décembre 2026" in row and "à 15 h 01" in row  # last use, Paris time
    assert "Révoquer" in row
