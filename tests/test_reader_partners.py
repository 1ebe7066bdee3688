"""Issue 25, "Partner sites and search engines": the configurator says plainly to prefer the
script, lists every département and région, list widgets say how recent each sheet is, and
every page has a <meta name="description">."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape

import pytest
from flask.testing import FlaskClient

from kb.sheets.models import Revision
from kb.timeutil import utcnow
from kb.transaction import commit
from tests.conftest import sheet_data


def text(response) -> str:
    assert response.status_code == 200, response.status_code
    return unescape(response.get_data(as_text=True))


def description(page: str) -> str:
    found = re.findall(r'<meta name="description" content="([^"]*)">', page)
    assert len(found) == 1, "one description per page"
    return found[0]


def test_configurator_says_to_prefer_the_script(client: FlaskClient, make_sheet) -> None:
    make_sheet()
    page = text(client.get("/embed?mode=list"))
    assert "Préférez le code avec le script." in page
    assert "hauteur fixe (480 px)" in page and "la liste est coupée" in page


def test_configurator_lists_every_departement_and_region(client: FlaskClient,
                                                         make_sheet) -> None:
    make_sheet()  # one sheet, in the Finistère
    page = text(client.get("/embed?mode=list"))
    departments = page[page.index('<select id="department"'):]
    departments = departments[:departments.index("</select>")]
    assert "Pyrénées-Orientales (66) (0)" in departments
    assert "Finistère (29) (1)" in departments
    assert departments.count("<option") >= 101 + 1  # every département, and "Tous"
    regions = page[page.index('<select id="region"'):]
    regions = regions[:regions.index("</select>")]
    assert "Occitanie (0)" in regions and regions.count("<option") >= 18 + 1


def test_list_widget_shows_update_date_and_freshness(client: FlaskClient,
                                                     make_sheet: Callable[..., Revision]) -> None:
    fresh = make_sheet(**sheet_data(title="Fiche relue")).sheet
    stale = make_sheet(**sheet_data(title="Fiche ancienne")).sheet
    stale.last_reviewed_at = utcnow().replace(year=utcnow().year - 3)
    commit()
    page = text(client.get("/embed/list?tag=accueil"))
    items = {title: page[page.index(title):][:800] for title in ("Fiche relue", "Fiche ancienne")}
    assert "Mise à jour le " in items["Fiche relue"] and "à jour</span>" in items["Fiche relue"]
    assert "à actualiser</span>" in items["Fiche ancienne"]
    assert fresh.id and stale.id


# --- meta description --------------------------------------------------------------------------

def test_a_sheet_is_described_by_its_summary(client: FlaskClient, make_sheet) -> None:
    sheet = make_sheet(**sheet_data(summary="Un garage solidaire pour les personnes au RSA.")).sheet
    page = text(client.get(f"/fiches/{sheet.slug}"))
    assert description(page) == "Un garage solidaire pour les personnes au RSA."


def test_a_listing_is_described_by_its_filters_in_words(client: FlaskClient, make_sheet) -> None:
    make_sheet()
    page = text(client.get("/fiches?department=29&scale=commune"))
    said = description(page)
    assert "1 fiche" in said and "Finistère (29)" in said and "commune" in said.lower()
    search = description(text(client.get("/recherche?q=accueil&department=29")))
    assert "« accueil »" in search and "Finistère (29)" in search


@pytest.mark.parametrize("url", ["/", "/territoires", "/connexion", "/embed", "/donnees"])
def test_other_pages_have_the_site_description(client: FlaskClient, make_sheet, url) -> None:
    make_sheet()
    assert description(text(client.get(url))).startswith("Une base ouverte de pratiques")
