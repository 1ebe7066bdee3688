"""Learning visits (issue 22): slots with seats, a minimum and a decision date, a FIFO
waitlist taken exactly once under concurrency, calendar invitations, the hourly decision."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from icalendar import Calendar
from sqlalchemy import func, select

from kb.auth.models import User
from kb.extensions import db
from kb.mail.models import OutboxMail
from kb.timeutil import isoformat, utcnow
from kb.transaction import commit
from kb.visits import operations
from kb.visits.models import RegistrationStatus, VisitRegistration, VisitSlot
from tests.conftest import token_for


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    # Twenty requests at once each hold a connection while they wait for the slot's lock.
    return {**app_config, "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 30, "max_overflow": 10}}


@pytest.fixture
def host(make_user: Callable[..., User]) -> User:
    return make_user("contributor", trusted=True, email="hote@example.org", name="Hélène Hôte")


@pytest.fixture
def sheet(make_sheet: Callable[..., Any], host: User) -> Any:
    return make_sheet(author=host).sheet  # trusted: published at once, Hélène is its contributor


def slot_body(**overrides: Any) -> dict[str, Any]:
    # Whole minutes: a test comparing dates computed a second apart must not depend on the clock.
    start = utcnow().replace(hour=8, minute=0, second=0, microsecond=0) + timedelta(days=10)
    body = {"starts_at": isoformat(start), "ends_at": isoformat(start + timedelta(hours=2)),
            "place": "2 rue de Siam, 29200 Brest", "format": "visite", "capacity": 5,
            "min_participants": 3, "host_name": "Hélène Hôte", "host_phone": "06 11 22 33 44"}
    body.update(overrides)
    return body


def new_slot(sheet: Any, host: User, **overrides: Any) -> VisitSlot:
    slot = operations.create_slot(sheet, host, slot_body(**overrides))
    commit()
    return slot


def outbox(kind: str, to: str | None = None) -> list[OutboxMail]:
    db.session.expire_all()
    query = select(OutboxMail).where(OutboxMail.kind == kind).order_by(OutboxMail.id)
    if to is not None:
        query = query.where(OutboxMail.recipient == to)
    return list(db.session.scalars(query))


def ics(row: OutboxMail) -> Calendar:
    import base64

    [(name, content_type, content)] = row.attachments
    assert name == "visite.ics" and content_type.startswith("text/calendar")
    return Calendar.from_ical(base64.b64decode(content))


def event(calendar: Calendar) -> Any:
    [vevent] = calendar.walk("VEVENT")
    return vevent


# --- slots ----------------------------------------------------------------------------------

def test_a_contributor_of_the_sheet_opens_a_slot_decided_three_days_before_by_default(
        client, bearer, sheet, host):
    body = slot_body()
    del body["min_participants"]
    response = client.post(f"/api/v1/sheets/{sheet.slug}/visits", json=body, headers=bearer(host))
    assert response.status_code == 201, response.json
    created = response.json
    assert created["status"] == "open" and created["seats_left"] == 5
    assert created["decide_by"] == isoformat(
        datetime.fromisoformat(body["starts_at"]).replace(tzinfo=None) - timedelta(days=3))
    assert created["commune_code"] == "29019"  # the sheet's commune by default


def test_only_the_sheets_contributors_and_moderators_open_or_edit_slots(
        client, bearer, sheet, host, make_user, moderator):
    stranger = make_user("contributor", trusted=True)
    url = f"/api/v1/sheets/{sheet.slug}/visits"
    assert client.post(url, json=slot_body()).status_code == 401
    refused = client.post(url, json=slot_body(), headers=bearer(stranger))
    assert refused.status_code == 403
    assert "contributeurs de la fiche" in refused.json["message"]
    slot_id = client.post(url, json=slot_body(), headers=bearer(moderator)).json["id"]
    assert client.patch(f"/api/v1/visits/{slot_id}", json={"capacity": 8},
                        headers=bearer(stranger)).status_code == 403
    edited = client.patch(f"/api/v1/visits/{slot_id}", json={"capacity": 8}, headers=bearer(host))
    assert edited.status_code == 200 and edited.json["seats_left"] == 8


@pytest.mark.parametrize("change, message", [
    ({"capacity": 0}, "capacity"), ({"capacity": "5"}, "capacity"),
    ({"format": "fête"}, "format"), ({"starts_at": "demain"}, "starts_at"),
    ({"min_participants": 9}, "minimum"), ({"surprise": 1}, "surprise"),
    ({"ends_at": "2020-01-01T00:00:00"}, "fin"), ({"host_name": " "}, "host_name"),
])
def test_bad_slot_input_is_a_french_422(client, bearer, sheet, host, change, message):
    response = client.post(f"/api/v1/sheets/{sheet.slug}/visits", json=slot_body(**change),
                           headers=bearer(host))
    assert response.status_code == 422, response.json
    assert message in response.json["message"]


def test_the_public_list_shows_seats_left_filters_and_never_registrants(
        client, bearer, sheet, host, make_user):
    visite = new_slot(sheet, host)
    atelier = new_slot(sheet, host, format="atelier", commune_code="75056",
                       place="Paris", starts_at=isoformat(utcnow() + timedelta(days=40)),
                       ends_at=isoformat(utcnow() + timedelta(days=40, hours=3)))
    visitor = make_user(email="visiteur@example.org")
    client.post(f"/api/v1/visits/{visite.id}/registrations", json={"phone": "06 99 88 77 66"},
                headers=bearer(visitor))
    listing = client.get("/api/v1/visits")
    assert listing.status_code == 200
    by_id = {item["id"]: item for item in listing.json["items"]}
    assert by_id[visite.id]["seats_left"] == 4 and by_id[atelier.id]["seats_left"] == 5
    assert "visiteur" not in listing.get_data(as_text=True)
    assert "06 99 88" not in listing.get_data(as_text=True)

    def ids(query: str) -> list[int]:
        return [item["id"] for item in client.get(f"/api/v1/visits?{query}").json["items"]]

    assert ids("territory=29") == [visite.id]
    assert ids("territory=75") == [atelier.id]
    assert ids("format=atelier") == [atelier.id]
    assert ids(f"from={(utcnow() + timedelta(days=20)).date()}") == [atelier.id]
    assert ids(f"to={(utcnow() + timedelta(days=20)).date()}") == [visite.id]
    for bad in ("format=fête", "from=hier", "territory=99999"):
        refused = client.get(f"/api/v1/visits?{bad}")
        assert refused.status_code == 400 and "Paramètre" in refused.json["message"]


# --- registrations --------------------------------------------------------------------------

def test_register_once_then_409_and_unregister_with_204(client, bearer, sheet, host, make_user):
    slot = new_slot(sheet, host)
    visitor = make_user()
    headers = bearer(visitor)
    url = f"/api/v1/visits/{slot.id}/registrations"
    first = client.post(url, json={"phone": "06 12 34 56 78"}, headers=headers)
    assert first.status_code == 201 and first.json["status"] == "registered"
    assert "position" not in first.json
    again = client.post(url, json={}, headers=headers)
    assert again.status_code == 409 and "déjà inscrit" in again.json["message"]
    assert client.delete(f"{url}/me", headers=headers).status_code == 204
    assert client.delete(f"{url}/me", headers=headers).status_code == 404
    back = client.post(url, headers=headers)  # no body at all: the phone is optional
    assert back.status_code == 201 and back.json["status"] == "registered"


def test_registration_needs_a_confirmed_account(client, bearer, sheet, host, make_user):
    slot = new_slot(sheet, host)
    unconfirmed = make_user()
    unconfirmed.email_confirmed_at = None
    commit()
    response = client.post(f"/api/v1/visits/{slot.id}/registrations", json={},
                           headers=bearer(unconfirmed))
    assert response.status_code == 403 and "Confirmez d'abord votre adresse" in response.json["message"]
    assert client.post(f"/api/v1/visits/{slot.id}/registrations", json={}).status_code == 401


def _at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - reported by the assertions
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def test_twenty_at_once_on_five_seats_five_registered_and_fifteen_waitlisted_in_order(
        app: Flask, sheet, host, make_user):
    slot = new_slot(sheet, host)
    people = [make_user() for _ in range(20)]
    tokens = [token_for(person) for person in people]
    commit()
    clients: list[FlaskClient] = [app.test_client() for _ in people]
    url = f"/api/v1/visits/{slot.id}/registrations"

    responses = _at_once([lambda c=c, t=t: c.post(url, json={}, headers={
        "Authorization": f"Bearer {t}"}) for c, t in zip(clients, tokens, strict=True)])

    assert [getattr(r, "status_code", r) for r in responses] == [201] * 20
    answers = [r.json for r in responses]
    assert sum(a["status"] == "registered" for a in answers) == 5
    waiting = [a for a in answers if a["status"] == "waitlisted"]
    assert sorted(a["position"] for a in waiting) == list(range(1, 16))
    db.session.rollback()
    rows = operations.registrations(db.session.get(VisitSlot, slot.id))
    # The stored order is the order the seats were given: registered first, then positions.
    assert [r.status for r in rows] == ["registered"] * 5 + ["waitlisted"] * 15
    position_of = {a["id"]: a.get("position") for a in answers}
    assert [position_of[r.id] for r in rows[5:]] == list(range(1, 16))
    assert db.session.get(VisitSlot, slot.id).seats_taken == 5
    assert len(outbox("visit.registered")) == 5 and len(outbox("visit.waitlisted")) == 15


def test_a_cancellation_promotes_exactly_the_first_waiting_who_gets_the_confirmation(
        client, bearer, sheet, host, make_user):
    slot = new_slot(sheet, host, capacity=2, min_participants=1)
    people = [make_user() for _ in range(5)]
    headers = [bearer(p) for p in people]
    url = f"/api/v1/visits/{slot.id}/registrations"
    statuses = [client.post(url, json={}, headers=h).json for h in headers]
    assert [s["status"] for s in statuses] == ["registered"] * 2 + ["waitlisted"] * 3
    assert [s.get("position") for s in statuses[2:]] == [1, 2, 3]

    assert client.delete(f"{url}/me", headers=headers[0]).status_code == 204

    by_user = {r.user_id: r.status for r in operations.registrations(slot, (
        "registered", "waitlisted", "cancelled"))}
    assert [by_user[p.id] for p in people] == ["cancelled", "registered", "registered",
                                               "waitlisted", "waitlisted"]
    promoted = outbox("visit.registered", people[2].email)
    assert len(promoted) == 1 and "place s'est libérée" in promoted[0].body_text
    assert ics(promoted[0])["method"] == "REQUEST"
    assert outbox("visit.registered", people[3].email) == []
    cancelled = outbox("visit.unregistered", people[0].email)
    assert ics(cancelled[0])["method"] == "CANCEL"
    # The others moved up the waitlist.
    mine = client.get(f"/api/v1/visits/{slot.id}/registrations", headers=bearer(host))
    assert [(r["status"], r["position"]) for r in mine.json["items"]] == [
        ("registered", None), ("registered", None), ("waitlisted", 1), ("waitlisted", 2)]


# --- calendar -------------------------------------------------------------------------------

def test_the_invitation_keeps_its_uid_across_a_time_change_with_a_higher_sequence(
        client, bearer, sheet, host, make_user):
    slot = new_slot(sheet, host)
    visitor = make_user()
    client.post(f"/api/v1/visits/{slot.id}/registrations", json={}, headers=bearer(visitor))
    later = slot.starts_at + timedelta(hours=3)
    response = client.patch(f"/api/v1/visits/{slot.id}", headers=bearer(host), json={
        "starts_at": isoformat(later), "ends_at": isoformat(later + timedelta(hours=2))})
    assert response.status_code == 200, response.json

    [first] = outbox("visit.registered", visitor.email)
    [changed] = outbox("visit.changed", visitor.email)
    before, after = event(ics(first)), event(ics(changed))
    assert ics(changed)["method"] == "REQUEST"
    assert after["uid"] == before["uid"]
    assert after["sequence"] > before["sequence"]
    assert after.decoded("dtstart").replace(tzinfo=None) == later
    assert str(after["location"]) == "2 rue de Siam, 29200 Brest"

    client.patch(f"/api/v1/visits/{slot.id}", headers=bearer(host), json={"status": "cancelled"})
    [cancelled] = outbox("visit.cancelled", visitor.email)
    assert ics(cancelled)["method"] == "CANCEL"
    assert event(ics(cancelled))["uid"] == before["uid"]
    assert event(ics(cancelled))["sequence"] > after["sequence"]
    assert event(ics(cancelled))["status"] == "CANCELLED"


def test_each_person_has_a_private_calendar_feed_of_their_visits(
        client, bearer, sheet, host, make_user):
    slot = new_slot(sheet, host)
    visitor = make_user()
    client.post(f"/api/v1/visits/{slot.id}/registrations", json={}, headers=bearer(visitor))
    url = operations.feed_url(visitor).removeprefix("http://kb.test")
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "text/calendar"
    [vevent] = Calendar.from_ical(response.data).walk("VEVENT")
    registration = db.session.scalar(select(VisitRegistration))
    assert vevent["uid"] == registration.uid
    assert client.get(url.replace(".ics", "x.ics")).status_code == 404
    visitor.end_sessions()  # "log out everywhere" also retires the feed's address
    commit()
    assert client.get(url).status_code == 404


# --- the decision -----------------------------------------------------------------------------

def test_under_its_minimum_at_the_decision_date_a_slot_is_cancelled_and_everyone_told_once(
        client, bearer, sheet, host, make_user):
    small = new_slot(sheet, host, capacity=5, min_participants=3)
    full = new_slot(sheet, host, capacity=2, min_participants=2)
    people = [make_user() for _ in range(3)]
    for person in people[:2]:
        client.post(f"/api/v1/visits/{small.id}/registrations", json={}, headers=bearer(person))
    for person in people:
        client.post(f"/api/v1/visits/{full.id}/registrations", json={}, headers=bearer(person))

    early = operations.decide(now=small.decide_by - timedelta(hours=1))
    assert (early.confirmed, early.cancelled) == (0, 0)
    at_decision = small.decide_by + timedelta(minutes=5)
    report = operations.decide(now=at_decision)
    again = operations.decide(now=at_decision + timedelta(hours=1))

    assert (report.confirmed, report.cancelled) == (1, 1)
    assert (again.confirmed, again.cancelled) == (0, 0)
    db.session.expire_all()
    assert db.session.get(VisitSlot, small.id).status == "cancelled"
    assert db.session.get(VisitSlot, full.id).status == "confirmed"
    told = outbox("visit.cancelled")
    assert sorted(m.recipient for m in told) == sorted(p.email for p in people[:2])
    assert all(ics(m)["method"] == "CANCEL" for m in told)
    assert "moins de 3 inscrits" in told[0].body_text
    [host_mail] = outbox("visit.cancelled.host")
    assert host_mail.recipient == host.email
    # The waitlisted person of the confirmed slot is not told anything by the decision.
    assert outbox("visit.cancelled", people[2].email) == []


def test_two_days_before_the_decision_the_host_of_a_slot_under_its_minimum_is_told_once(
        client, bearer, sheet, host, make_user):
    short = new_slot(sheet, host, capacity=5, min_participants=3)
    enough = new_slot(sheet, host, capacity=5, min_participants=1)
    for target in (short, enough):
        client.post(f"/api/v1/visits/{target.id}/registrations", json={},
                    headers=bearer(make_user()))
    assert operations.decide(now=short.decide_by - timedelta(days=3)).warned == 0
    assert operations.decide(now=short.decide_by - timedelta(days=2)).warned == 1
    assert operations.decide(now=short.decide_by - timedelta(days=1)).warned == 0
    [warning] = outbox("visit.host_minimum")
    assert warning.recipient == host.email
    assert warning.subject.startswith("1 inscrit sur 3 minimum")
    assert f"/visites/{short.id}/modifier" in warning.body_text


def test_registrants_get_one_reminder_two_days_before(client, bearer, sheet, host, make_user):
    slot = new_slot(sheet, host, capacity=1, min_participants=1)
    people = [make_user() for _ in range(2)]
    for person in people:
        client.post(f"/api/v1/visits/{slot.id}/registrations", json={}, headers=bearer(person))
    assert operations.decide(now=slot.starts_at - timedelta(days=3)).reminded == 0
    assert operations.decide(now=slot.starts_at - timedelta(days=2)).reminded == 1
    assert operations.decide(now=slot.starts_at - timedelta(days=1)).reminded == 0
    [reminder] = outbox("visit.reminder")
    assert reminder.recipient == people[0].email  # the waitlisted person has no visit to recall
    assert operations.decide(now=slot.ends_at + timedelta(minutes=1)).done == 1


def test_kb_visits_decide_is_the_cron_command(app, sheet, host):
    result = app.test_cli_runner().invoke(args=["visits", "decide"])
    assert result.exit_code == 0, result.output
    assert "0 créneau(x) confirmé(s), 0 annulé(s)" in result.output


# --- the registrants table --------------------------------------------------------------------

def test_the_registrants_table_is_the_hosts_and_moderators_only(
        client, bearer, sheet, host, make_user, moderator):
    slot = new_slot(sheet, host, capacity=1, min_participants=1)
    first = make_user(name="=HYPERLINK(\"http://x\")")
    second = make_user(name="Zoé Attente")
    client.post(f"/api/v1/visits/{slot.id}/registrations",
                json={"phone": "+33 6 12 34 56 78", "structure": "CCAS de Brest"},
                headers=bearer(first))
    client.post(f"/api/v1/visits/{slot.id}/registrations", json={}, headers=bearer(second))
    url = f"/api/v1/visits/{slot.id}/registrations"
    for outsider in (first, make_user()):
        assert client.get(url, headers=bearer(outsider)).status_code == 404
        assert client.get(f"{url}.csv", headers=bearer(outsider)).status_code == 404
    assert client.get(url).status_code == 401
    assert client.get(url, headers=bearer(moderator)).status_code == 200
    table = client.get(url, headers=bearer(host)).json["items"]
    assert [(r["name"], r["structure"], r["phone"], r["position"]) for r in table] == [
        ("=HYPERLINK(\"http://x\")", "CCAS de Brest", "+33 6 12 34 56 78", None),
        ("Zoé Attente", "", "", 1)]

    exported = client.get(f"{url}.csv", headers=bearer(host))
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert exported.data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(exported.data.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:3] == ["Nom", "Structure", "Téléphone professionnel"]
    assert rows[1][0] == "'=HYPERLINK(\"http://x\")"  # shown as text, never run as a formula
    assert rows[1][2] == "'+33 6 12 34 56 78"
    assert rows[2][0] == "Zoé Attente" and rows[2][-1] == "1"
    # Nobody's e-mail address is shown to anyone, the host included.
    assert first.email not in exported.get_data(as_text=True)
    assert first.email not in client.get(url, headers=bearer(host)).get_data(as_text=True)


def test_the_visits_endpoints_are_in_the_openapi_document(app, client):
    import re

    paths = client.get("/api/openapi.json").json["paths"]
    for path in ("/api/v1/sheets/{slug}/visits", "/api/v1/visits", "/api/v1/visits/{slot_id}",
                 "/api/v1/visits/{slot_id}/registrations",
                 "/api/v1/visits/{slot_id}/registrations/me",
                 "/api/v1/visits/{slot_id}/registrations.csv",
                 "/api/v1/visits/{slot_id}/attendance", "/api/v1/visits/{slot_id}/rating"):
        assert path in paths
    # Every API route of the visits, with each of its methods.
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("visits.") and rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
                assert method.lower() in paths.get(path, {}), (method, path)
    assert paths["/api/v1/visits/{slot_id}/registrations"]["post"]["responses"]["201"]
    status = paths["/api/v1/sheets/{slug}/visits"]["post"]["responses"]["201"]["content"][
        "application/json"]["schema"]["properties"]["status"]
    assert status["enum"] == ["open", "confirmed", "cancelled", "done"]
    assert RegistrationStatus.WAITLISTED == "waitlisted"


# --- pages ----------------------------------------------------------------------------------

def test_the_sheet_page_offers_its_slots_and_registers_from_the_form(
        client, login, sheet, host, make_user):
    slot = new_slot(sheet, host, bring="Chaussures de sécurité")
    visitor = make_user(email="visiteur@example.org")
    page = client.get(f"/fiches/{sheet.slug}").get_data(as_text=True)
    assert "Visiter cette initiative" in page and "5 places restantes" in page
    assert "Connectez-vous</a> pour vous inscrire" in page
    login(visitor)
    page = client.get(f"/fiches/{sheet.slug}").get_data(as_text=True)
    assert f'action="/visites/{slot.id}/inscription"' in page and 'name="csrf_token"' in page
    assert "Voir les inscrits" not in page  # not the host

    response = client.post(f"/visites/{slot.id}/inscription",
                           data={"phone": "06 12 34 56 78", "structure": "Mission locale"})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Vous êtes inscrit·e." in page and "4 places restantes" in page
    assert "Me désinscrire" in page
    [confirmation] = outbox("visit.registered", visitor.email)
    assert "Chaussures de sécurité" in confirmation.body_text
    assert "/visites/calendrier/" in confirmation.body_text  # the private feed's address
    assert "au moins 3 personnes sont inscrites" in confirmation.body_text
    assert client.post(f"/visites/{slot.id}/inscription").status_code == 409


def test_visites_lists_open_slots_filtered_by_date_territory_and_format(
        client, sheet, host):
    visite = new_slot(sheet, host)
    atelier = new_slot(sheet, host, format="atelier", commune_code="75056", place="Paris")
    cancelled = new_slot(sheet, host, place="Annulé")
    operations.update_slot(cancelled.id, host, {"status": "cancelled"})
    commit()
    page = client.get("/visites").get_data(as_text=True)
    assert f'id="visite-{visite.id}"' in page and f'id="visite-{atelier.id}"' in page
    assert f'id="visite-{cancelled.id}"' not in page
    filtered = client.get("/visites?territory=75&format=atelier").get_data(as_text=True)
    assert f'id="visite-{atelier.id}"' in filtered and f'id="visite-{visite.id}"' not in filtered
    later = client.get(f"/visites?from={(utcnow() + timedelta(days=30)).date()}")
    assert "Aucun créneau ne correspond" in later.get_data(as_text=True)
    bad = client.get("/visites?from=hier")
    assert bad.status_code == 200 and "from" in bad.get_data(as_text=True)


def test_the_registrants_page_and_csv_are_refused_to_anyone_but_the_host(
        client, login, bearer, sheet, host, make_user):
    slot = new_slot(sheet, host)
    visitor = make_user(name="Victor Visiteur")
    client.post(f"/api/v1/visits/{slot.id}/registrations", json={"phone": "06 12 34 56 78"},
                headers=bearer(visitor))
    for person in (visitor, make_user("contributor", trusted=True)):
        login(person)
        assert client.get(f"/visites/{slot.id}/inscrits").status_code == 404
        assert client.get(f"/visites/{slot.id}/inscrits.csv").status_code == 404
    login(host)
    page = client.get(f"/visites/{slot.id}/inscrits").get_data(as_text=True)
    assert "Victor Visiteur" in page and "06 12 34 56 78" in page
    assert client.get(f"/visites/{slot.id}/inscrits.csv").data.startswith(b"\xef\xbb\xbf")


def test_a_contributor_opens_and_edits_a_slot_with_the_form_in_paris_time(
        client, login, sheet, host, make_user):
    login(make_user("contributor", trusted=True))
    assert client.get(f"/fiches/{sheet.slug}/visites/nouvelle").status_code == 403
    login(host)
    form = {"starts_at": "2030-07-01T09:30", "ends_at": "2030-07-01T11:30", "place": "Mairie",
            "format": "immersion", "capacity": "4", "min_participants": "2",
            "host_name": "Hélène Hôte", "host_phone": "", "bring": "", "accessibility": ""}
    response = client.post(f"/fiches/{sheet.slug}/visites/nouvelle", data=form)
    assert response.status_code == 302
    slot = db.session.scalar(select(VisitSlot))
    assert slot.starts_at.hour == 7  # 9 h 30 in Paris in summer is 7 h 30 UTC
    assert slot.decide_by == slot.starts_at - timedelta(days=3)
    refused = client.post(f"/visites/{slot.id}/modifier", data={**form, "ends_at": "2030-07-01T08:00"})
    assert refused.status_code == 422
    assert "La fin doit suivre le début" in refused.get_data(as_text=True)
    assert 'value="Mairie"' in refused.get_data(as_text=True)  # nothing typed is lost
    edit = client.get(f"/visites/{slot.id}/modifier").get_data(as_text=True)
    assert 'value="2030-07-01T09:30"' in edit  # shown back in Paris time


def test_a_minimum_of_one_is_written_in_the_singular(client, bearer, sheet, host, make_user):
    slot = new_slot(sheet, host, min_participants=1)
    visitor = make_user(email="seule@example.org")
    operations.register_user(slot.id, visitor)
    commit()
    [confirmation] = outbox("visit.registered", visitor.email)
    assert "au moins 1 personne est inscrite" in confirmation.body_text


def test_after_the_visit_the_host_marks_who_came_and_visitors_rate_it(
        client, login, bearer, sheet, host, make_user):
    slot = new_slot(sheet, host, capacity=2, min_participants=1)
    came, absent, waiting = (make_user(name=n) for n in ("Camille Venue", "Abel Absent", "Wanda"))
    for person in (came, absent, waiting):
        client.post(f"/api/v1/visits/{slot.id}/registrations", json={}, headers=bearer(person))
    by_user = {r.user_id: r for r in operations.registrations(slot)}
    login(came)
    assert client.post(f"/visites/{slot.id}/avis", data={"rating": "4"}).status_code == 409
    slot.starts_at, slot.ends_at = utcnow() - timedelta(hours=1), utcnow() + timedelta(hours=1)
    commit()

    login(make_user("contributor", trusted=True))  # not the host: nothing to see or mark
    assert client.post(f"/visites/{slot.id}/presences",
                       data={"present": [str(by_user[came.id].id)]}).status_code == 404
    login(host)
    marked = client.post(f"/visites/{slot.id}/presences",
                         data={"present": [str(by_user[came.id].id)]})
    assert marked.status_code == 302
    db.session.expire_all()
    assert (by_user[came.id].attended, by_user[absent.id].attended) == (True, False)
    assert by_user[waiting.id].attended is None  # only the registered are marked

    login(absent)
    assert client.post(f"/visites/{slot.id}/avis", data={"rating": "5"}).status_code == 409
    login(waiting)
    assert client.post(f"/visites/{slot.id}/avis", data={"rating": "5"}).status_code == 404
    login(came)
    assert client.post(f"/visites/{slot.id}/avis", data={"rating": "7"}).status_code == 422
    rated = client.post(f"/visites/{slot.id}/avis", data={"rating": "4", "comment": "Très utile"})
    assert rated.status_code == 302
    passport = client.get("/mes-visites").get_data(as_text=True)
    assert sheet.title in passport and "faite" in passport and "4/5" in passport

    login(host)
    table = client.get(f"/visites/{slot.id}/inscrits").get_data(as_text=True)
    assert "4/5 : Très utile" in table and "Note moyenne des visiteurs : 4.0/5" in table


def test_a_deleted_account_frees_its_seat_for_the_first_waiting_and_leaves_no_phone(
        client, bearer, sheet, host, make_user):
    from kb.accounts.operations import delete_account, personal_data

    slot = new_slot(sheet, host, capacity=1, min_participants=1)
    leaving, waiting = make_user(), make_user()
    client.post(f"/api/v1/visits/{slot.id}/registrations",
                json={"phone": "06 12 34 56 78", "structure": "CCAS"}, headers=bearer(leaving))
    client.post(f"/api/v1/visits/{slot.id}/registrations", json={}, headers=bearer(waiting))
    [mine] = personal_data(leaving)["visits"]
    assert (mine["phone"], mine["structure"], mine["status"]) == ("06 12 34 56 78", "CCAS",
                                                                  "registered")
    address = leaving.email

    delete_account(leaving, leaving)
    commit()

    rows = {r.user_id: r for r in operations.registrations(slot, (
        "registered", "waitlisted", "cancelled"))}
    assert rows[waiting.id].status == "registered"
    assert len(outbox("visit.registered", waiting.email)) == 1
    assert (rows[leaving.id].status, rows[leaving.id].phone, rows[leaving.id].structure) == (
        "cancelled", "", "")
    assert outbox("visit.registered", address) == []  # its mails went with the address


# --- campaigns ------------------------------------------------------------------------------

def test_a_moderator_creates_a_campaign_that_groups_slots_caps_visits_and_counts_them(
        client, login, bearer, sheet, host, make_user, make_sheet, moderator):
    login(host)  # a contributor: not a moderator
    assert client.get("/parcours/nouveau").status_code == 403
    login(moderator)
    created = client.post("/parcours/nouveau", data={
        "name": "Parcours insertion Finistère", "starts_on": "2026-01-05",
        "ends_on": "2030-02-15", "department": "29", "cap": "2"})
    assert created.status_code == 302
    campaign_url = created.headers["Location"]
    from kb.visits.models import VisitCampaign

    campaign = db.session.scalar(select(VisitCampaign))
    assert (campaign.name, campaign.cap, campaign.department) == (
        "Parcours insertion Finistère", 2, "29")

    departmental = make_sheet(title="Plateforme départementale", scale="departement").sheet
    slots = [new_slot(sheet, host, campaign_id=campaign.id, capacity=3, min_participants=1)
             for _ in range(2)]
    slots.append(new_slot(departmental, moderator, campaign_id=campaign.id, capacity=3,
                          min_participants=1))
    outside = new_slot(sheet, host)
    bad = client.post(f"/api/v1/sheets/{sheet.slug}/visits", json=slot_body(campaign_id=999),
                      headers=bearer(host))
    assert bad.status_code == 422 and "parcours" in bad.json["message"]

    ana, bob = make_user(name="Ana"), make_user(name="Bob")
    url = "/api/v1/visits/{}/registrations"
    for target in slots[:2]:
        assert client.post(url.format(target.id), json={}, headers=bearer(ana)).status_code == 201
    capped = client.post(url.format(slots[2].id), json={}, headers=bearer(ana))
    assert capped.status_code == 409 and "au plus 2 visite" in capped.json["message"]
    # Slots outside the campaign are not capped by it.
    assert client.post(url.format(outside.id), json={}, headers=bearer(ana)).status_code == 201
    assert client.post(url.format(slots[2].id), json={}, headers=bearer(bob)).status_code == 201

    page = client.get(campaign_url).get_data(as_text=True)
    assert all(f'id="visite-{s.id}"' in page for s in slots)
    assert f'id="visite-{outside.id}"' not in page

    # The visits happen; the hosts mark who came; Ana rates one.
    for target in slots:
        target.starts_at = utcnow() - timedelta(hours=2)
        target.ends_at = utcnow() - timedelta(hours=1)
    commit()
    for target, person in ((slots[0], ana), (slots[1], ana), (slots[2], bob)):
        reg = operations.registration_of(target, person)
        operations.mark_attendance(target, moderator, {reg.id})
    operations.rate(slots[0], ana, 5, "")
    operations.rate(slots[2], bob, 3, "")
    commit()

    stats = operations.campaign_stats(campaign)
    assert stats == {
        "partners": 2, "actions_visited": 2, "professionals_invited": 0, "invited_visited": 0,
        "professionals_registered": 2,
        "professionals_visited": 2, "visits_made": 3, "visits_per_professional_mean": 1.5,
        "visits_per_professional_max": 2, "share_local": 0.67,
        "share_departmental_or_wider": 0.33, "mean_rating": 4.0}
    exported = client.get(f"{campaign_url}/statistiques.csv")
    assert exported.data.startswith(b"\xef\xbb\xbf")
    rows = dict(csv.reader(io.StringIO(exported.data.decode("utf-8-sig")), delimiter=";"))
    assert rows["Visites réalisées"] == "3"
    assert rows["Visites par professionnel (moyenne)"] == "1,5"
    page = client.get(campaign_url).get_data(as_text=True)
    assert "Le parcours en chiffres" in page
    # French figures on the page: "1,5", shares in per cent.
    assert "<dd>1,5</dd>" in page and "<dd>67&nbsp;%</dd>" in page and "<dd>33&nbsp;%</dd>" in page


def _structure_with(moderator: User, *people: User, name: str = "CCAS de Brest") -> Any:
    from kb.structures import operations as structures
    from kb.structures.models import MemberRole

    row = structures.create_structure({"name": name}, moderator)
    for person in people:
        structures.add_member(row, person, moderator, MemberRole.MEMBER)
    commit()
    return row


def _campaign(moderator: User, **values: Any) -> Any:
    campaign = operations.create_campaign(moderator, {
        "name": "Parcours Brest", "starts_on": "2026-01-05T00:00:00",
        "ends_on": "2030-02-15T00:00:00", "department": "29", **values})
    commit()
    return campaign


def test_a_moderator_invites_structures_and_professionals_who_are_counted_in_the_figures(
        client, login, sheet, host, make_user, moderator):
    campaign = _campaign(moderator)
    ana, bob, cleo, dan = (make_user(name=n, email=f"{n.lower()}@example.org")
                           for n in ("Ana", "Bob", "Cleo", "Dan"))
    ccas = _structure_with(moderator, bob, cleo)
    url = f"/parcours/{campaign.slug}/invites"
    login(host)
    assert client.get(url).status_code == 403
    assert client.post(url, data={"emails": "ana@example.org"}).status_code == 403
    login(moderator)
    assert client.get(url).status_code == 200
    refused = client.post(url, data={"structures": [str(ccas.id)],
                                     "emails": "ANA@example.org\ninconnu@example.org"})
    assert refused.status_code == 422
    assert "inconnu@example.org" in refused.get_data(as_text=True)
    assert operations.invited_ids(campaign) == set()  # nothing saved
    saved = client.post(url, data={"structures": [str(ccas.id)],
                                   "emails": "ANA@example.org ; bob@example.org"})
    assert saved.status_code == 302
    # Ana by address, Bob by both, Cleo as a member: each once.
    assert operations.invited_ids(campaign) == {ana.id, bob.id, cleo.id}
    page = client.get(f"/parcours/{campaign.slug}").get_data(as_text=True)
    assert "CCAS de Brest" in page and "2 professionnels invités par adresse" in page

    slot = new_slot(sheet, host, campaign_id=campaign.id, capacity=5, min_participants=1)
    for person in (ana, dan):
        operations.register_user(slot.id, person)
    commit()
    slot.starts_at, slot.ends_at = utcnow() - timedelta(hours=2), utcnow() - timedelta(hours=1)
    commit()
    operations.mark_attendance(slot, host, {operations.registration_of(slot, ana).id,
                                            operations.registration_of(slot, dan).id})
    commit()
    stats = operations.campaign_stats(campaign)
    assert (stats["professionals_invited"], stats["invited_visited"],
            stats["professionals_visited"]) == (3, 1, 2)
    exported = client.get(f"/parcours/{campaign.slug}/statistiques.csv")
    rows = dict(csv.reader(io.StringIO(exported.data.decode("utf-8-sig")), delimiter=";"))
    assert rows["Professionnels invités"] == "3"
    assert rows["Invités ayant fait au moins une visite"] == "1"
    # A member who leaves the structure is no longer invited.
    from kb.structures.models import Membership, MemberState

    db.session.scalar(select(Membership).where(Membership.user_id == cleo.id)).state = (
        MemberState.LEFT.value)
    commit()
    assert operations.invited_ids(campaign) == {ana.id, bob.id}


def test_the_campaigns_are_listed_and_linked_from_visites(client, moderator):
    campaign = _campaign(moderator, name="Parcours insertion Finistère")
    assert 'href="/parcours"' in client.get("/visites").get_data(as_text=True)
    listing = client.get("/parcours")
    assert listing.status_code == 200
    assert f'href="/parcours/{campaign.slug}"' in listing.get_data(as_text=True)


def test_the_campaign_page_shows_its_slots_per_department_on_the_map_linking_to_the_list(
        client, sheet, host, moderator):
    campaign = _campaign(moderator)
    brest = [new_slot(sheet, host, campaign_id=campaign.id) for _ in range(2)]
    rennes = new_slot(sheet, host, campaign_id=campaign.id, commune_code="35238",
                       place="Rennes", format="atelier")
    page = client.get(f"/parcours/{campaign.slug}").get_data(as_text=True)
    assert "<svg" in page and 'class="choropleth"' in page
    assert "Finistère (29) : 2 créneaux" in page and "(35) : 1 créneau" in page
    link = f"/parcours/{campaign.slug}?territory=29#creneaux"
    assert f'href="{link}"' in page
    filtered = client.get(link.split("#")[0]).get_data(as_text=True)
    assert all(f'id="visite-{s.id}"' in filtered for s in brest)
    assert f'id="visite-{rennes.id}"' not in filtered
    # The map keeps the other filters in its links, and counts under them.
    by_format = client.get(f"/parcours/{campaign.slug}?format=atelier").get_data(as_text=True)
    assert "Finistère (29) : 2" not in by_format
    assert f"/parcours/{campaign.slug}?territory=35&amp;format=atelier#creneaux" in by_format


# --- hosting: the sheet's team ----------------------------------------------------------------

def test_the_sheets_team_hosts_its_visits_members_of_its_verified_structure_included(
        client, bearer, login, sheet, host, make_user, moderator):
    member, outsider_member = make_user(name="Mona Membre"), make_user(name="Ulysse")
    ccas = _structure_with(moderator, member)
    other = _structure_with(moderator, outsider_member, name="Autre structure")
    ccas.verified_at = other.verified_at = utcnow()
    sheet.structure_id = ccas.id
    commit()
    # A member opens and edits a slot of her structure's sheet; a member of another does not.
    url = f"/api/v1/sheets/{sheet.slug}/visits"
    refused = client.post(url, json=slot_body(), headers=bearer(outsider_member))
    assert refused.status_code == 403 and "membres de sa structure" in refused.json["message"]
    created = client.post(url, json=slot_body(capacity=5, min_participants=3),
                          headers=bearer(member))
    assert created.status_code == 201, created.json
    slot_id = created.json["id"]
    assert client.patch(f"/api/v1/visits/{slot_id}", json={"capacity": 6},
                        headers=bearer(member)).status_code == 200
    visitor = make_user()
    client.post(f"/api/v1/visits/{slot_id}/registrations", json={}, headers=bearer(visitor))
    # The registrants table and its CSV, by the API and the pages: the team, not the others.
    api = f"/api/v1/visits/{slot_id}/registrations"
    assert client.get(api, headers=bearer(member)).status_code == 200
    assert client.get(f"{api}.csv", headers=bearer(member)).status_code == 200
    assert client.get(api, headers=bearer(outsider_member)).status_code == 404
    login(member)
    assert client.get(f"/visites/{slot_id}/inscrits").status_code == 200
    assert client.get(f"/visites/{slot_id}/modifier").status_code == 200
    login(outsider_member)
    assert client.get(f"/visites/{slot_id}/inscrits").status_code == 404

    # The host mails go to the team: the contributor (Hélène) and the member (Mona), once each.
    slot = db.session.get(VisitSlot, slot_id)
    assert {u.email for u in operations.hosts_of(slot)} == {host.email, member.email}
    assert operations.decide(now=slot.decide_by - timedelta(days=2)).warned == 2
    assert operations.decide(now=slot.decide_by - timedelta(days=2)).warned == 0
    assert {m.recipient for m in outbox("visit.host_minimum")} == {host.email, member.email}
    operations.decide(now=slot.decide_by)  # under its minimum: cancelled
    assert {m.recipient for m in outbox("visit.cancelled.host")} == {host.email, member.email}

    # Unverified structure, or a member who left: no hosting.
    ccas.verified_at = None
    commit()
    assert not operations.may_host(member, sheet)


# --- the hosts' letter: 50/80/100 % -------------------------------------------------------------

def test_the_hosts_letter_lists_their_slots_filled_to_50_80_and_100_percent_in_one_section(
        client, bearer, sheet, host, make_user, moderator):
    from kb.letters.operations import build_letters

    half = new_slot(sheet, host, capacity=4, min_participants=3)
    most = new_slot(sheet, host, capacity=5, min_participants=1, format="atelier")
    full = new_slot(sheet, host, capacity=2, min_participants=1)
    few = new_slot(sheet, host, capacity=5, min_participants=1)
    other_sheet_slot = new_slot(sheet, moderator, capacity=1, min_participants=1)
    for target, people in ((half, 2), (most, 4), (full, 3), (few, 1), (other_sheet_slot, 1)):
        for _ in range(people):
            operations.register_user(target.id, make_user())
            commit()
    build_letters(utcnow())
    [letter] = outbox("letter", host.email)  # one letter, not a mail per slot
    body = letter.body_text
    section = body.split("== Vos visites ==", 1)[1].split("\n== ", 1)[0]
    assert "complet : 2 inscrits sur 2 places, minimum 1 atteint, 1 en liste d'attente" in section
    assert "80 % des places prises : 4 inscrits sur 5 places, minimum 1 atteint" in section
    assert "50 % des places prises : 2 inscrits sur 4 places, minimum 3 pas encore atteint" in (
        section)
    assert f"/visites/{few.id}/inscrits" not in section  # 20 %: not yet
    assert f"/visites/{full.id}/inscrits" in section and f"/visites/{full.id}/modifier" in section
    # The moderator who opened a full slot is its host too; nobody else hears of it.
    assert f"/visites/{other_sheet_slot.id}/inscrits" in outbox("letter", moderator.email)[
        0].body_text
    assert all("== Vos visites ==" not in m.body_text for m in outbox("letter")
               if m.recipient not in (host.email, moderator.email))



# --- API: attendance and ratings ---------------------------------------------------------------

def test_the_api_marks_attendance_and_takes_the_visitors_rating(
        client, bearer, sheet, host, make_user):
    slot = new_slot(sheet, host, capacity=2, min_participants=1)
    came, absent, waiting = (make_user(name=n) for n in ("Camille", "Abel", "Wanda"))
    for person in (came, absent, waiting):
        client.post(f"/api/v1/visits/{slot.id}/registrations", json={}, headers=bearer(person))
    ids = {r["name"]: r["id"] for r in client.get(
        f"/api/v1/visits/{slot.id}/registrations", headers=bearer(host)).json["items"]}
    attendance, rating = f"/api/v1/visits/{slot.id}/attendance", f"/api/v1/visits/{slot.id}/rating"
    early = client.post(attendance, json={"present": [ids["Camille"]]}, headers=bearer(host))
    assert early.status_code == 409 and "pas encore commencé" in early.json["message"]
    assert client.post(rating, json={"score": 4}, headers=bearer(came)).status_code == 409
    slot.starts_at, slot.ends_at = utcnow() - timedelta(hours=2), utcnow() - timedelta(hours=1)
    commit()

    assert client.post(attendance, json={"present": []}).status_code == 401
    assert client.post(attendance, json={"present": [ids["Camille"]]},
                       headers=bearer(came)).status_code == 404  # not the host
    for bad in ({"present": "tous"}, {"present": [True]}, {}, [1],
                {"present": [ids["Wanda"]]}, {"present": [999999]}):
        answer = client.post(attendance, json=bad, headers=bearer(host))
        assert answer.status_code == 422, (bad, answer.json)
        assert "present" in answer.json["message"]
    marked = client.post(attendance, json={"present": [ids["Camille"]]}, headers=bearer(host))
    assert marked.status_code == 200
    assert {r["name"]: r["attended"] for r in marked.json["items"]} == {
        "Camille": True, "Abel": False, "Wanda": None}

    assert client.post(rating, json={"score": 5}, headers=bearer(absent)).status_code == 409
    assert client.post(rating, json={"score": 5}, headers=bearer(waiting)).status_code == 404
    for bad in ({"score": 6}, {"score": "4"}, {"score": True}, {"score": 4, "comment": 3},
                {"score": 4, "note": "x"}, {}):
        answer = client.post(rating, json=bad, headers=bearer(came))
        assert answer.status_code == 422, (bad, answer.json)
    rated = client.post(rating, json={"score": 4, "comment": "Très utile"}, headers=bearer(came))
    assert rated.status_code == 200
    assert (rated.json["score"], rated.json["comment"]) == (4, "Très utile")
    table = client.get(f"/api/v1/visits/{slot.id}/registrations", headers=bearer(host)).json
    assert [(r["name"], r["rating"], r["comment"]) for r in table["items"]][0] == (
        "Camille", 4, "Très utile")
    assert operations.mean_rating(slot) == 4.0


def test_a_campaigns_cap_holds_for_registrations_at_once_on_different_slots(
        app: Flask, sheet, host, make_user, moderator):
    # Each request locks its own slot: the cap is counted under the campaign's lock too.
    campaign = _campaign(moderator, cap=2)
    slots = [new_slot(sheet, host, campaign_id=campaign.id, capacity=10, min_participants=1)
             for _ in range(5)]
    people = [make_user() for _ in range(4)]
    tokens = {person.id: token_for(person) for person in people}
    commit()
    calls = [(person_id, slot.id) for person_id in tokens for slot in slots]
    clients: list[FlaskClient] = [app.test_client() for _ in calls]

    responses = _at_once([
        lambda c=c, p=p, s=s: c.post(f"/api/v1/visits/{s}/registrations", json={}, headers={
            "Authorization": f"Bearer {tokens[p]}"})
        for c, (p, s) in zip(clients, calls, strict=True)])

    codes = [getattr(r, "status_code", r) for r in responses]
    assert sorted(codes) == [201] * 8 + [409] * 12, codes
    db.session.rollback()
    per_person = {p: db.session.scalar(select(func.count(VisitRegistration.id)).where(
        VisitRegistration.user_id == p, VisitRegistration.status == "registered"))
        for p in tokens}
    assert per_person == {p: 2 for p in tokens}
