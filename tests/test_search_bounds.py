"""Search at any size does a bounded amount of work (SQL engines): beyond
KB_SEARCH_EXACT_COUNT matches the total and the facet counts are estimates, said so, and the
full ranking reads KB_SEARCH_CANDIDATES candidates chosen by the short fields."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kb.search.backend import estimate
from kb.search.service import search_sheets
from kb.sheets.models import Revision
from tests.search_helpers import PG_URL
from tests.test_search import plain


@pytest.fixture(params=["postgres"] if PG_URL else ["sqlite"])
def app_config(request: pytest.FixtureRequest, app_config: dict[str, Any]) -> dict[str, Any]:
    # Small bounds: 12 sheets are "very many".
    return {**app_config, "KB_SEARCH_BACKEND": request.param, "KB_SEARCH_EXACT_COUNT": 4,
            "KB_SEARCH_CANDIDATES": 3}


@pytest.fixture
def gardens(make_sheet: Callable[..., Revision]) -> list[Revision]:
    """12 sheets about gardens (8 in Brest, 4 in Nantes), the word in their text only; the
    last one created also has it in its title."""
    made = [make_sheet(**plain(title=f"Initiative {n}", city="Brest" if n < 8 else "Nantes",
                               department="29" if n < 8 else "44",
                               context=f"Un jardin partagé, numéro {n}."))
            for n in range(11)]
    made.append(make_sheet(**plain(title="Le jardin des voisins", city="Nantes",
                                   department="44", context="Un jardin partagé.")))
    return made


def test_up_to_the_bound_counts_are_exact(gardens: list[Revision],
                                          make_sheet: Callable[..., Revision]) -> None:
    make_sheet(**plain(title="Compostage", context="Des bacs de compostage."))
    result = search_sheets("compostage")
    assert result["total"] == 1
    assert result["total_is_estimate"] is False
    nantes = search_sheets("jardin", {"department": "44"})  # 4 matches: the bound
    assert nantes["total"] == 4
    assert nantes["total_is_estimate"] is False
    assert nantes["facets"]["department"] == {"44": 4}


def test_beyond_the_bound_total_and_facets_are_estimates(gardens: list[Revision]) -> None:
    result = search_sheets("jardin")
    assert result["total_is_estimate"] is True
    # Estimated from the first 5 matches and the share of the index they cover: about 12.
    assert 5 <= result["total"] <= 40
    counts = result["facets"]["department"]
    assert set(counts) <= {"29", "44"} and counts
    assert all(n >= 1 for n in counts.values())
    # The page is still a real page of real matches.
    assert len(result["items"]) == 12 if result["total"] >= 12 else result["total"]


def test_beyond_the_bound_the_best_sheet_still_comes_first(gardens: list[Revision]) -> None:
    """The sheet with the word in its title was created last: outside the first matches (the
    sample), it comes first through the candidates of the short fields."""
    result = search_sheets("jardin", per_page=2)
    assert result["total_is_estimate"] is True
    assert result["items"][0]["title"] == "Le jardin des voisins"
    assert len(result["items"]) == 2
    # A far page reads as many candidates as it needs: every sheet, once, over the pages.
    seen = [item["title"] for page in range(1, 7)
            for item in search_sheets("jardin", per_page=2, page=page)["items"]]
    assert len(seen) == len(set(seen)) == 12


def test_with_the_word_in_every_title_each_sheet_shows_once_over_the_pages(
        make_sheet: Callable[..., Revision]) -> None:
    """Stage one ranks a bounded sample of the sheets with the word in a short field (more
    of them than the sample here): the same sample for every page."""
    for n in range(12):
        make_sheet(**plain(title=f"Jardin partagé {n}", context=f"Un jardin, numéro {n}."))
    first = search_sheets("jardin", per_page=2)
    assert first["total_is_estimate"] is True
    seen = [item["title"] for page in range(1, 7)
            for item in search_sheets("jardin", per_page=2, page=page)["items"]]
    assert len(seen) == len(set(seen)) == 12
    assert seen[:2] == [item["title"] for item in first["items"]]  # page 1 asked again: same


def test_by_date_beyond_the_bound_is_the_newest_matches(app: Flask,
                                                      gardens: list[Revision]) -> None:
    result = search_sheets("jardin", sort="updated", per_page=3)
    assert result["total_is_estimate"] is True
    app.config.update(KB_SEARCH_EXACT_COUNT=100)
    exact = search_sheets("jardin", sort="updated", per_page=3)
    assert exact["total_is_estimate"] is False and exact["total"] == 12
    assert [i["title"] for i in result["items"]] == [i["title"] for i in exact["items"]]


def test_the_api_and_the_page_say_estimated(app: Flask, client: FlaskClient,
                                            gardens: list[Revision]) -> None:
    body = client.get("/api/v1/search?q=jardin").json
    assert body["total_is_estimate"] is True
    assert isinstance(body["total"], int) and body["total"] >= 5  # the field keeps its type
    exact = client.get("/api/v1/search?q=voisins").json
    assert exact["total_is_estimate"] is False and exact["total"] == 1
    page = client.get("/recherche?q=jardin").get_data(as_text=True)
    assert "environ" in page
    assert "environ" not in client.get("/recherche?q=voisins").get_data(as_text=True)


def test_estimates_are_rounded_and_never_below_the_sample() -> None:
    assert estimate(1001, 0.0143) == 70_000
    assert estimate(1001, 1.0) == 1001
    assert estimate(5, 0.5) == 10


def test_a_new_backend_whose_first_read_is_a_search_answers(app: Flask,
                                                            gardens: list[Revision]) -> None:
    """Regression (PostgreSQL, CI): the index checks of a backend's first read opened a
    transaction, and the search's own begin() then failed."""
    from kb.search import service

    fresh = type(service.get_backend())()  # nothing read yet: the checks run in this search
    app.extensions["kb_search"] = fresh
    # No words (a follow of a territory): nothing else reads the index before the search.
    result = search_sheets("", {"department": "44"})
    assert not result["unavailable"] and len(result["items"]) == 4


def test_postgresql_matches_a_phrase_once_when_every_match_is_counted(
        app: Flask, gardens: list[Revision], make_sheet: Callable[..., Revision]) -> None:
    """A phrase rechecks every vector holding its words: the counts read the matches, and the
    page ranks those rows rather than matching again."""
    if app.config["KB_SEARCH_BACKEND"] != "postgres":
        pytest.skip("PostgreSQL's own search")
    from sqlalchemy import event

    from kb.extensions import db

    make_sheet(**plain(title="Atelier", context="Un jardin partagé et un verger."))
    matching: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "d.tsv @@" in statement:
            matching.append(statement)

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        result = search_sheets('"jardin partagé et un verger"')
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    assert result["total"] == 1 and result["total_is_estimate"] is False
    assert [item["title"] for item in result["items"]] == ["Atelier"]
    assert len(matching) == 1
