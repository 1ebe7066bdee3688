"""Availability (issue 23): a sheet's contributors say where places stand in one click, without
a review cycle; the journal keeps it; readers see its age, and "inconnue" after 30 days."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import unescape
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from kb.auth.models import User
from kb.availability import operations as availability
from kb.availability.models import STALE_AFTER, Availability
from kb.extensions import db
from kb.letters.operations import build_letters
from kb.moderation.models import AuditEntry
from kb.sheets.models import Revision, Sheet
from kb.timeutil import utcnow
from kb.transaction import commit
from tests.letter_helpers import Queued, queued_fixture  # noqa: F401  (fixture "queued")


def test_a_contributor_of_the_sheet_updates_it_in_one_click_and_the_journal_keeps_it(
        client: FlaskClient, login: Any, make_user: Any, make_sheet: Any) -> None:
    author = make_user("contributor", trusted=True)  # published at once: a contributor of it
    sheet = make_sheet(author=author).sheet
    login(author)
    response = client.post(f"/fiches/{sheet.slug}/disponibilite",
                           data={"status": "attente", "delay_days": "15"})
    assert response.status_code == 302
    page = unescape(client.get(f"/fiches/{sheet.slug}").get_data(as_text=True))
    assert "Liste d'attente" in page and "délai d'entrée : 15 jours" in page
    assert "mise à jour aujourd'hui" in page
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "set_availability"))
    assert entry is not None and entry.sheet_id == sheet.id and entry.details["status"] == "attente"
    revisions = db.session.scalars(select(Revision).where(Revision.sheet_id == sheet.id)).all()
    assert len(revisions) == 1  # no review cycle: no revision


def test_someone_who_never_wrote_the_sheet_cannot(client: FlaskClient, login: Any,
                                                   make_user: Any, make_sheet: Any) -> None:
    sheet = make_sheet().sheet
    stranger = make_user("contributor")
    login(stranger)
    page = client.get(f"/fiches/{sheet.slug}").get_data(as_text=True)
    assert "/disponibilite" not in page  # no buttons
    response = client.post(f"/fiches/{sheet.slug}/disponibilite", data={"status": "places"})
    assert response.status_code == 403
    assert db.session.scalar(select(Availability)) is None
    login(None)
    assert client.post(f"/fiches/{sheet.slug}/disponibilite",
                       data={"status": "places"}).status_code in (302, 401, 403)
    assert db.session.scalar(select(Availability)) is None


def test_a_bad_value_is_refused_in_french(client: FlaskClient, login: Any, make_user: Any,
                                          make_sheet: Any) -> None:
    moderator = make_user("moderator")
    sheet = make_sheet(author=moderator).sheet
    login(moderator)
    for data, says in (({"status": "peut-etre"}, "Disponibilité inconnue"),
                       ({"status": "places", "delay_days": "demain"}, "Délai"),
                       ({"status": "ferme", "until": "31/12"}, "AAAA-MM-JJ")):
        response = client.post(f"/fiches/{sheet.slug}/disponibilite", data=data)
        assert 400 <= response.status_code < 500 and says in response.get_data(as_text=True)
    assert db.session.scalar(select(Availability)) is None


def test_it_turns_unknown_after_30_days_without_update(client: FlaskClient, login: Any,
                                                       make_user: Any, make_sheet: Any) -> None:
    moderator = make_user("moderator")
    sheet = make_sheet(author=moderator).sheet
    login(moderator)
    client.post(f"/fiches/{sheet.slug}/disponibilite", data={"status": "places"})
    row = db.session.scalar(select(Availability))
    assert row is not None
    assert row.shown_status(row.updated_at + STALE_AFTER) == "places"
    assert row.shown_status(row.updated_at + STALE_AFTER + timedelta(seconds=1)) == "inconnue"
    row.updated_at = utcnow() - timedelta(days=31)  # time travel: a month without news
    commit()
    page = client.get(f"/fiches/{sheet.slug}").get_data(as_text=True)
    assert "Places disponibles" not in page.split('id="disponibilite"')[1].split("</p>")[0]
    assert "Inconnue" in page and "il y a 31 jours" in page


# --- from the letter ---------------------------------------------------------------------------

LETTER_NOW = datetime(2030, 1, 9, 10, 0)  # a Wednesday inside the monthly letter's period


def _letter_links(queued: Queued, user: User) -> dict[str, str]:
    body = queued.letters(user.email)[0].body
    return {label: url.removeprefix("http://kb.test") for label, url in re.findall(
        r"- (Places disponibles|Liste d'attente|Complet) : (\S+)", body)}


def _csrf(page: str) -> dict[str, str]:
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token is not None
    return {"csrf_token": token.group(1)}


@pytest.fixture
def due_sheet(make_user: Any, make_sheet: Any) -> tuple[Sheet, User]:
    """A published sheet of Claire's (a trusted contributor) falling due in 10 days."""
    author = make_user("contributor", trusted=True, email="claire@example.org")
    sheet = make_sheet(author=author, title="Accueil à Brest").sheet
    sheet.last_reviewed_at = LETTER_NOW + timedelta(days=10) \
        - timedelta(days=round(sheet.review_interval_months * 30.44))
    commit()
    return sheet, author


def test_the_letter_offers_the_availability_in_one_click_applied_by_a_post_only(
        app: Flask, client: FlaskClient, login: Any, make_user: Any,
        due_sheet: tuple[Sheet, User], queued: Queued) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    sheet, author = due_sheet
    build_letters(LETTER_NOW)
    links = _letter_links(queued, author)
    assert set(links) == {"Places disponibles", "Liste d'attente", "Complet"}
    # A mail scanner opening every link changes nothing.
    for url in links.values():
        assert client.get(url).status_code == 200
    assert db.session.scalar(select(Availability)) is None
    stranger = make_user("contributor")
    login(stranger)  # signed in as someone else: refused
    assert client.get(links["Complet"]).status_code == 403
    login(None)  # not signed in: the link is enough, with the page's form
    page = client.get(links["Liste d'attente"]).get_data(as_text=True)
    assert "liste d'attente ?" in unescape(page)
    assert client.post(links["Liste d'attente"]).status_code == 400  # no CSRF token, no change
    assert db.session.scalar(select(Availability)) is None
    response = client.post(links["Liste d'attente"], data=_csrf(page))
    assert response.status_code == 200 and "C'est fait" in unescape(response.get_data(as_text=True))
    row = db.session.scalar(select(Availability))
    assert row is not None and row.sheet_id == sheet.id and row.status == "attente"
    assert row.updated_by_id == author.id and utcnow() - row.updated_at < timedelta(minutes=1)
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "set_availability"))
    assert entry is not None and entry.actor_id == author.id
    assert entry.details["via"] == "lien de la lettre des fiches"
    # Single use: once the availability changed, every link of that letter is spent.
    page = client.get(links["Complet"])
    assert page.status_code == 410 and "Déjà fait" in unescape(page.get_data(as_text=True))
    assert db.session.scalar(select(Availability.status)) == "attente"


def test_only_the_sheets_team_gets_the_links_and_a_forged_one_is_refused(
        client: FlaskClient, make_user: Any, make_sheet: Any,
        due_sheet: tuple[Sheet, User], queued: Queued) -> None:
    sheet, author = due_sheet
    build_letters(LETTER_NOW)
    moderators = [m for m in queued.letters() if m.to != author.email]
    assert all("Liste d'attente :" not in m.body for m in moderators)
    url = _letter_links(queued, author)["Complet"]
    assert client.post(url[:-3] + "abc").status_code == 404
    # Someone the link was not made for cannot be given one: the team is checked on use.
    outsider = make_user("contributor")
    forged = availability.link_url(sheet, outsider, "complet", utcnow())
    assert client.post(forged.removeprefix("http://kb.test")).status_code == 403
    assert db.session.scalar(select(Availability)) is None


# --- in the API ---------------------------------------------------------------------------------

def test_the_api_sheet_object_gives_the_availability_its_age_and_inconnue_after_30_days(
        client: FlaskClient, make_user: Any, make_sheet: Any) -> None:
    author = make_user("contributor", trusted=True)
    sheet = make_sheet(author=author).sheet
    assert client.get(f"/api/v1/sheets/{sheet.slug}").get_json()["availability"] is None
    availability.set_availability(sheet, author, "attente", 15)
    commit()
    said = client.get(f"/api/v1/sheets/{sheet.slug}").get_json()["availability"]
    assert said["status"] == "attente" and said["entry_delay"] == 15 and said["age_days"] == 0
    assert said["updated_at"].startswith(utcnow().date().isoformat())
    [item] = client.get("/api/v1/sheets").get_json()["items"]
    assert item["availability"] == said
    row = db.session.scalar(select(Availability))
    assert row is not None
    row.updated_at = utcnow() - timedelta(days=31)  # time travel: a month without news
    commit()
    said = client.get(f"/api/v1/sheets/{sheet.slug}").get_json()["availability"]
    assert said["status"] == "inconnue" and said["age_days"] == 31 and "entry_delay" not in said
    document = client.get("/api/openapi.json").get_json()
    schema = document["components"]["schemas"]["Sheet"]["properties"]["availability"]
    assert "inconnue" in schema["properties"]["status"]["enum"]
    assert "put" in document["paths"]["/api/v1/sheets/{slug}/availability"]


def test_a_contributor_puts_the_availability_through_the_api_without_review_others_cannot(
        client: FlaskClient, make_user: Any, make_sheet: Any, bearer: Any) -> None:
    author = make_user("contributor", trusted=True)
    sheet = make_sheet(author=author).sheet
    url = f"/api/v1/sheets/{sheet.slug}/availability"
    assert client.put(url, json={"status": "complet"}).status_code == 401
    stranger = bearer(make_user("contributor"))
    response = client.put(url, json={"status": "complet"}, headers=stranger)
    assert response.status_code == 403
    assert client.put("/api/v1/sheets/nulle-part/availability", json={"status": "complet"},
                      headers=stranger).status_code == 404
    mine = bearer(author)
    for body, field in (({"status": "bientot"}, None), ({}, "status"),
                        ({"status": "places", "entry_delay": "15"}, "entry_delay"),
                        ({"status": "places", "entry_delay": 999}, "entry_delay"),
                        ({"status": "ferme", "until": "31/12/2030"}, None)):
        response = client.put(url, json=body, headers=mine)
        assert response.status_code == 422, body
        if field:
            assert field in response.get_json()["fields"]
    assert db.session.scalar(select(Availability)) is None
    response = client.put(url, json={"status": "ferme", "until": "2030-09-01",
                                     "entry_delay": 10}, headers=mine)
    assert response.status_code == 200
    said = response.get_json()["availability"]
    assert said["status"] == "ferme" and said["until"] == "2030-09-01" and said["entry_delay"] == 10
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "set_availability"))
    assert entry is not None and entry.actor_id == author.id and entry.details["via"] == "API"
    assert len(db.session.scalars(select(Revision).where(Revision.sheet_id == sheet.id)).all()) == 1
    moderator = bearer(make_user("moderator"))
    assert client.put(url, json={"status": "places"}, headers=moderator).status_code == 200
