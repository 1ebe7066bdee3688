"""Filters declared once: every output that accepts filters gives the same sheets for the
same parameters, and refuses the same bad values (kb/sheets/filters.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

import pytest
from flask.testing import FlaskClient

from kb.sheets.fields import FIELDS
from kb.sheets.filters import ACCEPTED_PARAMS, FACETS, PARAMS
from kb.sheets.models import Revision
from tests.search_helpers import BACKENDS


@pytest.fixture(params=BACKENDS)
def app_config(request: pytest.FixtureRequest, app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "KB_SEARCH_BACKEND": request.param}


@pytest.fixture
def corpus(make_sheet: Callable[..., Revision], make_user: Callable[..., Any]) -> None:
    make_sheet(title="Accueil en mairie de Brest", city="Brest", department="29",
               scale="commune", actor_type="commune", tags=["accueil"])
    # The département written as a name: the same filter must find it.
    make_sheet(title="Médiation à Quimper", city="Quimper", department="Finistère",
               scale="intercommunalite", actor_type="association", tags=["numérique"])
    make_sheet(title="Jardins de Nantes", city="Nantes", department="44",
               scale="quartier", actor_type="association", tags=["accueil", "alimentation"])
    make_sheet(title="Maison France Services en Vendée", city="", department="vendée",
               scale="departement", actor_type="etat", tags=["accueil"])
    # Never published: no output may show it.
    make_sheet(author=make_user("contributor"), title="Brouillon à Brest", city="Brest",
               department="29", scale="commune", actor_type="commune", tags=["accueil"])


ALL = {"Accueil en mairie de Brest", "Médiation à Quimper", "Jardins de Nantes",
       "Maison France Services en Vendée"}
CASES: list[tuple[dict[str, str], set[str]]] = [
    ({}, ALL),
    ({"department": "29"}, {"Accueil en mairie de Brest", "Médiation à Quimper"}),
    ({"department": "Finistère"}, {"Accueil en mairie de Brest", "Médiation à Quimper"}),
    ({"department": "85"}, {"Maison France Services en Vendée"}),
    ({"scale": "commune"}, {"Accueil en mairie de Brest"}),
    ({"scale": "Département"}, {"Maison France Services en Vendée"}),  # a label is accepted
    ({"actor_type": "association"}, {"Médiation à Quimper", "Jardins de Nantes"}),
    ({"tag": "accueil"}, {"Accueil en mairie de Brest", "Jardins de Nantes",
                          "Maison France Services en Vendée"}),
    ({"tag": "accueil", "department": "44"}, {"Jardins de Nantes"}),
    ({"city": "brest"}, {"Accueil en mairie de Brest"}),
    ({"department": "29", "actor_type": "etat"}, set()),
]

CARD = re.compile(r'<article class="card">\s*<h3><a href="/fiches/([^"?/]+)"')


def _titles_from_slugs(client: FlaskClient, slugs: list[str]) -> set[str]:
    return {client.get(f"/api/v1/sheets/{slug}").get_json()["title"] for slug in slugs}


def _ok(response: Any) -> Any:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response


def outputs(client: FlaskClient) -> dict[str, Callable[[dict[str, str]], set[str]]]:
    """Every output accepting filters -> the titles it lists for these parameters."""
    def listing(args: dict[str, str]) -> set[str]:
        page = _ok(client.get("/fiches", query_string=args)).get_data(as_text=True)
        return _titles_from_slugs(client, CARD.findall(page))

    def api(args: dict[str, str]) -> set[str]:
        body = _ok(client.get("/api/v1/sheets", query_string={**args, "per_page": 100})).json
        return {item["title"] for item in body["items"]}

    def api_search(args: dict[str, str]) -> set[str]:
        body = _ok(client.get("/api/v1/search", query_string={**args, "per_page": 100})).json
        return {item["title"] for item in body["items"]}

    def search_page(args: dict[str, str]) -> set[str]:
        page = _ok(client.get("/recherche", query_string=args)).get_data(as_text=True)
        return _titles_from_slugs(client, CARD.findall(page))

    def search_with_words(args: dict[str, str]) -> set[str]:
        # A text query and filters together: the filters must not change meaning.
        body = _ok(client.get("/api/v1/search", query_string={**args, "q": "-zzzqqq"})).json
        return {item["title"] for item in body["items"]}

    def embed_list(args: dict[str, str]) -> set[str]:
        page = _ok(client.get("/embed/list", query_string={**args, "limit": 20}))
        return _titles_from_slugs(client, re.findall(r'<h2><a href="/fiches/([^"?/]+)"',
                                                     page.get_data(as_text=True)))

    def feed(args: dict[str, str]) -> set[str]:
        xml = _ok(client.get("/donnees/flux/fiches.atom", query_string=args)).data
        atom = "{http://www.w3.org/2005/Atom}"
        return {entry.findtext(f"{atom}title") or ""
                for entry in ElementTree.fromstring(xml).iter(f"{atom}entry")}

    return {"/fiches": listing, "/api/v1/sheets": api, "/api/v1/search": api_search,
            "/recherche": search_page, "/api/v1/search?q=": search_with_words,
            "/embed/list": embed_list, "/donnees/flux/fiches.atom": feed}


@pytest.mark.parametrize(("args", "expected"), CASES)
def test_every_output_gives_the_same_sheets_for_the_same_filters(
        client: FlaskClient, corpus: None, args: dict[str, str], expected: set[str]) -> None:
    found = {name: get(args) for name, get in outputs(client).items()}
    assert found == dict.fromkeys(found, expected)


@pytest.mark.parametrize("args", [{"department": "Atlantide"}, {"scale": "planète"},
                                  {"actor_type": "martien"}])
def test_every_output_refuses_a_value_that_cannot_match_in_french(
        client: FlaskClient, corpus: None, args: dict[str, str]) -> None:
    for url in ("/fiches", "/api/v1/sheets", "/api/v1/search", "/recherche", "/embed/list",
                "/donnees/flux/fiches.atom"):
        response = client.get(url, query_string=args)
        assert response.status_code == 400, url
        text = response.get_data(as_text=True)
        assert "inconnu" in text, url


@pytest.mark.parametrize("param", ["tag", "department", "city", "scale"])
def test_every_output_refuses_a_value_longer_than_the_openapi_document_allows(
        client: FlaskClient, corpus: None, param: str) -> None:
    # Found by tests/test_abuse_openapi.py: the Atom feed answered 200 to a 201-character tag.
    for url in ("/fiches", "/api/v1/sheets", "/api/v1/search", "/recherche", "/embed/list",
                "/donnees/flux/fiches.atom"):
        response = client.get(url, query_string={param: "0" * 201})
        assert response.status_code == 400, url
        assert "200" in response.get_data(as_text=True), url  # says how long it may be
        assert client.get(url, query_string={param: "0" * 200}).status_code in (200, 400), url


def test_facet_counts_agree_between_search_and_listing(client: FlaskClient, corpus: None) -> None:
    """The search facets count what the filters of /fiches would then list."""
    facets = client.get("/api/v1/search").json["facets"]
    assert set(facets) == set(PARAMS)
    assert facets["department"] == {"29": 2, "44": 1, "85": 1}
    for param, counts in facets.items():
        for key, count in counts.items():
            listed = client.get("/api/v1/sheets", query_string={param: key}).json["total"]
            assert listed == count, (param, key)


def test_the_declaration_drives_widget_js_the_configurator_and_openapi(
        client: FlaskClient, corpus: None) -> None:
    # A field's facet, then its parts' (indicators: has_results, indicator_kind, source_type).
    declared = [param for f in FIELDS for param in
                ([f.facet.param] if f.facet else []) + [p.facet.param for p in f.parts if p.facet]]
    assert list(PARAMS) == declared and [spec.param for spec in FACETS] == declared
    widget = client.get("/widget.js").get_data(as_text=True)
    keys = re.search(r"var LIST_KEYS = (\[[^\]]*\])", widget)
    assert keys is not None and eval(keys.group(1)) == ["q", *ACCEPTED_PARAMS, "limit"]  # noqa: S307
    configurator = client.get("/embed?mode=list").get_data(as_text=True)
    for param in PARAMS:
        assert f'<select id="{param}" name="{param}">' in configurator
    assert 'value="29" >Finistère (29) (2)' in configurator
    document = client.get("/api/openapi.json").json
    for path in ("/api/v1/sheets", "/api/v1/search", "/donnees/flux/fiches.atom"):
        names = {p["name"] for p in document["paths"][path]["get"]["parameters"]}
        assert names >= set(PARAMS), path
    assert set(document["paths"]["/api/v1/search"]["get"]["responses"]["200"]["content"]
               ["application/json"]["schema"]["properties"]["facets"]["properties"]) == set(PARAMS)


def test_search_page_facet_links_use_the_filter_parameters(client: FlaskClient,
                                                           corpus: None) -> None:
    page = client.get("/recherche").get_data(as_text=True)
    assert 'href="/recherche?tag=accueil"' in page
    assert 'href="/recherche?department=29"' in page and "Finistère (29)" in page
    listing = client.get("/fiches?department=29").get_data(as_text=True)
    assert "<strong>Finistère (29)</strong>" in listing  # the active filter, by its name
    assert 'href="/fiches?department=29&amp;tag=accueil"' in listing


def test_the_search_api_names_facet_values(client: FlaskClient, corpus: None) -> None:
    body = client.get("/api/v1/search", query_string={"department": "29"}).json
    assert body["facets"]["department"] == {"29": 2}
    assert body["facet_labels"]["department"] == {"29": "Finistère (29)"}
    assert body["facet_labels"]["region"] == {"53": "Bretagne"}
    assert body["facet_labels"]["commune"]["29019"] == "Brest (29)"
