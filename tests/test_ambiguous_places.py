"""Issue 20, item 5: a sheet imported with an ambiguous commune stays editable; its place is
settled once by a moderator, and the form asks only when the place itself is edited."""

from __future__ import annotations

import html
from typing import Any

from kb.extensions import db
from kb.sheets import operations
from kb.sheets.fields import FIELDS, Kind
from kb.sheets.models import Revision, Sheet
from kb.transaction import commit
from tests.conftest import sheet_data

CANDIDATES = ("97411", "93066", "11339", "30247")


def _imported_saint_denis(author: Any) -> Revision:
    """What an import stores for "Saint-Denis" with nothing to tell which: no INSEE code."""
    revision = operations.create_sheet(
        sheet_data(title="Accueil à Saint-Denis", city="Saint-Denis", department=""), author,
        lenient_places=True)
    commit()
    assert revision.data["commune_code"] == "" and revision.sheet.commune_code == ""
    return revision


def _form_of(revision: Revision, page: str) -> dict[str, str]:
    """The values the edit form shows, as a browser sends them back."""
    data = {f.name: "\n".join(revision.data.get(f.name) or []) if f.kind is Kind.LIST
            else str(revision.data.get(f.name) or "") for f in FIELDS}
    assert f'value="{data["city"]}"' in page  # the form shows the place as stored
    return {**data, "base_revision": str(revision.id)}


def test_an_api_edit_of_the_results_alone_goes_through(client: Any, moderator: Any,
                                                       contributor: Any, bearer: Any) -> None:
    revision = _imported_saint_denis(moderator)
    slug = revision.sheet.slug
    published = client.patch(f"/api/v1/sheets/{slug}", headers=bearer(moderator), json={
        "base_revision": revision.id, "results": "Deux guichets ouverts en 2025."})
    assert published.status_code == 200, published.get_json()
    proposed = client.patch(f"/api/v1/sheets/{slug}", headers=bearer(contributor), json={
        "base_revision": published.get_json()["revision"], "results": "Trois guichets."})
    assert proposed.status_code == 202, proposed.get_json()
    body = client.get(f"/api/v1/sheets/{slug}").get_json()
    assert (body["results"], body["city"], body["commune_code"]) == \
        ("Deux guichets ouverts en 2025.", "Saint-Denis", "")


def test_an_api_edit_of_the_city_still_asks_which_commune(client: Any, moderator: Any,
                                                          bearer: Any) -> None:
    revision = _imported_saint_denis(moderator)
    response = client.patch(f"/api/v1/sheets/{revision.sheet.slug}", headers=bearer(moderator),
                            json={"base_revision": revision.id, "city": "Saint Denis"})
    assert response.status_code == 422
    codes = [c["code"] for c in response.get_json()["choices"]["commune_code"]]
    assert sorted(codes) == sorted(CANDIDATES)


def test_the_form_saves_an_edit_of_another_field(client: Any, login: Any,
                                                 moderator: Any) -> None:
    revision = _imported_saint_denis(moderator)
    slug = revision.sheet.slug
    login(moderator)
    page = client.get(f"/fiches/{slug}/modifier").get_data(as_text=True)
    payload = {**_form_of(revision, page), "results": "Un nouveau guichet."}
    response = client.post(f"/fiches/{slug}/modifier", data=payload)
    assert response.status_code == 302, html.unescape(response.get_data(as_text=True))
    sheet = db.session.get(Sheet, revision.sheet.id)
    assert sheet.approved_revision.data["results"] == "Un nouveau guichet."
    assert (sheet.city, sheet.commune_code) == ("Saint-Denis", "")


def test_the_form_asks_when_the_city_itself_is_edited(client: Any, login: Any,
                                                      moderator: Any) -> None:
    revision = _imported_saint_denis(moderator)
    slug = revision.sheet.slug
    login(moderator)
    page = client.get(f"/fiches/{slug}/modifier").get_data(as_text=True)
    payload = {**_form_of(revision, page), "city": "Saint Denis"}
    response = client.post(f"/fiches/{slug}/modifier", data=payload)
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    assert "Plusieurs communes s'appellent « Saint Denis » : laquelle est-ce ?" in page
    chosen = client.post(f"/fiches/{slug}/modifier", data={**payload, "commune_code": "97411"})
    assert chosen.status_code == 302
    assert db.session.get(Sheet, revision.sheet.id).commune_code == "97411"


def test_a_name_outside_the_register_is_not_asked_again_on_an_unrelated_edit(
        client: Any, login: Any, moderator: Any) -> None:
    revision = operations.create_sheet(sheet_data(city="Atlantis", department=""), moderator,
                                       lenient_places=True)
    commit()
    login(moderator)
    slug = revision.sheet.slug
    page = client.get(f"/fiches/{slug}/modifier").get_data(as_text=True)
    payload = {**_form_of(revision, page), "results": "Autre chose."}
    assert client.post(f"/fiches/{slug}/modifier", data=payload).status_code == 302
    assert db.session.get(Sheet, revision.sheet.id).city == "Atlantis"


def test_moderators_list_ambiguous_places_and_settle_them_once(client: Any, login: Any,
                                                               moderator: Any, contributor: Any,
                                                               make_sheet: Any) -> None:
    revision = _imported_saint_denis(moderator)
    make_sheet(title="Accueil à Brest")  # resolved: not listed
    login(contributor)
    assert client.get("/moderation/lieux").status_code == 403
    login(moderator)
    page = html.unescape(client.get("/moderation/lieux").get_data(as_text=True))
    assert "Accueil à Saint-Denis" in page and "Accueil à Brest" not in page
    assert "« Saint-Denis » : laquelle de ces communes ?" in page
    for code in CANDIDATES:
        assert f'value="{code}"' in page

    refused = client.post(f"/moderation/lieux/{revision.sheet.slug}",
                          data={"commune_code": "29019"})  # Brest: not a candidate
    assert refused.status_code == 302
    assert db.session.get(Sheet, revision.sheet.id).commune_code == ""

    settled = client.post(f"/moderation/lieux/{revision.sheet.slug}",
                          data={"commune_code": "93066"}, follow_redirects=True)
    assert settled.status_code == 200
    assert "Aucun lieu à préciser." in html.unescape(settled.get_data(as_text=True))
    sheet = db.session.get(Sheet, revision.sheet.id)
    assert (sheet.city, sheet.commune_code, sheet.department, sheet.region) == \
        ("Saint-Denis", "93066", "93", "11")
    latest = sheet.approved_revision
    assert latest.id != revision.id and latest.author_id == moderator.id  # a new revision
    assert latest.comment == "Commune précisée : Saint-Denis (93)"


def test_settling_a_place_needs_the_forms_token(app_config: dict[str, Any], moderator: Any) -> None:
    from kb import create_app

    app = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    revision = _imported_saint_denis(moderator)
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = moderator.get_id()
        session["_fresh"] = True
    page = client.get("/moderation/lieux").get_data(as_text=True)
    assert 'name="csrf_token"' in page
    response = client.post(f"/moderation/lieux/{revision.sheet.slug}",
                           data={"commune_code": "93066"})
    assert response.status_code == 400
