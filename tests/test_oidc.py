"""Sign-in with ProConnect (any OpenID Connect provider), against a real provider on loopback
(tests/oidc_provider.py): accounts created confirmed, found again by (issuer, sub), existing
accounts linked only after proof, every refusal in French with nothing created, logout at the
provider too."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from sqlalchemy import func, select

from kb import create_app
from kb.auth.models import Identity, User
from kb.auth.signals import oidc_signed_in
from kb.extensions import db
from tests.conftest import PASSWORD
from tests.oidc_provider import (
    CLIENT_ID,
    CLIENT_SECRET,
    Provider,
    oidc_provider_fixture,  # noqa: F401  (the `oidc_provider` fixture)
)
from tests.smtp_server import Inbox

SITE = "http://kb.test"


@pytest.fixture
def app_config(app_config: dict[str, Any], oidc_provider: Provider) -> dict[str, Any]:
    return {**app_config, "KB_OIDC_ISSUER": oidc_provider.issuer,
            "KB_OIDC_CLIENT_ID": CLIENT_ID, "KB_OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "KB_OIDC_TIMEOUT": 5}


def counts() -> tuple[int, int]:
    db.session.expire_all()
    return (db.session.scalar(select(func.count(User.id))) or 0,
            db.session.scalar(select(func.count(Identity.id))) or 0)


def to_provider(client) -> str:
    """Click the button: the address of the provider's authorization endpoint."""
    response = client.get("/connexion/oidc")
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def back_from_provider(authorize_url: str) -> str:
    """The provider consents at once: the path (and query) it sends the browser back to."""
    location = requests.get(authorize_url, allow_redirects=False, timeout=5).headers["Location"]
    assert location.startswith(SITE), location
    return location.removeprefix(SITE)


def sign_in(client):
    return client.get(back_from_provider(to_provider(client)))


def logged_in(client) -> bool:
    return client.get("/compte").status_code == 200


def page(response) -> str:
    return response.get_data(as_text=True).replace("&#39;", "'")


# --- the button -----------------------------------------------------------------------------

def test_the_proconnect_button_shows_on_sign_in_and_registration_only_when_configured(
        client, app_config):
    for path in ("/connexion", "/inscription"):
        html = page(client.get(path))
        assert "S’identifier avec" in html and "ProConnect</span>" in html, path
        assert "Qu’est-ce que ProConnect ?" in html and 'href="/connexion/oidc' in html
        assert "css/proconnect.css" in html
    plain = create_app({**app_config, "KB_OIDC_CLIENT_SECRET": ""}).test_client()
    assert "ProConnect" not in page(plain.get("/connexion"))
    assert plain.get("/connexion/oidc").status_code == 404


def test_the_authorization_request_uses_pkce_s256_state_nonce_and_the_scopes(client,
                                                                          oidc_provider):
    query = parse_qs(urlsplit(to_provider(client)).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert query["state"][0] and query["nonce"][0] and query["response_type"] == ["code"]
    assert query["scope"] == ["openid email given_name usual_name uid siret"]
    assert query["redirect_uri"] == [f"{SITE}/connexion/oidc/retour"]


# --- accounts -------------------------------------------------------------------------------

def test_a_first_sign_in_creates_a_confirmed_account_and_tells_the_structures_its_siret(
        app, client, oidc_provider):
    heard: list[dict[str, Any]] = []

    def receiver(sender, user, claims):
        heard.append({"user": user.email, **claims})

    with oidc_signed_in.connected_to(receiver, sender=app):
        response = sign_in(client)
    assert response.status_code == 302 and logged_in(client)
    user = db.session.scalar(select(User))
    assert user.email == "agent@departement.gouv.fr" and user.is_confirmed
    assert user.display_name == "Anne Agent" and user.password_hash is None
    identity = db.session.scalar(select(Identity))
    assert (identity.issuer, identity.subject, identity.user_id) == (
        oidc_provider.issuer, "agent-0001", user.id)
    assert identity.siret == "21290001100016"
    [claims] = heard
    assert claims["siret"] == "21290001100016" and claims["user"] == user.email
    assert claims["uid"] == "a-0001" and claims["usual_name"] == "Agent"
    # The ID token carries no address: it came from the signed userinfo (application/jwt).
    assert oidc_provider.token_requests[0]["code_verifier"]


def test_the_next_sign_in_finds_the_same_account_even_after_the_address_changed(
        client, oidc_provider):
    sign_in(client)
    client.post("/deconnexion")
    oidc_provider.person.email = "anne.agent@nouveau-service.gouv.fr"
    oidc_provider.person.siret = "21290001100024"
    oidc_provider.signed_userinfo = False  # plain JSON userinfo serves as well
    assert sign_in(client).status_code == 302 and logged_in(client)
    assert counts() == (1, 1)
    identity = db.session.scalar(select(Identity))
    assert identity.email == "anne.agent@nouveau-service.gouv.fr"
    assert identity.siret == "21290001100024"
    # The account's own address changes only through "Mon compte" (a confirmed change).
    assert identity.user.email == "agent@departement.gouv.fr"


def test_an_existing_password_account_is_linked_only_with_its_password(client, make_user,
                                                                      oidc_provider):
    owner = make_user(email="agent@departement.gouv.fr")
    response = sign_in(client)
    assert response.headers["Location"] == "/connexion/oidc/relier"
    assert not logged_in(client) and counts() == (1, 0)
    assert "Un compte existe déjà ici" in page(client.get("/connexion/oidc/relier"))
    wrong = client.post("/connexion/oidc/relier", data={"password": "pas le bon"})
    assert wrong.status_code == 422 and "Mot de passe incorrect." in page(wrong)
    assert not logged_in(client) and counts() == (1, 0)
    right = client.post("/connexion/oidc/relier", data={"password": PASSWORD})
    assert right.status_code == 302 and logged_in(client)
    assert counts() == (1, 1)
    assert db.session.scalar(select(Identity)).user_id == owner.id
    client.post("/deconnexion")
    assert sign_in(client).status_code == 302 and logged_in(client)  # no proof asked again


def test_an_existing_account_is_linked_by_the_link_mailed_to_its_address(client, make_user,
                                                                        smtp, oidc_provider):
    owner = make_user(email="agent@departement.gouv.fr")
    sign_in(client)
    sent = client.post("/connexion/oidc/relier/courriel")
    assert sent.status_code == 200 and counts() == (1, 0)
    [message] = smtp.to("agent@departement.gouv.fr")
    path = re.search(r"http://kb\.test(/connexion/oidc/relier/\S+)", Inbox.body(message))[1]
    assert "Relier mon compte" in page(client.get(path))  # opening it links nothing
    assert counts() == (1, 0) and not logged_in(client)
    assert client.post(path).status_code == 302
    assert logged_in(client) and counts() == (1, 1)  # the same browser: signed in
    assert db.session.scalar(select(Identity)).user_id == owner.id
    assert client.post(path).status_code == 410  # single use


def test_a_blocked_account_cannot_sign_in_through_the_provider(client, oidc_provider):
    sign_in(client)
    client.post("/deconnexion")
    db.session.scalar(select(User)).blocked = True
    db.session.commit()
    response = sign_in(client)
    assert response.status_code == 403 and "Ce compte est bloqué." in page(response)
    assert not logged_in(client)


# --- refusals: a French message, nothing created --------------------------------------------

def _tampered_state(client, provider):
    url = back_from_provider(to_provider(client))
    return client.get(re.sub(r"state=[^&]+", "state=forged", url))


def _tampered(**tamper):
    def run(client, provider):
        provider.tamper = tamper
        return sign_in(client)
    return run


def _tampered_userinfo(**tamper):
    def run(client, provider):
        provider.tamper_userinfo = tamper
        return sign_in(client)
    return run


def _refused_consent(client, provider):
    provider.deny = True
    return sign_in(client)


def _token_endpoint_down(client, provider):
    url = back_from_provider(to_provider(client))
    provider.stop()
    return client.get(url)


REFUSALS = {
    "tampered state": (_tampered_state, 400, "la demande a expiré, a déjà servi"),
    "wrong nonce": (_tampered(nonce="not-the-one-sent"), 400, "n'a pas pu être vérifiée"),
    "bad signature": (_tampered(key="rogue"), 400, "n'a pas pu être vérifiée"),
    "expired ID token": (_tampered(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
                         400, "n'a pas pu être vérifiée"),
    # Authlib alone would accept it (it only checks `azp`): kb passes the audience to check.
    "wrong audience": (_tampered(aud="another-client", azp=CLIENT_ID), 400, "n'a pas pu être vérifiée"),
    "wrong issuer": (_tampered(iss="https://autre-fournisseur.example"), 400,
                     "n'a pas pu être vérifiée"),
    "userinfo signed by another key": (_tampered_userinfo(key="rogue"), 400,
                                       "n'a pas pu être vérifiée"),
    "userinfo for another audience": (_tampered_userinfo(aud="another-client"), 400,
                                      "n'a pas pu être vérifiée"),
    "userinfo about someone else": (_tampered_userinfo(sub="agent-0002"), 403,
                                    "incohérente"),
    "refused consent": (_refused_consent, 403, "Vous avez refusé de transmettre"),
    "token endpoint down": (_token_endpoint_down, 502, "ProConnect ne répond pas"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_a_refused_sign_in_says_why_in_french_and_creates_nothing(client, oidc_provider, case):
    run, status, message = REFUSALS[case]
    response = run(client, oidc_provider)
    assert response.status_code == status
    html = page(response)
    assert message in html and 'role="alert"' in html and "<h1>Se connecter</h1>" in html
    assert counts() == (0, 0) and not logged_in(client)


def test_a_provider_whose_discovery_is_unreachable_is_a_french_message(app_config):
    closed = requests.Session()  # nothing listens on port 9 of loopback (discard)
    del closed
    app = create_app({**app_config, "KB_OIDC_ISSUER": "http://127.0.0.1:9"})
    response = app.test_client().get("/connexion/oidc")
    assert response.status_code == 502 and "ProConnect ne répond pas" in page(response)


def test_a_replayed_code_or_callback_is_refused(client, oidc_provider):
    callback = back_from_provider(to_provider(client))
    assert client.get(callback).status_code == 302
    client.post("/deconnexion")
    # The same answer again: its state was spent.
    again = client.get(callback)
    assert again.status_code == 400 and "a déjà servi" in page(again)
    # The old code with a fresh, valid state: the provider refuses the code (invalid_grant).
    fresh_state = parse_qs(urlsplit(to_provider(client)).query)["state"][0]
    code = parse_qs(urlsplit(callback).query)["code"][0]
    replay = client.get("/connexion/oidc/retour?" + urlencode({"code": code,
                                                               "state": fresh_state}))
    assert replay.status_code == 400 and "a déjà servi" in page(replay)
    assert counts() == (1, 1) and not logged_in(client)


def test_the_callback_is_rate_limited_like_the_login(app_config):
    app = create_app({**app_config, "RATELIMIT_ENABLED": True, "KB_RATE_LIMIT_LOGIN": "2 per minute"})
    client = app.test_client()
    codes = [client.get("/connexion/oidc/retour?state=x&code=y").status_code for _ in range(3)]
    assert codes == [400, 400, 429]


# --- logout ---------------------------------------------------------------------------------

def test_logout_ends_the_session_here_and_at_the_provider(client, oidc_provider):
    sign_in(client)
    home = client.get("/compte")
    assert f"form-action 'self' {oidc_provider.issuer}" in home.headers["Content-Security-Policy"]
    response = client.post("/deconnexion")
    assert not logged_in(client)
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == \
        f"{oidc_provider.issuer}/session/end"
    query = parse_qs(location.query)
    assert query["post_logout_redirect_uri"] == [f"{SITE}/deconnexion/oidc"]
    assert query["id_token_hint"][0].count(".") == 2 and query["state"][0]
    back = back_from_provider(response.headers["Location"])
    assert oidc_provider.logouts[0]["id_token_hint"] == query["id_token_hint"][0]
    home = client.get(back, follow_redirects=True)
    assert "Vous êtes déconnecté·e, ici et sur ProConnect." in page(home)
    assert "form-action 'self';" in home.headers["Content-Security-Policy"]


def test_a_password_session_logs_out_here_only(client, contributor, oidc_provider):
    client.post("/connexion", data={"email": contributor.email, "password": PASSWORD})
    assert client.post("/deconnexion").headers["Location"] == "/"
    assert oidc_provider.logouts == []


def test_a_deleted_account_forgets_its_identity_and_the_next_sign_in_starts_afresh(
        client, oidc_provider):
    from kb.accounts.operations import delete_account, personal_data

    sign_in(client)
    user = db.session.scalar(select(User))
    assert personal_data(user)["identities"][0]["siret"] == "21290001100016"
    delete_account(user, user)
    db.session.commit()
    assert counts()[1] == 0
    assert sign_in(client).status_code == 302 and logged_in(client)
    identity = db.session.scalar(select(Identity))
    assert identity.user_id != user.id and identity.user.email == "agent@departement.gouv.fr"


def test_the_mailed_link_opened_elsewhere_links_without_signing_in_there(app, client,
                                                                        make_user, smtp,
                                                                        oidc_provider):
    make_user(email="agent@departement.gouv.fr")
    sign_in(client)
    client.post("/connexion/oidc/relier/courriel")
    [message] = smtp.to("agent@departement.gouv.fr")
    path = re.search(r"http://kb\.test(/connexion/oidc/relier/\S+)", Inbox.body(message))[1]
    other_browser = app.test_client()
    assert other_browser.post(path).headers["Location"] == "/connexion"
    assert not logged_in(other_browser) and counts() == (1, 1)
    assert sign_in(client).status_code == 302 and logged_in(client)  # now found by (iss, sub)


def test_a_receiver_of_the_signal_may_refuse_the_sign_in_and_nothing_stays(app, client,
                                                                           oidc_provider):
    from kb.auth.oidc import OidcError

    def refuse(sender, user, claims):
        raise OidcError("Structure inconnue : demandez à la rejoindre.")

    with oidc_signed_in.connected_to(refuse, sender=app):
        response = sign_in(client)
    assert response.status_code == 403 and "Structure inconnue" in page(response)
    assert counts() == (0, 0) and not logged_in(client)


def test_a_discovery_document_naming_another_issuer_is_refused(app_config, oidc_provider):
    # The same provider reached by another name: its document names 127.0.0.1, not localhost.
    issuer = oidc_provider.issuer.replace("127.0.0.1", "localhost")
    app = create_app({**app_config, "KB_OIDC_ISSUER": issuer})
    response = app.test_client().get("/connexion/oidc")
    assert response.status_code == 502 and "mal configuré" in page(response)


def test_a_proconnect_sign_in_creates_the_structure_of_its_siret_with_its_agent_as_administrator(
        client, oidc_provider):
    from kb.structures.models import Membership, Structure

    oidc_provider.person.siret = "73282932000074"  # a SIRET with its check digit
    sign_in(client)
    user = db.session.scalar(select(User))
    [structure] = db.session.scalars(select(Structure)).all()
    assert structure.siret == "73282932000074"
    [membership] = db.session.scalars(select(Membership)).all()
    assert (membership.user_id, membership.structure_id, membership.role, membership.state) == (
        user.id, structure.id, "administrateur", "actif")
    client.post("/deconnexion")
    sign_in(client)  # the next sign-in changes nothing
    assert db.session.scalar(select(func.count(Membership.id))) == 1
