"""Asking an initiative's team a precise question: relayed by mail without revealing anyone's
address, answered through a signed link, reminder then polite closure, publication only with
both consents and after moderation. Through a real SMTP server and the real pages."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from html import unescape as text

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kb.auth.models import User
from kb.extensions import db
from kb.questions import operations
from kb.questions.models import Question
from kb.sheets.models import Revision
from kb.timeutil import utcnow
from kb.transaction import commit
from tests.smtp_server import Inbox

QUESTION = "Comment avez-vous obtenu l'accord de la DGFIP pour l'accueil commun ?"
PURPOSE = "Convaincre notre sous-préfecture d'ouvrir un accueil sans rendez-vous."
CONTACT = "equipe.accueil@mairie-exemple.fr"


@pytest.fixture
def team(make_user: Callable[..., User]) -> User:
    return make_user("contributor", trusted=True, email="porteuse@example.org", name="Paula Porteuse")


@pytest.fixture
def asker(make_user: Callable[..., User]) -> User:
    return make_user("contributor", email="asker@example.org", name="Ali Asker")


@pytest.fixture
def sheet(make_sheet: Callable[..., Revision], team: User) -> Revision:
    return make_sheet(author=team, contacts=f"Écrire à {CONTACT} ou appeler la mairie.")


def html(client: FlaskClient, url: str) -> str:
    return text(client.get(url).get_data(as_text=True))


def _ask(client: FlaskClient, slug: str, consents: bool = False, **overrides: str):  # type: ignore[no-untyped-def]
    form = {"question": QUESTION, "purpose": PURPOSE, **overrides}
    if consents:
        form["consents"] = "y"
    return client.post(f"/fiches/{slug}/questions/nouvelle", data=form)


def _answer_link(inbox: Inbox, address: str) -> str:
    body = Inbox.body(inbox.to(address)[-1])
    match = re.search(r"http://kb\.test(/questions/repondre/\S+)", body)
    assert match, body
    return match.group(1)


def test_question_is_relayed_to_the_team_and_the_contact_without_leaking_addresses(
        client: FlaskClient, login: Callable[[User | None], None], smtp: Inbox,
        sheet: Revision, team: User, asker: User) -> None:
    login(asker)
    response = _ask(client, sheet.sheet.slug)
    assert response.status_code == 302
    to_team, to_contact = smtp.to(team.email), smtp.to(CONTACT)
    assert len(to_team) == 1 and len(to_contact) == 1
    for message in (to_team[0], to_contact[0]):
        body = Inbox.body(message)
        assert QUESTION in body and PURPOSE in body
        assert asker.email not in body and asker.email not in str(message)
    # Only the sheet's contact address is told it can opt out (contributors have account settings).
    assert "/questions/ne-plus-recevoir/" in Inbox.body(to_contact[0])
    assert "/questions/ne-plus-recevoir/" not in Inbox.body(to_team[0])
    # The asker's pages never show the team's addresses.
    page = html(client, "/mes-questions")
    assert QUESTION in page and team.email not in page and CONTACT not in page


def test_answer_by_link_without_account_notifies_the_asker(
        app: Flask, client: FlaskClient, login: Callable[[User | None], None], smtp: Inbox,
        sheet: Revision, team: User, asker: User) -> None:
    login(asker)
    _ask(client, sheet.sheet.slug)
    link = _answer_link(smtp, team.email)
    login(None)  # the team answers without signing in
    page = client.get(link)
    assert page.status_code == 200 and QUESTION in text(page.get_data(as_text=True))
    response = client.post(link, data={"answer": "Par une convention signée avec le préfet."})
    assert response.status_code == 302
    answered = smtp.to(asker.email)
    assert len(answered) == 1
    assert "Par une convention signée avec le préfet." in Inbox.body(answered[0])
    assert team.email not in Inbox.body(answered[0]) and CONTACT not in Inbox.body(answered[0])
    login(asker)
    assert "Par une convention signée avec le préfet." in html(client, "/mes-questions")
    # An answer is a sign of life for the sheet's freshness.
    question = db.session.scalars(db.select(Question)).one()
    db.session.refresh(question.sheet)
    assert question.sheet.last_reviewed_at >= question.answered_at  # type: ignore[operator]
    # The link cannot be used twice.
    login(None)
    again = client.post(link, data={"answer": "Autre chose"})
    assert "Autre chose" not in again.get_data(as_text=True)
    assert len(smtp.to(asker.email)) == 1


def test_a_forged_or_tampered_answer_link_is_refused(
        client: FlaskClient, login: Callable[[User | None], None], smtp: Inbox,
        sheet: Revision, team: User, asker: User) -> None:
    login(asker)
    _ask(client, sheet.sheet.slug)
    link = _answer_link(smtp, team.email)
    assert client.get(link + "x").status_code == 404
    assert client.get("/questions/repondre/abc.def").status_code == 404


def test_one_open_question_per_person_per_sheet_and_the_text_is_kept(
        client: FlaskClient, login: Callable[[User | None], None], smtp: Inbox,
        sheet: Revision, asker: User) -> None:
    login(asker)
    assert _ask(client, sheet.sheet.slug).status_code == 302
    second = _ask(client, sheet.sheet.slug, question="Une deuxième question bien précise ?")
    assert second.status_code == 422
    page = text(second.get_data(as_text=True))
    assert "déjà une question en attente" in page
    assert "Une deuxième question bien précise ?" in page  # nothing the person wrote is lost


def test_questions_are_rate_limited_per_person(
        app: Flask, client: FlaskClient, login: Callable[[User | None], None], smtp: Inbox,
        make_sheet: Callable[..., Revision], team: User, asker: User) -> None:
    app.config["KB_QUESTIONS_PER_DAY"] = 2
    slugs = [make_sheet(author=team, title=f"Initiative {n}").sheet.slug for n in range(3)]
    login(asker)
    assert _ask(client, slugs[0]).status_code == 302
    assert _ask(client, slugs[1]).status_code == 302
    third = _ask(client, slugs[2])
    assert third.status_code == 422 and "24 heures" in text(third.get_data(as_text=True))


def test_both_fields_are_required(client: FlaskClient, login: Callable[[User | None], None],
                                  smtp: Inbox, sheet: Revision, asker: User) -> None:
    login(asker)
    response = _ask(client, sheet.sheet.slug, purpose="")
    assert response.status_code == 422
    assert smtp.messages == []


def test_anonymous_and_unconfirmed_accounts_cannot_ask(
        client: FlaskClient, login: Callable[[User | None], None], smtp: Inbox,
        sheet: Revision, asker: User, bearer: Callable[[User], dict[str, str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    response = _ask(client, sheet.sheet.slug)
    assert response.status_code == 302 and "/connexion" in response.headers["Location"]
    monkeypatch.setattr(User, "is_confirmed", property(lambda self: False), raising=False)
    login(asker)
    assert _ask(client, sheet.sheet.slug).status_code == 403
    api = client.post(f"/api/v1/sheets/{sheet.sheet.slug}/questions", headers=bearer(asker),
                      json={"question": QUESTION, "purpose": PURPOSE})
    assert api.status_code == 403
    assert smtp.messages == []


def test_unanswered_question_gets_one_reminder_then_is_closed_and_the_asker_told(
        app: Flask, client: FlaskClient, login: Callable[[User | None], None], smtp: Inbox,
        sheet: Revision, team: User, asker: User) -> None:
    login(asker)
    _ask(client, sheet.sheet.slug)
    start = utcnow()
    assert not operations.sweep(start + timedelta(days=9)).reminded
    run = operations.sweep(start + timedelta(days=10, minutes=1))
    commit()
    assert len(run.reminded) == 1
    assert len(smtp.to(team.email)) == 2 and "Rappel" in smtp.to(team.email)[1]["Subject"]
    # Running again the same day reminds nobody twice.
    again = operations.sweep(start + timedelta(days=10, minutes=2))
    commit()
    assert not again.reminded and not again.closed
    closed = operations.sweep(start + timedelta(days=17, minutes=2))
    commit()
    assert len(closed.closed) == 1
    told = smtp.to(asker.email)
    assert len(told) == 1 and "n'a pas reçu de réponse" in Inbox.body(told[0])
    assert len(smtp.to(team.email)) == 2  # no more mail to the team
    login(None)
    link = _answer_link(smtp, team.email)
    assert "close" in html(client, link)


def _answered_question(client: FlaskClient, login: Callable[[User | None], None], smtp: Inbox,
                       slug: str, team: User, asker: User, asker_consents: bool,
                       team_consents: bool) -> str:
    login(asker)
    _ask(client, slug, consents=asker_consents)
    link = _answer_link(smtp, team.email)
    login(None)
    form = {"answer": "Réponse publiable : une convention avec le préfet."}
    if team_consents:
        form["consents"] = "y"
    client.post(link, data=form)
    return link


@pytest.mark.parametrize("asker_consents,team_consents", [(True, False), (False, True)])
def test_no_publication_without_both_consents(
        client: FlaskClient, login: Callable[[User | None], None], smtp: Inbox, sheet: Revision,
        team: User, asker: User, moderator: User, asker_consents: bool, team_consents: bool
) -> None:
    _answered_question(client, login, smtp, sheet.sheet.slug, team, asker, asker_consents,
                       team_consents)
    login(moderator)
    assert "Réponse publiable" not in html(client, "/moderation/questions")
    assert "Réponse publiable" not in html(client, f"/fiches/{sheet.sheet.slug}")


def test_publication_with_both_consents_after_moderation(
        client: FlaskClient, login: Callable[[User | None], None], smtp: Inbox, sheet: Revision,
        team: User, asker: User, moderator: User) -> None:
    slug = sheet.sheet.slug
    _answered_question(client, login, smtp, slug, team, asker, True, True)
    login(None)
    assert "Réponse publiable" not in html(client, f"/fiches/{slug}")
    assert client.get("/api/v1/search?q=préfet").get_json()["items"] == []
    assert client.get(f"/api/v1/sheets/{slug}/questions").get_json()["items"] == []
    login(asker)  # a contributor is not a moderator
    assert client.get("/moderation/questions").status_code == 403
    login(moderator)
    queue = html(client, "/moderation/questions")
    assert "Réponse publiable" in queue
    question = db.session.scalars(db.select(Question)).one()
    assert client.post(f"/moderation/questions/{question.id}/publier").status_code == 302
    login(None)
    page = html(client, f"/fiches/{slug}")
    assert "Questions et réponses" in page and "Réponse publiable" in page
    assert asker.email not in page and team.email not in page
    items = client.get(f"/api/v1/sheets/{slug}/questions").get_json()["items"]
    assert [i["answer"] for i in items] == ["Réponse publiable : une convention avec le préfet."]
    # Readers find the sheet by its published questions and answers.
    found = client.get("/api/v1/search?q=préfet").get_json()["items"]
    assert [i["slug"] for i in found] == [slug]
    # The asker withdraws consent: unpublished at once.
    login(asker)
    client.post(f"/mes-questions/{question.id}/publication", data={})
    login(None)
    assert "Réponse publiable" not in html(client, f"/fiches/{slug}")
    assert client.get("/api/v1/search?q=préfet").get_json()["items"] == []


def test_a_reported_published_question_leaves_the_page_until_a_moderator_decides(
        client: FlaskClient, login: Callable[[User | None], None], smtp: Inbox, sheet: Revision,
        team: User, asker: User, moderator: User) -> None:
    slug = sheet.sheet.slug
    _answered_question(client, login, smtp, slug, team, asker, True, True)
    question = db.session.scalars(db.select(Question)).one()
    login(moderator)
    client.post(f"/moderation/questions/{question.id}/publier")
    login(None)
    response = client.post(f"/fiches/{slug}/questions/{question.id}/signaler",
                           data={"reason": "Données personnelles d'un usager"})
    assert response.status_code == 302
    assert "Réponse publiable" not in html(client, f"/fiches/{slug}")
    login(moderator)
    assert "Données personnelles d'un usager" in html(client, "/moderation/questions")


def test_the_team_can_report_an_abusive_question_which_closes_it(
        client: FlaskClient, login: Callable[[User | None], None], smtp: Inbox, sheet: Revision,
        team: User, asker: User) -> None:
    login(asker)
    _ask(client, sheet.sheet.slug)
    link = _answer_link(smtp, team.email)
    login(None)
    client.post(link, data={"report-reason": "Démarchage commercial"})
    question = db.session.scalars(db.select(Question)).one()
    assert question.status == "closed" and question.close_reason == "reported"
    assert len(smtp.to(asker.email)) == 1  # told, never a silent void


def test_a_contact_address_can_opt_out_with_one_click(
        client: FlaskClient, login: Callable[[User | None], None], smtp: Inbox,
        make_sheet: Callable[..., Revision], sheet: Revision, team: User, asker: User) -> None:
    login(asker)
    _ask(client, sheet.sheet.slug)
    body = Inbox.body(smtp.to(CONTACT)[0])
    opt_out = re.search(r"http://kb\.test(/questions/ne-plus-recevoir/\S+)", body)
    assert opt_out
    login(None)
    assert client.get(opt_out.group(1)).status_code == 200  # a GET (link scanner) changes nothing
    other = make_sheet(author=team, title="Autre initiative",
                       contacts=f"Contact : {CONTACT}")
    client.post(opt_out.group(1))
    login(asker)
    _ask(client, other.sheet.slug)
    assert len(smtp.to(CONTACT)) == 1  # no second question relayed
    assert len(smtp.to(team.email)) == 2


def test_api_asks_and_lists_published_questions(
        client: FlaskClient, smtp: Inbox, sheet: Revision, asker: User,
        bearer: Callable[[User], dict[str, str]]) -> None:
    slug = sheet.sheet.slug
    anonymous = client.post(f"/api/v1/sheets/{slug}/questions",
                            json={"question": QUESTION, "purpose": PURPOSE})
    assert anonymous.status_code == 401
    bad = client.post(f"/api/v1/sheets/{slug}/questions", headers=bearer(asker),
                      json={"question": QUESTION})
    assert bad.status_code == 422 and "purpose" in bad.get_json()["message"]
    created = client.post(f"/api/v1/sheets/{slug}/questions", headers=bearer(asker),
                          json={"question": QUESTION, "purpose": PURPOSE})
    assert created.status_code == 201
    assert set(created.get_json()) == {"id", "status"} and created.get_json()["status"] == "open"
    assert client.get("/api/v1/sheets/inconnue/questions").status_code == 404
    spec = client.get("/api/openapi.json").get_json()
    assert {"get", "post"} <= set(spec["paths"]["/api/v1/sheets/{slug}/questions"])


def test_links_in_relayed_text_are_not_clickable(
        client: FlaskClient, login: Callable[[User | None], None], smtp: Inbox, sheet: Revision,
        team: User, asker: User) -> None:
    login(asker)
    _ask(client, sheet.sheet.slug,
         question="Pouvez-vous regarder https://phishing.example/login avant jeudi ?")
    body = Inbox.body(smtp.to(team.email)[0])
    assert "https://phishing.example" not in body and "hxxps://phishing.example" in body


def test_moderators_see_counts_and_median_time_to_answer(
        client: FlaskClient, login: Callable[[User | None], None], smtp: Inbox, sheet: Revision,
        team: User, asker: User, moderator: User) -> None:
    _answered_question(client, login, smtp, sheet.sheet.slug, team, asker, False, False)
    stats = operations.stats()
    assert (stats.asked, stats.answered) == (1, 1) and stats.median_hours is not None
    login(moderator)
    page = html(client, "/moderation/questions")
    assert "Questions posées : 1" in page and "répondues : 1" in page
    dashboard = html(client, "/moderation/tableau-de-bord")
    assert "1 question posée, 1 répondue, délai médian de réponse" in dashboard
