"""Accounts for real people, through the real pages and a real SMTP server: registration with a
confirmed address, password reset, "Mon compte", API tokens, sessions, leaving."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from kb.auth.models import AccountToken, ApiToken, TokenPurpose, User
from kb.auth.operations import find_user, user_for_token
from kb.auth.preferences import letter_sections
from kb.extensions import db
from kb.moderation import operations as moderation
from kb.sheets import operations
from kb.timeutil import utcnow
from kb.transaction import commit
from tests.conftest import PASSWORD, sheet_data
from tests.smtp_server import Inbox

NEW_PASSWORD = "trois chats sur un toit"
LINK = re.compile(r"http://kb\.test(/\S+)")


def link_in(message, prefix: str) -> str:
    """The path of the first link of the plain-text body that starts with `prefix`."""
    for path in LINK.findall(Inbox.body(message)):
        if path.startswith(prefix):
            return path
    raise AssertionError(f"no {prefix} link in:\n{Inbox.body(message)}")


def html_of(message) -> str:
    part = message.get_body(("html",))
    assert part is not None, "no HTML alternative"
    return str(part.get_content())


def assert_no_tracking(message) -> None:
    html = html_of(message)
    assert "<img" not in html.lower() and "<script" not in html.lower()
    hosts = set(re.findall(r'(?:href|src)="https?://([^/"]+)', html))
    assert hosts <= {"kb.test"}, hosts
    assert "utm_" not in html and "utm_" not in Inbox.body(message)


def web_login(client, email, password=PASSWORD):
    response = client.post("/connexion", data={"email": email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def logged_in(client) -> bool:
    return client.get("/compte").status_code == 200


# --- registration ---------------------------------------------------------------------------

def register(client, email="nina@example.org", name="Nina Martin", password=PASSWORD):
    return client.post("/inscription", data={"display_name": name, "email": email,
                                             "password": password, "confirm": password})


def test_registration_mails_a_single_use_link_that_confirms_the_address(client, smtp):
    response = register(client)
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Vérifiez votre messagerie" in page
    user = find_user("nina@example.org")
    assert user.display_name == "Nina Martin" and not user.is_confirmed

    [message] = smtp.to("nina@example.org")
    assert message["Subject"] == "Confirmez votre adresse — Fiches initiatives"
    assert "Bonjour Nina Martin" in Inbox.body(message) and "48 heures" in Inbox.body(message)
    assert_no_tracking(message)
    path = link_in(message, "/inscription/confirmer/")
    assert path in html_of(message)

    # Opening the link (or a mail scanner doing so) spends nothing: one button does.
    page = client.get(path)
    assert page.status_code == 200 and "Confirmer mon adresse" in page.get_data(as_text=True)
    assert not db.session.get(User, user.id).is_confirmed
    response = client.post(path)
    # Confirmed and signed in at once (issue 25): no login page between the link and writing.
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert db.session.get(User, user.id).is_confirmed and logged_in(client)

    again = client.get(path)
    assert again.status_code == 410 and "déjà servi" in again.get_data(as_text=True)
    assert client.get(path[:-3] + "abc").status_code == 404


def test_a_display_name_is_required_and_never_taken_from_the_address(client, smtp):
    response = register(client, name="  ")
    assert response.status_code == 422
    assert "Indiquez le nom à afficher." in response.get_data(as_text=True)
    assert find_user("nina@example.org") is None and smtp.messages == []


@pytest.mark.parametrize("password, message", [
    ("court", "au moins 10 caractères"),
    ("nina-martin-2024", "ne doit pas contenir votre nom"),
    ("motdepasse123", "trop courant"),
])
def test_registration_applies_the_password_rules(client, smtp, password, message):
    response = register(client, password=password)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert find_user("nina@example.org") is None


def test_an_expired_confirmation_link_is_refused_and_can_be_sent_again(client, smtp):
    register(client)
    path = link_in(smtp.to("nina@example.org")[0], "/inscription/confirmer/")
    for row in db.session.scalars(select(AccountToken)):
        row.expires_at = utcnow() - timedelta(minutes=1)
    commit()
    response = client.get(path)
    assert response.status_code == 410 and "expiré" in response.get_data(as_text=True)
    assert "Renvoyer le lien" in response.get_data(as_text=True)

    smtp.messages.clear()
    assert client.post("/inscription/renvoyer",
                       data={"email": "nina@example.org"}).status_code == 302
    [message] = smtp.to("nina@example.org")
    fresh = link_in(message, "/inscription/confirmer/")
    assert client.post(fresh).status_code == 302
    assert find_user("nina@example.org").is_confirmed


def test_an_unconfirmed_account_logs_in_and_drafts_but_its_proposals_wait_outside_the_queue(
        client, login, make_sheet, moderator, smtp):
    register(client, email="new@example.org", name="Nouvelle Venue")
    web_login(client, "new@example.org")
    page = client.get("/").get_data(as_text=True)
    assert "adresse n'est pas encore confirmée" in page
    user = find_user("new@example.org")
    user.trusted = True  # even with the flag, nothing is published at once
    published = make_sheet(title="Accueil de jour")
    draft = operations.edit_sheet(published.sheet, {"city": "Lorient"}, user, published.id)
    commit()
    assert draft.status == "pending"

    login(moderator)
    assert "Accueil de jour" not in client.get("/moderation").get_data(as_text=True)
    assert client.get("/moderation/tableau-de-bord").status_code == 200

    path = link_in(smtp.to("new@example.org")[0], "/inscription/confirmer/")
    client.post(path)
    assert "Accueil de jour" in client.get("/moderation").get_data(as_text=True)


# --- the same answer for every address ------------------------------------------------------

def _answer(client, method_path, data):
    response = client.post(method_path, data=data)
    followed = client.get(response.headers["Location"]) if response.status_code == 302 else None
    return (response.status_code, response.headers.get("Location"),
            response.headers.get("Set-Cookie"),
            followed.get_data(as_text=True) if followed else response.get_data(as_text=True))


@pytest.mark.parametrize("path, fields", [
    ("/inscription", {"display_name": "Quelqu'un", "password": NEW_PASSWORD,
                      "confirm": NEW_PASSWORD}),
    ("/connexion/mot-de-passe-oublie", {}),
    ("/inscription/renvoyer", {}),
])
def test_known_and_unknown_addresses_get_identical_answers_and_one_mail_each(
        client, contributor, smtp, path, fields):
    known = _answer(client, path, {**fields, "email": "contrib@example.org"})
    unknown = _answer(client, path, {**fields, "email": "personne@example.org"})
    assert known == unknown
    assert len(smtp.to("contrib@example.org")) == 1
    assert len(smtp.to("personne@example.org")) == 1
    for message in smtp.messages:
        assert_no_tracking(message)


def test_registering_a_taken_address_tells_its_owner_and_changes_nothing(client, contributor,
                                                                         smtp):
    before = contributor.password_hash
    assert register(client, email="contrib@example.org", name="Usurpateur").status_code == 302
    [message] = smtp.to("contrib@example.org")
    assert message["Subject"] == "Un compte existe déjà avec votre adresse — Fiches initiatives"
    assert "/connexion/mot-de-passe-oublie" in Inbox.body(message)
    assert "/inscription/confirmer/" not in Inbox.body(message)
    user = find_user("contrib@example.org")
    assert user.display_name == "Claire Contrib" and user.password_hash == before


def test_login_answers_the_same_and_checks_a_hash_for_unknown_addresses(client, contributor,
                                                                        monkeypatch):
    import kb.auth.models
    import kb.auth.passwords

    checks: list[str] = []
    for module in (kb.auth.models, kb.auth.passwords):
        real = module.check_password_hash
        monkeypatch.setattr(module, "check_password_hash",
                            lambda h, p, real=real, name=module.__name__: (
                                checks.append(name), real(h, p))[1])
    wrong = client.post("/connexion", data={"email": "contrib@example.org", "password": "faux"})
    assert checks == ["kb.auth.models"]
    unknown = client.post("/connexion", data={"email": "personne@example.org",
                                              "password": "faux"})
    assert checks == ["kb.auth.models", "kb.auth.passwords"]  # a dummy hash, same cost
    assert wrong.status_code == unknown.status_code == 200
    # The same page, but for the address typed, echoed in the form.
    assert wrong.get_data(as_text=True).replace("contrib@example.org", "@") == \
        unknown.get_data(as_text=True).replace("personne@example.org", "@")
    assert "Adresse ou mot de passe incorrect." in wrong.get_data(as_text=True)


# --- password reset and sessions ------------------------------------------------------------

def test_reset_by_mail_sets_a_new_password_and_ends_every_session(app, client, contributor,
                                                                  smtp):
    other_device = app.test_client()
    web_login(other_device, "contrib@example.org")
    assert logged_in(other_device)
    captured = other_device.get_cookie("session").value

    assert "Mot de passe oublié ?" in client.get("/connexion").get_data(as_text=True)
    response = client.post("/connexion/mot-de-passe-oublie", data={"email": "contrib@example.org"})
    assert response.status_code == 302
    [message] = smtp.to("contrib@example.org")
    assert message["Subject"] == "Choisir un nouveau mot de passe — Fiches initiatives"
    assert "60 minutes" in Inbox.body(message)
    assert_no_tracking(message)
    path = link_in(message, "/connexion/nouveau-mot-de-passe/")

    assert client.get(path).status_code == 200
    refused = client.post(path, data={"password": "claire.contrib.2026",
                                      "confirm": "claire.contrib.2026"})
    assert refused.status_code == 422
    assert "ne doit pas contenir votre nom ni votre adresse" in refused.get_data(as_text=True)
    mismatch = client.post(path, data={"password": NEW_PASSWORD, "confirm": "autre chose"})
    assert mismatch.status_code == 422 and "diffèrent" in mismatch.get_data(as_text=True)

    done = client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302 and done.headers["Location"] == "/connexion"
    assert client.get(path).status_code == 410  # single use

    # The other device's session, and a copy of its cookie, no longer work.
    assert not logged_in(other_device)
    replay = app.test_client()
    replay.set_cookie("session", captured)
    assert not logged_in(replay)

    assert client.post("/connexion", data={"email": "contrib@example.org",
                                           "password": PASSWORD}).status_code == 200
    web_login(client, "contrib@example.org", NEW_PASSWORD)
    notices = [m for m in smtp.to("contrib@example.org")
               if m["Subject"].startswith("Votre mot de passe a été changé")]
    assert len(notices) == 1


def test_a_reset_link_lasts_one_hour(client, contributor, smtp):
    client.post("/connexion/mot-de-passe-oublie", data={"email": "contrib@example.org"})
    path = link_in(smtp.to("contrib@example.org")[0], "/connexion/nouveau-mot-de-passe/")
    row = db.session.scalar(select(AccountToken).where(
        AccountToken.purpose == TokenPurpose.RESET.value))
    assert row.expires_at - row.created_at == timedelta(hours=1)
    row.expires_at = utcnow() - timedelta(seconds=1)
    commit()
    response = client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 410 and "expiré" in response.get_data(as_text=True)
    assert find_user("contrib@example.org").check_password(PASSWORD)


def test_a_reset_link_confirms_an_unconfirmed_address(client, smtp):
    register(client, email="lent@example.org", name="Lent Confirmeur")
    client.post("/connexion/mot-de-passe-oublie", data={"email": "lent@example.org"})
    reset = [m for m in smtp.to("lent@example.org") if "mot de passe" in m["Subject"]]
    path = link_in(reset[0], "/connexion/nouveau-mot-de-passe/")
    client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert find_user("lent@example.org").is_confirmed


def test_logout_ends_the_session_even_for_a_copied_cookie(app, client, contributor):
    web_login(client, "contrib@example.org")
    captured = client.get_cookie("session").value
    client.post("/deconnexion")
    replay = app.test_client()
    replay.set_cookie("session", captured)
    assert not logged_in(replay)


def test_blocking_ends_the_sessions_of_the_account(app, client, login, make_user, moderator):
    spammer = make_user(email="spam@example.org")
    device = app.test_client()
    web_login(device, "spam@example.org")
    assert logged_in(device)
    login(moderator)
    client.post(f"/moderation/utilisateurs/{spammer.id}/bloquer", data={"reason": "Spam"})
    assert not logged_in(device)
    moderation.unblock_user(db.session.get(User, spammer.id), moderator)
    commit()
    assert not logged_in(device)  # unblocking does not revive old cookies


def test_a_cookie_without_the_session_version_is_refused(client, contributor):
    with client.session_transaction() as session:
        session["_user_id"] = str(contributor.id)
    assert not logged_in(client)


def test_cookies_are_secure_and_hsts_is_sent_behind_https(app_config, make_user):
    from kb import create_app

    make_user(email="tls@example.org")
    secure = create_app({**app_config, "KB_BASE_URL": "https://fiches.example.org"})
    assert secure.config["SESSION_COOKIE_SECURE"] and secure.config["REMEMBER_COOKIE_SECURE"]
    client = secure.test_client()
    response = client.post("/connexion", data={"email": "tls@example.org", "password": PASSWORD},
                           base_url="https://fiches.example.org")
    assert "Secure" in response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    plain = create_app(app_config).test_client().get("/")
    assert "Strict-Transport-Security" not in plain.headers


# --- Mon compte -----------------------------------------------------------------------------

def test_mon_compte_renames(client, login, contributor):
    login(contributor)
    page = client.get("/compte").get_data(as_text=True)
    assert "Mon compte" in page and "contrib@example.org" in page
    assert client.post("/compte/nom", data={"nom-display_name": " "}).status_code == 422
    assert client.post("/compte/nom", data={"nom-display_name": "Claire M."}).status_code == 302
    assert db.session.get(User, contributor.id).name == "Claire M."


def test_changing_the_address_is_confirmed_from_the_new_one_and_the_old_one_is_told(
        client, login, contributor, moderator, smtp):
    login(contributor)
    wrong = client.post("/compte/adresse", data={"adresse-new_email": "claire@nouveau.example",
                                                 "adresse-password": "faux"})
    assert wrong.status_code == 422 and "mot de passe est incorrect" in wrong.get_data(as_text=True)
    assert smtp.messages == []

    response = client.post("/compte/adresse", data={"adresse-new_email": "claire@nouveau.example",
                                                    "adresse-password": PASSWORD})
    assert response.status_code == 302
    [link_mail] = smtp.to("claire@nouveau.example")
    [notice] = smtp.to("contrib@example.org")
    assert "claire@nouveau.example" in Inbox.body(notice)
    assert_no_tracking(link_mail)
    assert db.session.get(User, contributor.id).email == "contrib@example.org"  # not yet

    path = link_in(link_mail, "/compte/adresse/confirmer/")
    assert client.get(path).status_code == 200
    assert client.post(path).status_code == 302
    user = db.session.get(User, contributor.id)
    assert user.email == "claire@nouveau.example" and user.is_confirmed
    done = smtp.to("contrib@example.org")[-1]
    assert "désormais claire@nouveau.example" in Inbox.body(done)
    assert client.get(path).status_code == 410

    login(None)
    web_login(client, "claire@nouveau.example")
    assert client.post("/connexion", data={"email": "contrib@example.org",
                                           "password": PASSWORD}).status_code == 200

    # An address that already has an account: the same answer, its owner is told, no link.
    smtp.messages.clear()
    login(user)
    taken = client.post("/compte/adresse", data={"adresse-new_email": "modo@example.org",
                                                 "adresse-password": PASSWORD})
    assert taken.status_code == 302
    [owner_mail] = smtp.to("modo@example.org")
    assert "/compte/adresse/confirmer/" not in Inbox.body(owner_mail)


def test_changing_the_password_needs_the_current_one_and_ends_the_other_sessions(
        app, client, contributor, smtp):
    other_device = app.test_client()
    web_login(other_device, "contrib@example.org")
    web_login(client, "contrib@example.org")
    wrong = client.post("/compte/mot-de-passe", data={
        "mdp-current": "faux", "mdp-password": NEW_PASSWORD, "mdp-confirm": NEW_PASSWORD})
    assert wrong.status_code == 422 and "actuel est incorrect" in wrong.get_data(as_text=True)
    response = client.post("/compte/mot-de-passe", data={
        "mdp-current": PASSWORD, "mdp-password": NEW_PASSWORD, "mdp-confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert logged_in(client)  # this session goes on
    assert not logged_in(other_device)
    assert find_user("contrib@example.org").check_password(NEW_PASSWORD)
    assert smtp.to("contrib@example.org")[-1]["Subject"].startswith("Votre mot de passe")


def test_my_sheets_and_proposals_are_listed(client, login, contributor, make_sheet):
    published = make_sheet(title="Maison des services")
    operations.edit_sheet(published.sheet, {"city": "Morlaix"}, contributor, published.id)
    commit()
    login(contributor)
    page = client.get("/compte").get_data(as_text=True)
    assert "En attente de relecture" in page and "Maison des services" in page


# --- API tokens -----------------------------------------------------------------------------

def test_a_token_made_in_mon_compte_works_until_revoked(client, login, contributor):
    login(contributor)
    missing = client.post("/compte/jetons", data={"jeton-name": "", "jeton-expires": "30"})
    assert missing.status_code == 422 and "Donnez un nom au jeton." in missing.get_data(as_text=True)
    response = client.post("/compte/jetons", data={"jeton-name": "Script d'import",
                                                   "jeton-expires": "30"})
    assert response.status_code == 201
    token = re.search(r'id="new-token" readonly value="([^"]+)"',
                      response.get_data(as_text=True)).group(1)
    assert "new-token" not in client.get("/compte").get_data(as_text=True)  # shown once

    headers = {"Authorization": f"Bearer {token}"}
    created = client.post("/api/v1/sheets", json=sheet_data(title="Par l'API"), headers=headers)
    assert created.status_code == 202

    row = db.session.scalar(select(ApiToken))
    assert row.name == "Script d'import" and row.last_used_at is not None
    assert timedelta(days=29) < row.expires_at - row.created_at <= timedelta(days=30)
    page = client.get("/compte").get_data(as_text=True)
    assert "Script d&#39;import" in page and "Révoquer" in page

    assert client.post(f"/compte/jetons/{row.id}/revoquer").status_code == 302
    refused = client.post("/api/v1/sheets", json=sheet_data(title="Encore"), headers=headers)
    assert refused.status_code == 401


def test_an_expired_token_is_refused(client, bearer, contributor):
    headers = bearer(contributor)
    row = db.session.scalar(select(ApiToken))
    row.expires_at = utcnow() - timedelta(seconds=1)
    commit()
    assert client.post("/api/v1/sheets", json=sheet_data(), headers=headers).status_code == 401


def test_nobody_revokes_someone_elses_token(client, login, bearer, contributor, make_user):
    bearer(contributor)
    row = db.session.scalar(select(ApiToken))
    login(make_user())
    assert client.post(f"/compte/jetons/{row.id}/revoquer").status_code == 404
    assert db.session.get(ApiToken, row.id) is not None


def test_tokens_on_the_command_line(app, contributor):
    runner = app.test_cli_runner()
    made = runner.invoke(args=["tokens", "create", "contrib@example.org", "--name", "Import",
                               "--expires", "30"])
    assert made.exit_code == 0, made.output
    token = made.output.strip()
    assert user_for_token(token).id == contributor.id
    listed = runner.invoke(args=["tokens", "list", "contrib@example.org"]).output
    row = db.session.scalar(select(ApiToken))
    assert f"{row.id}\tImport\t" in listed and "expire 20" in listed
    assert runner.invoke(args=["tokens", "create", "contrib@example.org", "--expires",
                               "hier"]).exit_code != 0
    never = runner.invoke(args=["tokens", "create", "contrib@example.org", "--expires", "never"])
    assert never.exit_code == 0
    revoked = runner.invoke(args=["tokens", "revoke", str(row.id)])
    assert revoked.exit_code == 0 and user_for_token(token) is None
    assert runner.invoke(args=["tokens", "revoke", str(row.id)]).exit_code != 0


# --- notification settings ------------------------------------------------------------------

def test_opting_out_stops_decision_mails_and_the_letter(client, login, contributor, moderator,
                                                        make_sheet, smtp):
    from kb.letters.operations import build_letters

    login(contributor)
    response = client.post("/compte/notifications", data={"notif-letter_period": "month"})
    assert response.status_code == 302  # every box left unticked
    user = db.session.get(User, contributor.id)
    assert not user.notify_contributions and letter_sections(user) == []

    published = make_sheet()
    proposal = operations.edit_sheet(published.sheet, {"city": "Vannes"}, user, published.id)
    commit()
    moderation.approve(proposal, moderator)
    commit()
    assert smtp.to("contrib@example.org") == []

    published.sheet.last_reviewed_at = utcnow() - timedelta(days=800)
    commit()
    run = build_letters()
    assert contributor.id not in {u.id for u, _ in run.queued}
    assert smtp.to("contrib@example.org") == []


def test_nothing_optional_turns_every_optional_mail_off(client, login, moderator):
    login(moderator)
    client.post("/compte/notifications", data={
        "notif-contributions": "y", "notif-letter_period": "week", "notif-letter_weekday": "0",
        "notif-section_moderation": "y", "notif-nothing": "y"})
    user = db.session.get(User, moderator.id)
    assert (user.notify_contributions, letter_sections(user)) == (False, [])
    assert client.post("/compte/notifications",
                       data={"notif-letter_weekday": "12345"}).status_code == 422


# --- leaving --------------------------------------------------------------------------------

NAME, EMAIL = "Zoé Personnelle", "zoe.personnelle@example.org"


def _everything_stored(app) -> str:
    """Every row of every table, and the SQLite file's own dump."""
    text = []
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            text.extend(repr(tuple(row)) for row in conn.execute(select(table)))
        if db.engine.dialect.name == "sqlite":
            text.extend(conn.connection.driver_connection.iterdump())
    return "\n".join(text)


def _exports(client, app, tmp_path) -> str:
    parts = [client.get(f"/donnees/fiches.{fmt}").get_data(as_text=True)
             for fmt in ("csv", "json", "jsonl")]
    parts.append(client.get("/donnees/flux/modifications.atom").get_data(as_text=True))
    backup = tmp_path / "backup.json"
    result = app.test_cli_runner().invoke(args=["export", str(backup), "--format", "json"])
    assert result.exit_code == 0, result.output
    parts.append(backup.read_text())
    return "\n".join(parts)


def test_deleting_my_account_erases_personal_data_and_keeps_contributions(
        app, client, make_user, make_sheet, bearer, tmp_path, smtp):
    user = make_user(email=EMAIL, name=NAME, trusted=True)
    kept = make_sheet(author=user, title="Jardin partagé du quartier")
    other = make_sheet(title="Épicerie solidaire")
    operations.edit_sheet(other.sheet, {"city": "Rennes"}, user, other.id)  # published at once
    user.trusted = False
    pending = operations.edit_sheet(other.sheet, {"city": "Brest"}, user, None)
    commit()
    bearer(user)
    client.post("/connexion/mot-de-passe-oublie", data={"email": EMAIL})  # a link row exists
    web_login(client, EMAIL)
    client.post(f"/fiches/{other.sheet.slug}/signaler", data={"reason": "outdated",
                                                               "comment": "Horaires changés"})
    before = _everything_stored(app)
    assert EMAIL in before and NAME in before

    data = client.get("/compte/donnees")
    assert data.headers["Content-Disposition"].startswith("attachment")
    mine = data.get_json()
    assert mine["account"]["email"] == EMAIL and mine["account"]["display_name"] == NAME
    assert {r["sheet"] for r in mine["revisions"]} == {kept.sheet.slug, other.sheet.slug}
    assert mine["reports"][0]["comment"] == "Horaires changés"
    assert mine["api_tokens"][0]["expires_at"] is None

    assert client.get("/compte/supprimer").status_code == 200
    wrong = client.post("/compte/supprimer", data={"password": "faux", "understood": "y"})
    assert wrong.status_code == 422
    unticked = client.post("/compte/supprimer", data={"password": PASSWORD})
    assert unticked.status_code == 422
    assert client.post("/compte/supprimer", data={"password": PASSWORD,
                                                  "understood": "y"}).status_code == 302
    assert not logged_in(client)

    stored = _everything_stored(app)
    exported = _exports(client, app, tmp_path)
    for needle in (EMAIL, NAME, "zoe.personnelle", "Personnelle"):
        assert needle not in stored, needle
        assert needle not in exported, needle

    history = client.get(f"/fiches/{kept.sheet.slug}/historique").get_data(as_text=True)
    assert "ancien contributeur" in history
    assert client.get(f"/fiches/{kept.sheet.slug}").status_code == 200
    assert db.session.get(type(pending), pending.id).status == "rejected"
    assert client.post("/connexion", data={"email": EMAIL,
                                           "password": PASSWORD}).status_code == 200
    assert register(client, email=EMAIL, name="Une autre Zoé").status_code == 302  # address free


# --- admins ---------------------------------------------------------------------------------

def test_the_accounts_page_gives_admins_real_buttons_for_roles_data_and_deletion(
        client, login, make_user, make_sheet, moderator):
    admin = make_user("admin")
    target = make_user(email="cible@example.org", name="Compte Cible")
    make_sheet(author=make_user(trusted=True), title="Autre")
    login(admin)
    page = client.get("/moderation/utilisateurs").get_data(as_text=True)
    for label in ("Bloquer", "Accorder la confiance", "Changer le rôle",
                  "Télécharger ses données", "Supprimer le compte"):
        assert f'<button type="submit" class="secondary">{label}' in page, label
    assert "administrateur" in page and "modérateur" in page

    assert client.post(f"/moderation/utilisateurs/{target.id}/role",
                       data={"role": "chef"}).status_code == 400
    assert client.post(f"/moderation/utilisateurs/{target.id}/role",
                       data={"role": "moderator"}).status_code == 302
    assert db.session.get(User, target.id).role == "moderator"
    data = client.get(f"/moderation/utilisateurs/{target.id}/donnees").get_json()
    assert data["account"]["email"] == "cible@example.org"

    assert client.post(f"/moderation/utilisateurs/{target.id}/supprimer").status_code == 302
    assert not db.session.get(User, target.id).is_deleted  # the box was not ticked
    client.post(f"/moderation/utilisateurs/{target.id}/supprimer", data={"confirmer": "oui"})
    gone = db.session.get(User, target.id)
    assert gone.is_deleted and gone.name == "ancien contributeur" and gone.role == "contributor"
    assert "cible@example.org" not in client.get("/moderation/utilisateurs").get_data(as_text=True)

    login(moderator)
    other = make_user()
    assert client.post(f"/moderation/utilisateurs/{other.id}/role",
                       data={"role": "admin"}).status_code == 403
    assert client.get(f"/moderation/utilisateurs/{other.id}/donnees").status_code == 403
    assert client.post(f"/moderation/utilisateurs/{other.id}/supprimer",
                       data={"confirmer": "oui"}).status_code == 403


def test_unconfirmed_accounts_cannot_be_trusted_nor_moderators(client, login, make_user, smtp):
    admin = make_user("admin")
    register(client, email="neuf@example.org", name="Compte Neuf")
    user = find_user("neuf@example.org")
    login(admin)
    client.post(f"/moderation/utilisateurs/{user.id}/confiance")
    client.post(f"/moderation/utilisateurs/{user.id}/role", data={"role": "moderator"})
    user = db.session.get(User, user.id)
    assert not user.trusted and user.role == "contributor"
    assert "adresse non confirmée" in client.get("/moderation/utilisateurs").get_data(as_text=True)


def test_the_last_admin_stays(client, login, make_user):
    admin = make_user("admin")
    login(make_user("admin"))
    client.post(f"/moderation/utilisateurs/{admin.id}/role", data={"role": "contributor"})
    assert db.session.get(User, admin.id).role == "contributor"  # another admin remains
    runner = client.application.test_cli_runner()
    last = runner.invoke(args=["users", "set-role", db.session.get(User, admin.id).email, "admin"])
    assert last.exit_code == 0
    lone = [u for u in db.session.scalars(select(User).where(User.role == "admin"))]
    for user in lone[1:]:
        assert runner.invoke(args=["users", "set-role", user.email, "contributor"]).exit_code == 0
    refused = runner.invoke(args=["users", "set-role", lone[0].email, "contributor"])
    assert refused.exit_code != 0 and "dernier administrateur" in refused.output


def test_users_on_the_command_line(app, client, make_user):
    runner = app.test_cli_runner()
    made = runner.invoke(args=["users", "create", "ana@example.org", "--role", "moderator",
                               "--password", NEW_PASSWORD, "--name", "Ana"])
    assert made.exit_code == 0, made.output
    ana = find_user("ana@example.org")
    assert ana.is_confirmed  # made by an admin: confirmed
    weak = runner.invoke(args=["users", "create", "b@example.org", "--password", "court"])
    assert weak.exit_code != 0 and "10 caractères" in weak.output
    listed = runner.invoke(args=["users", "list"]).output
    assert f"{ana.id}\tana@example.org\tmoderator\tactif\tAna" in listed
    assert runner.invoke(args=["users", "set-role", "ana@example.org", "chef"]).exit_code != 0
    assert runner.invoke(args=["users", "set-role", "ana@example.org", "admin"]).exit_code == 0
    assert find_user("ana@example.org").role == "admin"

    device = app.test_client()
    web_login(device, "ana@example.org", NEW_PASSWORD)
    blocked = runner.invoke(args=["users", "block", "ana@example.org", "--reason", "départ"])
    assert blocked.exit_code == 0, blocked.output
    assert find_user("ana@example.org").blocked and not logged_in(device)
    assert "bloqué" in runner.invoke(args=["users", "list"]).output
    assert runner.invoke(args=["users", "block", "ana@example.org", "--reason", "retour",
                               "--unblock"]).exit_code == 0
    assert not find_user("ana@example.org").blocked


# --- password rules -------------------------------------------------------------------------

@pytest.mark.parametrize("password, refused", [
    ("trois chats sur un toit", None),
    ("court", "au moins 10"),
    ("x" * 201, "au plus 200"),
    ("aaaaaaaaaaaa", "trop courant"),
    ("azertyuiop", "trop courant"),
    ("Jean Dupont 1990", "votre nom"),
    ("secret-dupont!", "votre nom"),
    ("jean.dupont.mdp", "votre nom"),
    ("Éléonore-2026!", "votre nom"),
    ("example-secret-2026", None),  # the provider's name is not the person's
])
def test_password_rules(password, refused):
    from kb.auth.passwords import password_problem

    problem = password_problem(password, "jean.dupont@example.org", "Jean Dupont Éléonore")
    if refused is None:
        assert problem is None
    else:
        assert problem is not None and refused in problem


def test_forms_that_mail_a_typed_address_share_the_registration_budget(app_config, pg_database):
    from kb import create_app

    app = create_app({**app_config, "RATELIMIT_ENABLED": True, "KB_RATE_LIMIT_REGISTER": "2 per hour"})
    with app.app_context():
        if pg_database is None:
            db.create_all()
        client = app.test_client()
        try:
            # Counted per address typed (whatever its capitals), whatever the form.
            assert client.post("/connexion/mot-de-passe-oublie",
                               data={"email": "a@example.org"}).status_code == 302
            assert client.post("/inscription/renvoyer",
                               data={"email": "A@Example.org"}).status_code == 302
            refused = client.post("/connexion/mot-de-passe-oublie", data={"email": "a@example.org"})
            assert refused.status_code == 429
            assert "Trop de tentatives" in refused.get_data(as_text=True)
            assert client.post("/connexion/mot-de-passe-oublie",
                               data={"email": "c@example.org"}).status_code == 302
        finally:
            db.session.remove()
            db.engine.dispose()
