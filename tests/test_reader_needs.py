"""Issue 25, "Results that answer a need": one result card everywhere, a territory search with
no result is no dead end, "Vouliez-vous dire" only when it helps."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape

import pytest
from flask.testing import FlaskClient

from kb.search.service import search_sheets
from kb.sheets.models import Revision
from tests.conftest import sheet_data


def main(response) -> str:
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.fixture
def needs(make_sheet: Callable[..., Revision]) -> dict[str, Revision]:
    return {
        "perpignan": make_sheet(**sheet_data(
            title="Mobilité solidaire à Perpignan", city="Perpignan", department="66",
            tags=["mobilité"], context="Un garage solidaire et des prêts de voitures.")),
        "montpellier": make_sheet(**sheet_data(
            title="Crèche à vocation d'insertion à Montpellier", city="Montpellier",
            department="34", tags=["garde d'enfants"],
            context="La garde d'enfants pour les parents en reprise d'emploi.")),
        "brest": make_sheet(**sheet_data(
            title="Garde d'enfants en horaires décalés à Brest", city="Brest", department="29",
            tags=["garde d'enfants"], context="La garde d'enfants la nuit, pour l'insertion.")),
    }


# --- one card for every listing ------------------------------------------------------------

def test_search_cards_say_where_at_which_scale_and_when(client: FlaskClient, needs) -> None:
    page = unescape(main(client.get("/recherche", query_string={"q": "mobilité"})))
    card = page[page.index("Mobilité solidaire à Perpignan"):]
    card = card[:card.index("</article>")]
    assert "Lieu : Perpignan, Pyrénées-Orientales (66)" in card
    assert "Échelle : commune" in card
    assert "Mise à jour le " in card
    assert 'class="snippet"' in card, "the search's snippet stays on its card"


@pytest.mark.parametrize("url", ["/", "/fiches", "/territoires/66"])
def test_every_listing_shows_the_same_card(client: FlaskClient, needs, url: str) -> None:
    page = unescape(main(client.get(url, follow_redirects=True)))
    assert "Lieu : Perpignan" in page and "Mise à jour le " in page


# --- no dead end ---------------------------------------------------------------------------

def test_nothing_in_the_departement_offers_the_region_then_france(client: FlaskClient,
                                                                    needs) -> None:
    result = search_sheets("garde d'enfants", {"department": "66"})
    assert result["total"] == 0
    assert [(o["scope"], o["total"]) for o in result["elsewhere"]] == [
        ("en Occitanie", 1), ("dans toute la France", 2)]
    page = unescape(main(client.get("/recherche", query_string={
        "q": "garde d'enfants", "department": "66"})))
    assert re.search(r"« garde d'enfants » en Occitanie</a> : 1 fiche\b", page)
    assert re.search(r"« garde d'enfants » dans toute la France</a> : 2 fiches", page)
    assert 'href="/recherche?q=garde+d%27enfants&amp;region=76"' in main(client.get(
        "/recherche", query_string={"q": "garde d'enfants", "department": "66"}))


def test_the_sort_stays_relevance_after_a_territory_listing(client: FlaskClient, needs) -> None:
    """The territory page's "y chercher" opens /recherche?department=66 without words: its form
    must not send sort=updated with the words typed next."""
    page = main(client.get("/recherche", query_string={"department": "66"}))
    assert re.search(r'<option value="relevance" selected>', page)
    assert search_sheets("", {"department": "66"})["items"], "still lists the newest"


def test_a_word_no_sheet_has_is_offered_away_with_its_count(client: FlaskClient, needs) -> None:
    result = search_sheets("garde Lille")
    offer = result["elsewhere"][-1]
    assert (offer["q"], offer["scope"], offer["total"]) == ("garde", "sans « Lille »", 2)
    page = unescape(main(client.get("/recherche", query_string={"q": "garde Lille"})))
    assert "« garde » sans « Lille »</a> : 2 fiches" in page


def test_results_worth_showing_get_no_elsewhere(needs) -> None:
    assert search_sheets("garde d'enfants")["elsewhere"] == []


# --- "Vouliez-vous dire" -------------------------------------------------------------------

def test_no_suggestion_of_a_mere_inflection(make_sheet: Callable[..., Revision]) -> None:
    make_sheet(**sheet_data(title="Auto-école sociale", tags=["mobilité"],
                            context="Passer le permis de conduite accompagné."))
    make_sheet(**sheet_data(title="Halte-garderie", context="Garde d'enfant ponctuelle."))
    assert search_sheets("permis de conduire")["suggestion"] is None
    assert search_sheets("garde d'enfants")["suggestion"] is None


def test_no_suggestion_when_the_query_has_results(make_sheet: Callable[..., Revision]) -> None:
    make_sheet(**sheet_data(title="Accompagnement vers l'emploi", context="Un accompagnement."))
    make_sheet(**sheet_data(title="Accompagnements numériques", context="Des accompagnements."))
    # Both words are known; "accompagnements" has results of its own: no second guess.
    assert search_sheets("accompagnements")["suggestion"] is None


def test_a_real_typo_is_still_corrected(make_sheet: Callable[..., Revision]) -> None:
    make_sheet(**sheet_data(title="Accompagnement vers l'emploi", context="Un accompagnement."))
    assert search_sheets("acompagnement")["suggestion"] == "accompagnement"


def test_territory_page_shows_sheets_first_and_folds_empty_rows(client: FlaskClient,
                                                                 needs) -> None:
    page = main(client.get("/territoires/66", follow_redirects=True))
    assert page.index('id="sheets-title"') < page.index('id="by-scale"')
    assert page.index('id="sheets-title"') < page.index('id="children-title"')
    children = page[page.index('id="children-title"'):]
    children = children[:children.index("</section>")]
    table, folded = children.split('<details class="empty-rows">')
    assert "Perpignan Méditerranée" in table and table.count("<tr>") == 2  # head + one row
    assert re.search(r"<summary>\d+ sans fiche</summary>", folded)


def test_a_corrected_typo_is_no_dead_end(needs) -> None:
    result = search_sheets("solidair", {"department": "66"})
    assert result["total"] == 1 and result["elsewhere"] == []
