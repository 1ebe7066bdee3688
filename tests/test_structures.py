"""Structures (issue 24): SIRET rules, joining (invitation, request, ProConnect), leaving, a
sheet's team, the freshness letter reaching members, members' publishing, pages and API."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import select

from kb.errors import Conflict, Invalid, PermissionDenied
from kb.extensions import db
from kb.freshness import operations as freshness
from kb.mail.models import OutboxMail
from kb.questions.operations import team_of
from kb.sheets import operations as sheets
from kb.sheets.models import RevisionStatus, Sheet
from kb.structures import operations
from kb.structures.models import JoinedVia, MemberRole, MemberState, Structure
from kb.structures.team import sheet_team
from kb.timeutil import utcnow
from kb.transaction import commit

SIRET = "73282932000074"  # a real SIRET: 14 digits whose Luhn check digit holds
OTHER_SIRET = "35600000000048"
BAD_CHECK_DIGIT = "73282932000075"


def structure(moderator, **values) -> Structure:
    row = operations.create_structure({"name": "CCAS de Brest", **values}, moderator)
    commit()
    return row


def member(s: Structure, user, moderator, role: MemberRole = MemberRole.MEMBER) -> None:
    operations.add_member(s, user, moderator, role)
    commit()


def carried(make_sheet, s: Structure, **fields) -> Sheet:
    sheet = make_sheet(**fields).sheet
    sheet.structure_id = s.id
    commit()
    return sheet


def outbox(to: str) -> list[OutboxMail]:
    return list(db.session.scalars(select(OutboxMail).where(OutboxMail.recipient == to)))


# --- the model: SIRET --------------------------------------------------------------------

def test_two_structures_with_one_siret_are_refused_and_a_bad_check_digit_too(app, moderator):
    first = structure(moderator, siret="732 829 320 00074")
    assert first.siret == SIRET  # spaces dropped
    with pytest.raises(Conflict, match="déjà ce SIRET.*CCAS de Brest"):
        operations.create_structure({"name": "Autre nom", "siret": SIRET}, moderator)
    db.session.rollback()
    with pytest.raises(Invalid, match="clé de contrôle"):
        operations.create_structure({"name": "Mauvais", "siret": BAD_CHECK_DIGIT}, moderator)
    with pytest.raises(Invalid, match="14 chiffres"):
        operations.create_structure({"name": "Court", "siret": "1234"}, moderator)
    # Informal collectives have none; several may exist.
    structure(moderator, name="Collectif A")
    structure(moderator, name="Collectif B")
    assert db.session.query(Structure).count() == 3


def test_the_database_refuses_a_second_siret_whatever_the_caller(app, moderator):
    structure(moderator, siret=SIRET)
    db.session.add(Structure(name="Doublon", siret=SIRET))
    with pytest.raises(Exception, match="(?i)unique"):
        db.session.flush()
    db.session.rollback()


def test_the_form_refuses_a_taken_siret_with_a_french_message(client, login, moderator):
    structure(moderator, siret=SIRET)
    login(moderator)
    response = client.post("/structures/nouvelle", data={"name": "Autre", "siret": SIRET})
    assert response.status_code == 422
    assert "déjà pris" in response.get_data(as_text=True)
    response = client.post("/structures/nouvelle", data={
        "name": "Mission locale", "siret": OTHER_SIRET, "type": "association",
        "networks": ["mission-locale"], "commune_code": "29019", "website": "https://ml.example"})
    assert response.status_code == 302
    created = db.session.scalar(select(Structure).where(Structure.siret == OTHER_SIRET))
    assert created.networks == ["mission-locale"] and created.commune_code == "29019"


def test_unknown_type_network_and_commune_are_refused(app, moderator):
    with pytest.raises(Invalid) as refused:
        operations.create_structure({"name": "X", "type": "ovni", "networks": ["inconnu"],
                                     "commune_code": "00000"}, moderator)
    assert set(refused.value.extra["fields"]) == {"type", "networks", "commune_code"}


def test_the_commune_is_given_by_its_name_and_the_form_shows_it_by_name(client, login, moderator):
    s = operations.create_structure({"name": "CCAS", "commune_code": "Brest"}, moderator)
    commit()
    assert s.commune_code == "29019"
    with pytest.raises(Invalid) as refused:  # a name several communes have: say which
        operations.create_structure({"name": "Y", "commune_code": "Saint-Denis"}, moderator)
    assert "plusieurs communes" in refused.value.extra["fields"]["commune_code"]
    login(moderator)
    form = unescape(client.get(f"/structures/{s.id}/modifier").get_data(as_text=True))
    label = re.search(r'id="commune_code"[^>]*value="([^"]*)"', form).group(1)
    assert label.startswith("Brest")
    assert client.post(f"/structures/{s.id}/modifier",
                       data={"name": "CCAS", "commune_code": label}).status_code == 302
    assert db.session.get(Structure, s.id).commune_code == "29019"  # sent back as shown: kept


def test_only_moderators_create_structures(client, login, contributor):
    login(contributor)
    assert client.post("/structures/nouvelle", data={"name": "X"}).status_code == 403


# --- joining and leaving -----------------------------------------------------------------

def test_invite_by_address_then_the_invited_account_joins_and_a_forwarded_link_does_not(
        app, client, login, make_user, moderator):
    s = structure(moderator)
    admin = make_user(email="admin@ccas-brest.fr")
    member(s, admin, moderator, MemberRole.ADMIN)
    invited = make_user(email="agent@ccas-brest.fr")
    stranger = make_user(email="someone@example.org")

    login(admin)
    assert client.post(f"/structures/{s.id}/inviter",
                       data={"email": "agent@ccas-brest.fr"}).status_code == 302
    [mail] = outbox("agent@ccas-brest.fr")
    assert mail.transactional and "CCAS de Brest" in mail.subject
    [path] = re.findall(r"http://kb\.test(/structures/invitation/\S+)", mail.body_text)

    login(stranger)
    assert client.post(path).status_code == 403  # the link is for another address
    login(invited)
    assert client.get(path).status_code == 200  # opening it changes nothing
    assert operations.membership(s, invited) is None
    assert client.post(path).status_code == 302
    row = operations.membership(s, invited)
    assert row.is_active and row.joined_via == JoinedVia.INVITATION
    assert client.post(path).status_code == 409  # single use


def test_a_contributor_cannot_invite(app, client, login, contributor, moderator):
    s = structure(moderator)
    login(contributor)
    assert client.post(f"/structures/{s.id}/inviter", data={"email": "a@b.fr"}).status_code == 403
    assert outbox("a@b.fr") == []


def test_ask_to_join_then_an_administrator_accepts_and_a_moderator_may_too(
        app, client, login, make_user, moderator):
    s = structure(moderator)
    admin = make_user()
    member(s, admin, moderator, MemberRole.ADMIN)
    asker, other = make_user(), make_user()

    login(asker)
    assert client.post(f"/structures/{s.id}/rejoindre").status_code == 302
    row = operations.membership(s, asker)
    assert row.state == MemberState.REQUESTED and not row.is_active
    login(other)  # a plain member of nothing cannot decide
    assert client.post(f"/structures/{s.id}/demandes/{row.id}",
                       data={"decision": "accepter"}).status_code == 403
    login(admin)
    page = client.get(f"/structures/{s.id}-{s.slug}").get_data(as_text=True)
    assert asker.name in page and "Accepter" in page
    assert client.post(f"/structures/{s.id}/demandes/{row.id}",
                       data={"decision": "accepter"}).status_code == 302
    assert operations.membership(s, asker).is_active

    login(other)
    client.post(f"/structures/{s.id}/rejoindre")
    login(moderator)
    row = operations.membership(s, other)
    assert client.post(f"/structures/{s.id}/demandes/{row.id}",
                       data={"decision": "refuser"}).status_code == 302
    assert not operations.membership(s, other).is_active


def test_leaving_is_one_csrf_protected_post(app, client, login, make_user, moderator):
    s = structure(moderator)
    agent = make_user()
    member(s, agent, moderator)
    login(agent)
    assert client.get(f"/structures/{s.id}/quitter").status_code == 405
    assert client.post(f"/structures/{s.id}/quitter").status_code == 302
    assert operations.membership(s, agent).state == MemberState.LEFT


def test_leaving_checks_the_csrf_token(app_config, make_user, moderator):
    from kb import create_app

    app = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    s = structure(moderator)
    agent = make_user()
    member(s, agent, moderator)
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = agent.get_id()
    assert client.post(f"/structures/{s.id}/quitter").status_code == 400
    assert operations.membership(s, agent).is_active


# --- the team ----------------------------------------------------------------------------

def test_a_sheets_team_is_its_structures_members_plus_its_contributors_and_survives_a_leaver(
        app, make_sheet, make_user, moderator):
    s = structure(moderator)
    writer = make_user("moderator", name="Rédactrice")
    sheet = carried(make_sheet, s, author=writer)
    stays, leaves, blocked = make_user(), make_user(), make_user()
    for person in (stays, leaves, blocked):
        member(s, person, moderator)
    blocked.blocked = True
    commit()
    assert {u.id for u in sheet_team(sheet)} == {writer.id, stays.id, leaves.id}

    operations.leave(s, leaves)
    commit()
    assert [u.id for u in sheet_team(sheet)] == [writer.id, stays.id]
    # Question relays ask the same team.
    assert {u.id for u in team_of(sheet).contributors} == {writer.id, stays.id}


def test_the_freshness_letter_for_a_structures_sheet_reaches_its_members(
        app, make_sheet, make_user, moderator):
    s = structure(moderator)
    agent = make_user(email="agent@ccas-brest.fr")
    member(s, agent, moderator)
    sheet = carried(make_sheet, s, title="Accueil au CCAS")
    sheet.last_reviewed_at = utcnow() - timedelta(days=400)
    commit()
    run = freshness.send_reminders()
    commit()
    [letter] = outbox("agent@ccas-brest.fr")
    assert "Accueil au CCAS" in letter.body_text
    assert sheet not in run.stale


# --- ProConnect (the OIDC sign-in's handler, called directly) ------------------------------

def test_a_proconnect_sign_in_with_a_new_siret_creates_the_structure_and_makes_an_admin(
        app, make_user):
    agent = make_user(email="agent@ccas-brest.fr")
    row = operations.on_oidc_signed_in(agent, {"siret": SIRET})
    commit()
    s = operations.by_siret(SIRET)
    assert s is not None and row.structure_id == s.id
    assert row.administers and row.joined_via == JoinedVia.PROCONNECT
    assert not s.verified  # one ProConnect member is not enough


def test_a_known_siret_joins_at_once_when_the_domain_is_used_otherwise_asks_and_two_verify(
        app, make_user):
    first = make_user(email="a@ccas-brest.fr")
    operations.on_oidc_signed_in(first, {"siret": SIRET})
    colleague = make_user(email="b@ccas-brest.fr")
    row = operations.on_oidc_signed_in(colleague, {"siret": SIRET})
    commit()
    s = operations.by_siret(SIRET)
    assert row.is_active
    assert s.verified and s.verified_how == "proconnect"  # two members proved the SIRET

    outsider = make_user(email="x@gmail.example")
    row = operations.on_oidc_signed_in(outsider, {"siret": SIRET})
    commit()
    assert row.state == MemberState.REQUESTED and row.joined_via == JoinedVia.PROCONNECT
    assert operations.on_oidc_signed_in(outsider, {"siret": BAD_CHECK_DIGIT}) is None
    assert operations.on_oidc_signed_in(outsider, {}) is None


# --- trust -------------------------------------------------------------------------------

def test_members_of_a_verified_structure_publish_their_changes_to_its_sheets_at_once(
        app, make_sheet, make_user, moderator):
    s = structure(moderator)
    agent = make_user()
    member(s, agent, moderator)
    sheet = carried(make_sheet, s)
    elsewhere = make_sheet(title="Une autre fiche").sheet

    waits = sheets.edit_sheet(sheet, {"summary": "Avant vérification."}, agent, None)
    commit()
    assert waits.status == RevisionStatus.PENDING  # unverified structure: the usual rules

    operations.verify(s, moderator)
    commit()
    published = sheets.edit_sheet(sheet, {"summary": "Après vérification."}, agent, None)
    commit()
    assert published.status == RevisionStatus.APPROVED
    other = sheets.edit_sheet(elsewhere, {"summary": "Ailleurs."}, agent, None)
    commit()
    assert other.status == RevisionStatus.PENDING  # not its structure's sheet

    operations.leave(s, agent)
    commit()
    after = sheets.edit_sheet(sheet, {"summary": "Après départ."}, agent, None)
    commit()
    assert after.status == RevisionStatus.PENDING


def test_a_contributor_cannot_verify_or_link_a_sheet_to_a_structure(
        app, make_sheet, contributor, moderator):
    s = structure(moderator)
    sheet = make_sheet().sheet
    with pytest.raises(PermissionDenied):
        operations.verify(s, contributor)
    with pytest.raises(PermissionDenied):
        operations.link_sheet(sheet, s, contributor)


# --- pages and API -----------------------------------------------------------------------

def test_the_structure_page_lists_its_sheets_freshness_and_the_names_members_show(
        client, make_sheet, make_user, moderator):
    s = structure(moderator, siret=SIRET, commune_code="29019", networks=["france-service"])
    shown, hidden = make_user(name="Agnès Affichée"), make_user(name="Henri Discret")
    member(s, shown, moderator)
    member(s, hidden, moderator)
    operations.set_shown(s, hidden, False)
    commit()
    fresh = carried(make_sheet, s, title="Fiche à jour")
    old = carried(make_sheet, s, title="Fiche ancienne")
    old.last_reviewed_at = utcnow() - timedelta(days=800)
    commit()

    assert client.get(f"/structures/{s.id}").status_code == 301
    assert client.get(f"/structures/{s.id}-mauvais-nom").status_code == 301
    page = client.get(f"/structures/{s.id}-{s.slug}").get_data(as_text=True)
    assert "Fiche à jour" in page and "Fiche ancienne" in page and "dont 1 à actualiser" in page
    assert "Agnès Affichée" in page and "Henri Discret" not in page
    assert "Brest" in page and SIRET in page
    assert "@" not in page.split("<main", 1)[-1].split("</main>")[0]  # no address
    sheet_page = client.get(f"/fiches/{fresh.slug}").get_data(as_text=True)
    assert f'href="/structures/{s.id}-{s.slug}">Mairie de Brest</a>' in sheet_page
    assert client.get("/structures/999999-x").status_code == 404


def test_every_sheet_object_names_its_structure_or_null(client, make_sheet, moderator):
    s = structure(moderator, siret=SIRET)
    linked = carried(make_sheet, s, title="Portée")
    alone = make_sheet(title="Seule").sheet
    items = {o["slug"]: o for o in client.get("/api/v1/sheets").get_json()["items"]}
    assert items[linked.slug]["structure"] == {
        "id": s.id, "name": "CCAS de Brest", "siret": SIRET,
        "url": f"http://kb.test/structures/{s.id}-ccas-de-brest"}
    assert items[alone.slug]["structure"] is None
    assert client.get(f"/api/v1/sheets/{linked.slug}").get_json()["structure"]["id"] == s.id


def test_the_structures_api_gives_public_data_only(client, make_sheet, make_user, moderator):
    s = structure(moderator, siret=SIRET)
    agent = make_user(email="agent@ccas-brest.fr", name="Agent Public")
    member(s, agent, moderator)
    carried(make_sheet, s, title="Portée")
    listing = client.get("/api/v1/structures").get_json()
    assert listing["total"] == 1 and listing["items"][0]["siret"] == SIRET
    detail = client.get(f"/api/v1/structures/{s.id}")
    body = detail.get_data(as_text=True)
    assert detail.get_json()["members"] == ["Agent Public"]
    assert [x["title"] for x in detail.get_json()["sheets"]] == ["Portée"]
    assert "@" not in body
    missing = client.get("/api/v1/structures/999999")
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"
    paths = client.get("/api/openapi.json").get_json()["paths"]
    assert "/api/v1/structures/{id}" in paths


def test_moderators_see_likely_matches_by_name_and_commune_and_link_them(
        client, login, make_sheet, moderator):
    s = structure(moderator, name="Mairie de Brest", commune_code="29019")
    elsewhere = structure(moderator, name="Mairie de Brest ", commune_code="75056")
    sheet = make_sheet().sheet  # actor "Mairie de Brest", in Brest
    login(moderator)
    page = client.get("/moderation/structures").get_data(as_text=True)
    assert sheet.title in page and f"value=\"{s.id}\"" in page
    assert f"value=\"{elsewhere.id}\"" not in page  # same name, another commune
    client.post(f"/fiches/{sheet.slug}/structure", data={"structure_id": s.id, "next": "matches"})
    assert db.session.get(Sheet, sheet.id).structure_id == s.id
    assert sheet.title not in client.get("/moderation/structures").get_data(as_text=True)


def test_through_the_api_a_verified_members_edit_is_published_at_once(
        client, bearer, make_sheet, make_user, moderator):
    s = structure(moderator)
    agent = make_user()
    member(s, agent, moderator)
    operations.verify(s, moderator)
    commit()
    sheet = carried(make_sheet, s)
    response = client.patch(f"/api/v1/sheets/{sheet.slug}", headers=bearer(agent),
                            json={"summary": "Mis à jour par la structure.",
                                  "base_revision": sheet.approved_revision_id})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "approved"


# --- a request to join reaches the people who decide ---------------------------------------

def test_a_request_to_join_mails_the_administrators_with_the_page_to_accept_it(
        app, client, login, make_user, moderator):
    s = structure(moderator)
    admin = make_user(email="admin@ccas-brest.fr")
    member(s, admin, moderator, MemberRole.ADMIN)
    plain = make_user(email="membre@ccas-brest.fr")
    member(s, plain, moderator)
    asker = make_user(email="asker@ccas-brest.fr", name="Anne Demandeuse")

    login(asker)
    client.post(f"/structures/{s.id}/rejoindre")
    client.post(f"/structures/{s.id}/rejoindre")  # asking again while it waits: no second mail
    [mail] = outbox("admin@ccas-brest.fr")
    assert "CCAS de Brest" in mail.subject and "Anne Demandeuse" in mail.body_text
    assert not mail.transactional and mail.kind == "structure.request"
    [path] = re.findall(r"http://kb\.test(/structures/\S+)#demandes", mail.body_text)
    assert outbox("membre@ccas-brest.fr") == [] and outbox(moderator.email) == []

    login(admin)  # the link leads to the request and its "Accepter" button
    page = client.get(path).get_data(as_text=True)
    assert 'id="demandes"' in page and "Anne Demandeuse" in page and "Accepter" in page


def test_without_an_administrator_the_moderators_are_told_also_of_a_proconnect_request(
        app, make_user, moderator):
    s = structure(moderator, siret=SIRET)
    agent = make_user(email="agent@mairie.example")
    member(s, agent, moderator)  # a plain member: nobody administers it
    asker = make_user(email="someone@elsewhere.example")
    operations.on_oidc_signed_in(asker, {"siret": SIRET})
    commit()
    [mail] = outbox(moderator.email)
    assert "ProConnect" in mail.body_text and "pas d'administrateur" in mail.body_text
    assert outbox("agent@mairie.example") == []


# --- editing a structure ---------------------------------------------------------------------

def test_administrators_and_moderators_edit_a_structure_and_a_taken_siret_is_a_french_error(
        app, client, login, make_user, moderator):
    from kb.auth.permissions import Capability, can

    s = structure(moderator, siret=SIRET)
    other = structure(moderator, name="Mission locale", siret=OTHER_SIRET)
    admin, plain, outsider = make_user(), make_user(), make_user()
    member(s, admin, moderator, MemberRole.ADMIN)
    member(s, plain, moderator)
    # The capability table says it: granted on the structure to its administrators.
    assert can(admin, Capability.MANAGE_STRUCTURE, s) and can(moderator, "manage_structure", s)
    assert not can(admin, Capability.MANAGE_STRUCTURE, other)
    assert not can(plain, Capability.MANAGE_STRUCTURE, s)

    for person in (plain, outsider):
        login(person)
        assert client.get(f"/structures/{s.id}/modifier").status_code == 403
        assert client.post(f"/structures/{s.id}/modifier", data={"name": "Pris"}).status_code == 403
    login(admin)
    page = client.get(f"/structures/{s.id}-{s.slug}").get_data(as_text=True)
    assert f"/structures/{s.id}/modifier" in page
    form = client.get(f"/structures/{s.id}/modifier")
    assert form.status_code == 200 and SIRET in form.get_data(as_text=True)

    taken = client.post(f"/structures/{s.id}/modifier", data={"name": "CCAS", "siret": OTHER_SIRET})
    assert taken.status_code == 422 and "déjà pris" in taken.get_data(as_text=True)
    bad = client.post(f"/structures/{s.id}/modifier", data={"name": "CCAS", "siret": BAD_CHECK_DIGIT})
    assert bad.status_code == 422 and "clé de contrôle" in bad.get_data(as_text=True)
    assert db.session.get(Structure, s.id).siret == SIRET

    response = client.post(f"/structures/{s.id}/modifier", data={
        "name": "CCAS de Brest Métropole", "siret": "", "type": "association",
        "networks": ["france-service"], "commune_code": "29019",
        "website": "https://ccas.example"})
    assert response.status_code == 302
    edited = db.session.get(Structure, s.id)
    assert (edited.name, edited.siret, edited.type, edited.networks, edited.commune_code,
            edited.website) == ("CCAS de Brest Métropole", None, "association",
                                ["france-service"], "29019", "https://ccas.example")
    login(moderator)
    assert client.post(f"/structures/{s.id}/modifier", data={
        "name": "CCAS", "siret": SIRET}).status_code == 302
    assert db.session.get(Structure, s.id).siret == SIRET


def test_a_siret_taken_meanwhile_is_a_conflict_not_an_error(app, moderator, monkeypatch):
    s = structure(moderator)
    structure(moderator, name="Autre", siret=SIRET)
    # Another request took the SIRET between the check and the write: the database refuses.
    monkeypatch.setattr(operations, "by_siret", lambda siret: None)
    with pytest.raises(Conflict, match="déjà ce SIRET"):
        operations.update_structure(s, {"siret": SIRET}, moderator)


# --- members link their structure's likely matches -----------------------------------------

def test_members_link_the_likely_matches_they_contribute_to_and_administrators_any(
        app, client, login, make_sheet, make_user, moderator):
    s = structure(moderator, name="Mairie de Brest", commune_code="29019")
    writer, plain, admin = make_user(trusted=True), make_user(), make_user()
    for person in (writer, plain):
        member(s, person, moderator)
    member(s, admin, moderator, MemberRole.ADMIN)
    theirs = make_sheet(author=writer, title="Écrite par un membre").sheet  # actor: Mairie de Brest
    other = make_sheet(title="Écrite par une autre personne").sheet
    unrelated = make_sheet(title="Un autre acteur", actor_name="Association X").sheet

    login(writer)
    page = client.get(f"/structures/{s.id}-{s.slug}").get_data(as_text=True)
    assert theirs.title in page and other.title in page and unrelated.title not in page
    assert page.count("Rattacher</button>") == 1  # only the sheet they contribute to
    assert client.post(f"/fiches/{other.slug}/structure",
                       data={"structure_id": s.id}).status_code == 403
    assert client.post(f"/fiches/{theirs.slug}/structure",
                       data={"structure_id": s.id, "next": "structure"}).status_code == 302
    assert db.session.get(Sheet, theirs.id).structure_id == s.id

    login(plain)  # a member who wrote nothing sees the list, links nothing
    page = client.get(f"/structures/{s.id}-{s.slug}").get_data(as_text=True)
    assert other.title in page and "Rattacher</button>" not in page
    login(make_user())  # not a member: no list
    assert other.title not in client.get(f"/structures/{s.id}-{s.slug}").get_data(as_text=True)

    login(admin)  # administrators link any likely match, never a sheet that names someone else
    assert client.post(f"/fiches/{unrelated.slug}/structure",
                       data={"structure_id": s.id}).status_code == 403
    assert client.post(f"/fiches/{other.slug}/structure",
                       data={"structure_id": s.id}).status_code == 302
    assert db.session.get(Sheet, other.id).structure_id == s.id
    # Moderators keep their list, and link anything.
    login(moderator)
    assert client.get("/moderation/structures").status_code == 200
    assert client.post(f"/fiches/{unrelated.slug}/structure",
                       data={"structure_id": s.id}).status_code == 302


def test_likely_matches_run_a_fixed_number_of_queries_whatever_the_number_of_sheets(
        app, make_sheet, moderator):
    from contextlib import contextmanager

    from sqlalchemy import event

    @contextmanager
    def counted():
        seen: list[str] = []

        def count(_conn, _cursor, statement, *_args):
            seen.append(statement)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            yield seen
        finally:
            event.remove(db.engine, "before_cursor_execute", count)

    structure(moderator, name="Mairie de Brest")
    make_sheet(title="Première")
    make_sheet(title="Deuxième")

    def run() -> tuple[int, int]:
        db.session.expire_all()
        with counted() as seen:
            found = operations.likely_matches()
        return len(found), len(seen)

    two, queries_for_two = run()
    for n in range(6):
        make_sheet(title=f"Encore une {n}")
    eight, queries_for_eight = run()
    assert (two, eight) == (2, 8)
    assert queries_for_eight == queries_for_two <= 2


# --- reachable: the team, and the escalation when nobody is left ----------------------------

def test_a_sheet_whose_structures_only_member_left_escalates_to_the_moderators(
        app, client, make_sheet, make_user, moderator):
    from kb.freshness.letters import DUE, letter_items_for_moderator, letter_items_for_owner

    s = structure(moderator, commune_code="29019")
    agent = make_user(email="agent@ccas-brest.fr")
    member(s, agent, moderator)
    writer = make_user(trusted=True)
    sheet = carried(make_sheet, s, author=writer, title="Accueil au CCAS")
    writer.blocked = True  # its only contributor cannot be asked
    sheet.last_reviewed_at = utcnow() - timedelta(days=800)
    commit()

    # The member is the sheet's reachable team: the letter asks them, not the moderators.
    [item] = letter_items_for_owner(agent, utcnow())
    assert (item.title, item.state) == ("Accueil au CCAS", DUE)
    assert letter_items_for_moderator(moderator, utcnow()) == []
    assert sheet not in freshness.stale_sheets()
    # Its "Confirmer" link works for a member (of an unverified structure, too).
    path = dict(item.actions)["Confirmer"].removeprefix("http://kb.test")
    assert client.post(path).status_code == 200
    assert db.session.get(Sheet, sheet.id).fresh

    sheet.last_reviewed_at = utcnow() - timedelta(days=800)
    commit()
    operations.leave(s, agent)
    commit()
    # Nobody reachable left: in front of the moderators at once, in their letter and queue.
    assert letter_items_for_owner(agent, utcnow()) == []
    [escalated] = letter_items_for_moderator(moderator, utcnow())
    assert escalated.title == "Accueil au CCAS"
    assert [label for label, _ in escalated.actions] == ["Confirmer", "Archiver"]
    assert sheet in freshness.stale_sheets()


def test_a_member_who_accepts_no_mail_is_not_reachable(app, make_sheet, make_user, moderator):
    from kb.freshness.letters import letter_items_for_moderator

    s = structure(moderator)
    agent = make_user()
    member(s, agent, moderator)
    agent.reminder_period_days = 0  # "jamais" in "Mon compte"
    writer = make_user(trusted=True)
    sheet = carried(make_sheet, s, author=writer, title="Accueil au CCAS")
    writer.deleted_at = utcnow()  # a deleted contributor is no one to ask either
    sheet.last_reviewed_at = utcnow() - timedelta(days=800)
    commit()
    assert [i.title for i in letter_items_for_moderator(moderator, utcnow())] == ["Accueil au CCAS"]


def test_a_member_whose_address_is_unconfirmed_is_not_reachable(app, make_sheet, make_user,
                                                                 moderator):
    from kb.freshness.letters import letter_items_for_moderator

    s = structure(moderator)
    agent = make_user()
    member(s, agent, moderator)
    agent.email_confirmed_at = None  # letters go to confirmed addresses only: never mailed
    writer = make_user(trusted=True)
    sheet = carried(make_sheet, s, author=writer, title="Accueil au CCAS")
    writer.deleted_at = utcnow()
    sheet.last_reviewed_at = utcnow() - timedelta(days=800)
    commit()
    assert [i.title for i in letter_items_for_moderator(moderator, utcnow())] == ["Accueil au CCAS"]


def test_the_members_of_its_structure_say_where_places_stand_and_one_who_left_no_longer(
        client, login, make_sheet, make_user, moderator):
    from kb.availability.models import Availability

    s = structure(moderator)  # not verified: availability is not a publication
    agent = make_user()
    member(s, agent, moderator)
    sheet = carried(make_sheet, s, title="Accueil au CCAS")
    login(agent)
    assert client.post(f"/fiches/{sheet.slug}/disponibilite",
                       data={"status": "complet"}).status_code == 302
    assert db.session.scalar(select(Availability.status)) == "complet"
    operations.leave(s, agent)
    commit()
    assert client.post(f"/fiches/{sheet.slug}/disponibilite",
                       data={"status": "places"}).status_code == 403
    assert db.session.scalar(select(Availability.status)) == "complet"


# --- ProConnect: a shared webmail domain proves nothing -------------------------------------

@pytest.mark.parametrize("domain", ["gmail.com", "orange.fr", "hotmail.fr", "outlook.com",
                                    "yahoo.fr", "laposte.net", "protonmail.com", "icloud.com"])
def test_two_people_sharing_a_webmail_domain_do_not_join_at_once(app, make_user, domain):
    first = make_user(email=f"premiere@{domain}")
    created = operations.on_oidc_signed_in(first, {"siret": SIRET})
    second = make_user(email=f"second@{domain}")
    row = operations.on_oidc_signed_in(second, {"siret": SIRET})
    commit()
    assert created.administers  # a new SIRET still makes its first administrator
    assert row.state == MemberState.REQUESTED and not row.is_active
    [mail] = outbox(f"premiere@{domain}")  # the administrator decides
    assert "demande" in mail.body_text


def test_the_webmail_list_spares_employers_domains():
    assert operations.is_webmail("GMAIL.COM") and operations.is_webmail("hotmail.co.uk")
    assert operations.is_webmail("outlook.be") and operations.is_webmail("wanadoo.fr")
    for domain in ("ccas-brest.fr", "laposte.fr", "mail.mairie-brest.fr",
                   "outlook.ccas-brest.fr", "live-brest.fr", "beta.gouv.fr"):
        assert not operations.is_webmail(domain), domain


def test_mon_compte_lists_my_structures_and_my_waiting_request(client, login, make_user,
                                                                 moderator):
    s = structure(moderator)
    other = structure(moderator, name="Mission locale du Pays de Brest")
    agent = make_user()
    member(s, agent, moderator, MemberRole.ADMIN)
    operations.request_to_join(other, agent)
    commit()
    login(agent)
    page = unescape(client.get("/compte").get_data(as_text=True))
    assert "Mes structures" in page
    assert f'href="/structures/{s.id}-{s.slug}">CCAS de Brest</a> : administrateur' in page
    assert "Mission locale du Pays de Brest</a> : demande en attente" in page
    operations.leave(s, agent)
    commit()
    assert "CCAS de Brest" not in client.get("/compte").get_data(as_text=True)
