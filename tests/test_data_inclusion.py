"""data·inclusion's vocabulary on sheets (issue 23): thématiques, publics and orientation are
declared once with the schema package's own enums, and every output follows the declaration;
the home page opens on the 16 families, each with its page."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from data_inclusion.schema import v1 as di
from flask.testing import FlaskClient

from kb.sheets.fields import FIELDS_BY_NAME, ValidationError, validate
from kb.sheets.models import Revision
from tests.search_helpers import BACKENDS


@pytest.fixture(params=BACKENDS)
def app_config(request: pytest.FixtureRequest, app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "KB_SEARCH_BACKEND": request.param}


@pytest.fixture
def corpus(make_sheet: Callable[..., Revision], make_user: Callable[..., Any]) -> None:
    make_sheet(title="Garage solidaire de Brest", city="Brest", department="29",
               thematiques=["mobilite--entretenir-reparer-son-vehicule"],
               publics=["femmes"])
    make_sheet(title="Auto-école sociale de Quimper", city="Quimper", department="29",
               thematiques=["Préparer un permis"], publics=["jeunes"])  # a label is accepted
    make_sheet(title="Crèche à vocation d'insertion à Nantes", city="Nantes", department="44",
               thematiques=["famille--garde-denfants", "mobilite--financer-ma-mobilite"],
               publics=["tous-publics"])
    make_sheet(title="Accueil en mairie", tags=["accueil"])  # no thématique
    make_sheet(author=make_user("contributor"), title="Brouillon mobilité",
               thematiques=["mobilite--preparer-un-permis"])  # never published


def test_vocabularies_are_the_schema_packages_own() -> None:
    thematiques = FIELDS_BY_NAME["thematiques"]
    assert thematiques.choices == tuple((t.value, t.label) for t in di.Thematique)
    assert thematiques.groups == tuple((c.value, c.label) for c in di.Categorie)
    assert len(thematiques.groups) == 16
    assert sum(len(c) for _, _, c in thematiques.grouped_choices()) == len(di.Thematique)
    assert FIELDS_BY_NAME["publics"].choice_values == tuple(p.value for p in di.Public)
    assert FIELDS_BY_NAME["modes_mobilisation"].choice_values == tuple(
        m.value for m in di.ModeMobilisation)
    assert FIELDS_BY_NAME["mobilisable_par"].choice_values == tuple(
        m.value for m in di.PersonneMobilisatrice)
    assert FIELDS_BY_NAME["frais"].choice_values == tuple(f.value for f in di.Frais)


def test_values_are_stored_as_the_schemas_keys_and_zones_as_official_codes() -> None:
    data = validate({"title": "x", "thematiques": "Garde d’enfants\nmobilite--preparer-un-permis",
                     "publics": ["Femmes"], "frais": "gratuit",
                     "zone_eligibilite": "Bretagne\nBrest\n242900314\nfrance"})
    assert data["thematiques"] == ["famille--garde-denfants", "mobilite--preparer-un-permis"]
    assert data["publics"] == ["femmes"]
    # A région is its départements (the schema has no région code); Brest is 29019.
    assert data["zone_eligibilite"] == ["22", "29", "35", "56", "29019", "242900314", "france"]


@pytest.mark.parametrize(("field", "value", "says"), [
    ("thematiques", ["mobilite--teleportation"], "inconnue"),
    ("publics", ["tous-publics", "femmes"], "ne va pas avec"),
    ("zone_eligibilite", ["Atlantide"], "territoire inconnu"),
    ("frais", "selon la tête", "valeur inconnue"),
])
def test_a_value_outside_the_vocabulary_is_refused_in_french(field: str, value: Any,
                                                              says: str) -> None:
    with pytest.raises(ValidationError) as raised:
        validate({"title": "x", field: value})
    assert says in raised.value.errors[field]


def _titles(client: FlaskClient, url: str, **args: str) -> set[str]:
    response = client.get(url, query_string={**args, "per_page": 100})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return {item["title"] for item in response.get_json()["items"]}


MOBILITY = {"Garage solidaire de Brest", "Auto-école sociale de Quimper",
            "Crèche à vocation d'insertion à Nantes"}


@pytest.mark.parametrize("url", ["/api/v1/sheets", "/api/v1/search"])
def test_the_api_filters_by_family_thematique_and_public(client: FlaskClient, corpus: None,
                                                         url: str) -> None:
    assert _titles(client, url, thematique="mobilite") == MOBILITY
    assert _titles(client, url, thematique="Mobilité") == MOBILITY  # its label too
    assert _titles(client, url, thematique="famille--garde-denfants") == {
        "Crèche à vocation d'insertion à Nantes"}
    assert _titles(client, url, thematique="mobilite", public="jeunes") == {
        "Auto-école sociale de Quimper"}
    bad = client.get(url, query_string={"thematique": "teleportation"})
    assert bad.status_code == 400 and "thématique inconnue" in bad.get_json()["message"]


def test_the_search_page_filters_by_thematique_and_public(client: FlaskClient,
                                                          corpus: None) -> None:
    page = client.get("/recherche", query_string={"thematique": "mobilite", "public": "femmes"})
    text = page.get_data(as_text=True)
    assert "Garage solidaire de Brest" in text
    assert "Auto-école sociale" not in text and "Crèche" not in text


def test_each_tile_counts_what_search_finds_for_its_family(client: FlaskClient,
                                                           corpus: None) -> None:
    home = client.get("/").get_data(as_text=True)
    assert "Quel frein voulez-vous lever&nbsp;?" in home
    tiles = re.findall(r'href="/thematiques/([a-z-]+)"><span class="tile-label">[^<]+</span> '
                       r'<span class="count">(\d+) fiches?</span>', home)
    assert len(tiles) == 16
    for family, count in tiles:
        found = client.get("/api/v1/search", query_string={"thematique": family}).get_json()
        assert found["total"] == int(count), family
    assert dict(tiles)["mobilite"] == "3"


def test_a_thematique_page_lists_its_sheets(client: FlaskClient, corpus: None) -> None:
    page = client.get("/thematiques/mobilite").get_data(as_text=True)
    assert all(title.replace("'", "&#39;") in page for title in MOBILITY)
    assert "Accueil en mairie" not in page and "Brouillon" not in page
    narrowed = client.get("/thematiques/mobilite?public=jeunes").get_data(as_text=True)
    assert "Auto-école sociale" in narrowed and "Garage solidaire" not in narrowed
    assert client.get("/thematiques/teleportation").status_code == 404


def test_a_query_naming_a_thematique_offers_its_page(client: FlaskClient, corpus: None) -> None:
    page = client.get("/recherche?q=garde+d'enfants").get_data(as_text=True)
    assert 'href="/thematiques/famille--garde-denfants"' in page
    body = client.get("/api/v1/search?q=mobilité").get_json()
    assert [t["value"] for t in body["thematiques"]] == ["mobilite"]
    assert body["thematiques"][0]["url"].endswith("/thematiques/mobilite")


def test_the_sheet_page_and_the_api_speak_the_vocabulary(client: FlaskClient,
                                                         corpus: None) -> None:
    slug = client.get("/api/v1/sheets", query_string={"thematique": "famille"}
                      ).get_json()["items"][0]["slug"]
    sheet = client.get(f"/api/v1/sheets/{slug}").get_json()
    assert sheet["thematiques"] == ["famille--garde-denfants", "mobilite--financer-ma-mobilite"]
    assert sheet["publics"] == ["tous-publics"]
    page = client.get(f"/fiches/{slug}").get_data(as_text=True)
    assert "Garde d’enfants" in page and "Tous publics" in page


CARD = re.compile(r'<article class="card">\s*<h3><a href="/fiches/([^"?/]+)"')


def _slugs(client: FlaskClient, url: str) -> list[str]:
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return CARD.findall(response.get_data(as_text=True))


def test_a_thematique_page_orders_by_proximity_to_the_readers_commune(
        client: FlaskClient, make_sheet: Callable[..., Revision]) -> None:
    mobility = ["mobilite--preparer-un-permis"]
    places: dict[str, dict[str, Any]] = {
        "Brest Métropole": {"city": "Guipavas", "department": "29",
                            "zone_eligibilite": ["242900314"]},
        "Morbihan": {"city": "Vannes", "department": "56", "zone_eligibilite": ["56"]},
        "Nantes seulement": {"city": "Nantes", "department": "44", "zone_eligibilite": ["44"]},
        "Quimper, sans zone": {"city": "Quimper", "department": "29"},
        "Partout en France": {"city": "", "department": "", "scale": "national",
                              "zone_eligibilite": ["france"]},
    }
    slug = {title: make_sheet(title=title, thematiques=mobility, **place).sheet.slug
            for title, place in places.items()}
    newest_first = [slug[t] for t in reversed(places)]
    assert _slugs(client, "/thematiques/mobilite") == newest_first  # no commune chosen
    # In Brest: its EPCI's zone, its département, its région, the country, then elsewhere.
    nearest_first = [slug[t] for t in ("Brest Métropole", "Quimper, sans zone", "Morbihan",
                                       "Partout en France", "Nantes seulement")]
    assert _slugs(client, "/thematiques/mobilite?pres=Brest") == nearest_first
    # Kept in a cookie: the next visit is ordered the same, until the reader forgets it.
    assert _slugs(client, "/thematiques/mobilite") == nearest_first
    assert _slugs(client, "/thematiques/mobilite?pres=-") == newest_first
    assert _slugs(client, "/thematiques/mobilite") == newest_first
    bad = client.get("/thematiques/mobilite?pres=Atlantide")
    assert bad.status_code == 400 and "commune inconnue" in bad.get_data(as_text=True)


def test_a_signed_in_readers_commune_is_kept_on_the_account_and_orders_the_pages(
        client: FlaskClient, make_sheet: Callable[..., Revision], make_user: Callable[..., Any],
        login: Callable[..., None]) -> None:
    from kb.auth.models import User
    from kb.extensions import db
    from kb.sheets.proximity import COOKIE

    mobility = ["mobilite--preparer-un-permis"]
    near = make_sheet(title="Garage de Guipavas", city="Guipavas", department="29",
                      zone_eligibilite=["242900314"], thematiques=mobility).sheet.slug
    far = make_sheet(title="Permis à Nantes", city="Nantes", department="44",
                     zone_eligibilite=["44"], thematiques=mobility).sheet.slug
    reader = make_user("contributor")
    login(reader)
    assert _slugs(client, "/thematiques/mobilite") == [far, near]  # newest first
    # Chosen on /compte: no cookie, the account's commune orders the page.
    response = client.post("/compte/commune", data={"commune-commune": "Brest"})
    assert response.status_code == 302 and db.session.get(User, reader.id).commune_code == "29019"
    assert client.get_cookie(COOKIE) is None
    assert _slugs(client, "/thematiques/mobilite") == [near, far]
    assert "Brest" in client.get("/compte").get_data(as_text=True)
    # Chosen on the page (?pres=): kept on the account too, found again on another device.
    client.get("/thematiques/mobilite?pres=Nantes")
    assert db.session.get(User, reader.id).commune_code == "44109"
    client.delete_cookie(COOKIE)
    assert _slugs(client, "/thematiques/mobilite") == [far, near]
    # A cookie says more recently what this browser chose: it comes before the account.
    client.set_cookie(COOKIE, "29019")
    assert _slugs(client, "/thematiques/mobilite") == [near, far]
    client.get("/thematiques/mobilite?pres=-")  # forgotten everywhere
    assert db.session.get(User, reader.id).commune_code == ""
    assert _slugs(client, "/thematiques/mobilite") == [far, near]
    bad = client.post("/compte/commune", data={"commune-commune": "Atlantide"})
    assert bad.status_code == 422 and "Commune inconnue" in bad.get_data(as_text=True)
    login(None)  # a reader without an account: only the cookie and ?pres=
    assert _slugs(client, "/thematiques/mobilite") == [far, near]


def test_the_home_tiles_count_the_thematique_facet_only(app, make_sheet):
    from kb.sheets.filters import count_facets, published_ids

    make_sheet(thematiques=["mobilite--preparer-un-permis"])
    total, counts = count_facets(published_ids(), only={"thematique"})
    assert total == 1 and counts["thematique"].get("mobilite") == 1
    assert all(not keys for param, keys in counts.items() if param != "thematique")
    assert count_facets(published_ids())[1]["scale"]  # every facet when none is named
