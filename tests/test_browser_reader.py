"""Issue 25 in a real browser, at 375 px: results first, whom to call first, and the first
journey — from the home page to a solution in a département — as one test."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

import kb.models  # noqa: F401
from kb import create_app
from kb.auth.operations import create_user
from kb.extensions import db
from kb.sheets import operations
from kb.transaction import commit
from tests.conftest import sheet_data
from tests.test_browser import CHROMIUM, _serve
from tests.test_browser import browser as browser  # noqa: F401 - the fixture
from tests.test_browser_pages import DESKTOP, PASSWORD, _skip_or_fail

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 812}
SHOTS = os.environ.get("KB_SHOTS_DIR")  # set to keep screenshots of the pages looked at


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    if not os.path.exists(CHROMIUM):
        _skip_or_fail(f"Chromium absent ({CHROMIUM}) : apt-get install chromium")
    tmp = tmp_path_factory.mktemp("reader")
    app = create_app({
        "SECRET_KEY": "browser-reader", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/kb.sqlite3",
        "KB_INDEX_DIR": str(tmp / "index"), "RATELIMIT_ENABLED": False,
    })
    server, base = _serve(app)
    app.config["KB_BASE_URL"] = base
    story = "\n\n".join(f"Paragraphe {n} : l'histoire du projet, ses étapes, ses partenaires."
                        for n in range(25))
    with app.app_context():
        db.create_all()
        team = create_user("equipe@example.org", PASSWORD, "moderator", "Équipe")
        create_user("lectrice@example.org", PASSWORD, "contributor", "Lectrice")
        commit()
        operations.create_sheet(sheet_data(
            title="Mobilité solidaire à Perpignan", city="Perpignan", department="66",
            tags=["mobilité"], context=story, method=story,
            summary="Un garage solidaire et des prêts de voitures.",
            contacts="Écrire à garage@perpignan-solidaire.fr ou appeler le 04 68 12 34 56."),
            team)
        operations.create_sheet(sheet_data(
            title="Crèche à vocation d'insertion à Montpellier", city="Montpellier",
            department="34", tags=["garde d'enfants"], context=story,
            summary="Des places de crèche pour les parents en reprise d'emploi.",
            contacts="Écrire à creche@montpellier-insertion.fr"), team)
        for n, (city, department) in enumerate([("Brest", "29"), ("Quimper", "29"),
                                                ("Rennes", "35"), ("Lyon", "69")]):
            operations.create_sheet(sheet_data(
                title=f"Garde d'enfants et mobilité {n} à {city}", city=city,
                department=department, tags=["garde d'enfants", "mobilité", f"réseau {n}"],
                actor_type=["commune", "association", "departement", "etat"][n]), team)
        commit()
        db.session.remove()
    yield {"base": base}
    server.shutdown()
    with app.app_context():
        db.engine.dispose()


def _shot(page: Any, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, name), full_page=False)


def _top(page: Any, selector: str) -> float:
    return page.evaluate(f"() => document.querySelector({selector!r}).getBoundingClientRect().top"
                         " + window.scrollY")


def test_search_shows_results_before_the_filters_on_a_phone(site, browser):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(site["base"] + "/recherche?q=mobilité")
    first, facets = _top(page, ".results .card"), _top(page, ".facets")
    assert first < facets
    assert first < PHONE["height"], f"first result at {first:.0f} px"
    card = page.inner_text(".results .card")
    assert "Lieu :" in card and "Échelle :" in card and "Mise à jour le" in card
    page.get_by_role("link", name="Affiner la liste").click()
    assert page.evaluate("() => location.hash") == "#facets-title"
    _shot(page, "recherche-375.png")
    context.close()


def test_territory_page_shows_its_sheets_before_its_tables(site, browser):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(site["base"] + "/territoires/66")
    first = _top(page, "#sheets-title ~ .card")
    assert first < _top(page, "#by-scale") and first < _top(page, "#children-title")
    assert first < PHONE["height"], f"first sheet at {first:.0f} px"
    # The intercommunalités without a sheet are folded.
    assert page.locator("#children-title ~ details.empty-rows").count() == 1
    assert not page.locator("#children-title ~ details.empty-rows li").first.is_visible()
    _shot(page, "territoire-375.png")
    context.close()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["telephone", "ordinateur"])
def test_whom_to_call_is_in_the_first_screen(site, browser, viewport):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.goto(site["base"] + "/recherche?q=Perpignan")
    page.get_by_role("link", name="Mobilité solidaire à Perpignan").click()
    box = page.locator(".contact-box").bounding_box()
    assert box is not None and box["y"] < viewport["height"], box
    if viewport is DESKTOP:
        assert box["x"] > viewport["width"] / 2, "in the side column"
    assert page.locator('.contact-box a[href="mailto:garage@perpignan-solidaire.fr"]').count() == 1
    assert page.locator('.contact-box a[href="tel:0468123456"]').count() == 1
    _shot(page, f"fiche-{viewport['width']}.png")
    context.close()


def test_journey_from_the_home_page_to_a_solution_in_a_departement(site, browser):
    """A RSA référent in the Pyrénées-Orientales looks for childcare for a person."""
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    base = site["base"]
    page.goto(base + "/")
    # The département, from the home page's table of counts.
    page.locator(".map-table").get_by_role("link", name="Pyrénées-Orientales (66)").click()
    page.wait_for_url(re.compile(r"/territoires/66"))
    page.get_by_role("link", name="y chercher").click()
    page.fill("#q-page", "garde d'enfants")
    page.locator("form.search-box-large button[type=submit]").click()
    page.wait_for_url(re.compile(r"q=garde"))
    # Nothing in the 66, ranked by relevance still; the région and France are offered.
    assert page.input_value("#sort") == "relevance"
    offers = page.locator(".elsewhere li")
    assert offers.nth(0).inner_text() == "« garde d'enfants » en Occitanie : 1 fiche"
    assert re.fullmatch(r"« garde d'enfants » dans toute la France : \d+ fiches",
                        offers.nth(1).inner_text())
    assert "Vouliez-vous dire" not in page.inner_text("main")
    offers.nth(0).get_by_role("link").click()
    page.wait_for_url(re.compile(r"region=76"))
    card = page.locator(".results .card").first
    assert "Lieu : Montpellier, Hérault (34)" in card.inner_text()
    card.get_by_role("link").first.click()
    page.wait_for_url(re.compile(r"/fiches/creche"))
    contact = page.locator(".contact-box")
    box = contact.bounding_box()
    assert box is not None and box["y"] < PHONE["height"]
    assert contact.locator('a[href="mailto:creche@montpellier-insertion.fr"]').count() == 1
    # Asking the team without an account: the login page says why, then comes back.
    contact.get_by_role("link", name="Poser une question à l'équipe").click()
    page.wait_for_url(re.compile(r"/connexion"))
    assert "Pour poser une question à l'équipe de cette fiche" in page.inner_text("main")
    page.fill("#email", "lectrice@example.org")
    page.fill("#password", PASSWORD)
    page.click("form.narrow button[type=submit]")
    page.wait_for_url(re.compile(r"/questions/nouvelle"))
    context.close()
