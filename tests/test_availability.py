"""Availability (issue 23): a sheet's contributors say where places stand in one click, without
a review cycle; the journal keeps it; readers see its age, and "inconnue" after 30 days."""

from __future__ import annotations

from datetime import timedelta
from html import unescape
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from kb.availability.models import STALE_AFTER, Availability
from kb.extensions import db
from kb.moderation.models import AuditEntry
from kb.sheets.models import Revision
from kb.timeutil import utcnow
from kb.transaction import commit


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
