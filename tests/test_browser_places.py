"""The commune autocomplete of the sheet form in a real browser (Chromium via Playwright):
usable with the keyboard alone, and the form still works with JavaScript off."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

import kb.models  # noqa: F401
from kb import create_app
from kb.auth.operations import create_user
from kb.extensions import db
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, _serve

pytestmark = pytest.mark.browser
EMAIL, PASSWORD = "modo@example.org", "mot-de-passe-solide"


@pytest.fixture
def site(tmp_path: Any) -> Iterator[str]:
    if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
        pytest.skip(f"Chromium absent ({CHROMIUM}) : apt-get install chromium (make test l'installe)")
    app = create_app({
        "SECRET_KEY": "browser-test", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/kb.sqlite3",
        "KB_INDEX_DIR": str(tmp_path / "index"), "RATELIMIT_ENABLED": False,
    })
    server, base = _serve(app)
    app.config["KB_BASE_URL"] = base
    with app.app_context():
        db.create_all()
        create_user(EMAIL, PASSWORD, "moderator", "Modo")
        db.session.commit()
        db.session.remove()
    yield base
    server.shutdown()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _log_in(page: Any, base: str) -> None:
    page.goto(f"{base}/connexion")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]:has-text('Se connecter')")
    page.wait_for_url(f"{base}/")


def test_the_commune_autocomplete_works_with_the_keyboard_alone(site: str, browser: Any) -> None:
    page = browser.new_page()
    _log_in(page, site)
    page.goto(f"{site}/fiches/nouvelle")
    page.fill("#title", "Espace numérique en mairie de Saint-Denis")
    city = page.locator("#city")
    assert city.get_attribute("role") == "combobox"
    assert city.get_attribute("aria-expanded") == "false"
    city.focus()
    page.keyboard.type("Saint-Den", delay=30)
    listbox = page.get_by_role("listbox", name="Communes proposées")
    listbox.wait_for(state="visible")
    assert city.get_attribute("aria-expanded") == "true"
    options = listbox.get_by_role("option")
    assert options.nth(0).inner_text().startswith("Saint-Denis (974)")
    assert options.nth(1).inner_text().startswith("Saint-Denis (93)")
    assert "propositions" in page.locator(".combobox [role=status]").first.inner_text()

    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    active = city.get_attribute("aria-activedescendant")
    assert active and page.locator(f"#{active}").get_attribute("aria-selected") == "true"
    assert page.locator(f"#{active}").inner_text().startswith("Saint-Denis (93)")
    page.keyboard.press("Enter")  # chooses; does not send the form
    assert city.input_value() == "Saint-Denis"
    assert page.locator("#commune_code").input_value() == "93066"
    assert page.locator("#department").input_value() == "93"
    assert page.locator("#region").input_value() == "11"
    assert city.get_attribute("aria-expanded") == "false" and listbox.is_hidden()
    assert page.url.endswith("/fiches/nouvelle")

    # Escape closes the list without choosing; typing again forgets the earlier choice.
    city.fill("")
    page.keyboard.type("Quimp", delay=30)
    listbox.wait_for(state="visible")
    page.keyboard.press("Escape")
    assert listbox.is_hidden() and page.locator("#commune_code").input_value() == ""
    page.keyboard.press("ArrowDown")
    listbox.wait_for(state="visible")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert page.locator("#commune_code").input_value() == "29232"

    page.click("button[type=submit]:has-text('Envoyer la fiche')")
    page.wait_for_url("**/fiches/espace-numerique-en-mairie-de-saint-denis**")
    facts = page.locator(".sheet-facts").inner_text()
    assert "Quimper" in facts and "Finistère (29)" in facts and "Bretagne" in facts


def test_without_javascript_the_form_asks_which_commune(site: str, browser: Any) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    _log_in(page, site)
    page.goto(f"{site}/fiches/nouvelle")
    assert page.locator("#city").get_attribute("role") is None  # a plain text field
    page.fill("#title", "Espace numérique en mairie de Saint-Denis")
    page.fill("#city", "Saint-Denis")
    page.click("button[type=submit]:has-text('Envoyer la fiche')")
    choices = page.get_by_role("group", name="Plusieurs communes s'appellent « Saint-Denis » : "
                                             "laquelle est-ce ?")
    assert choices.get_by_role("radio").count() == 4
    # Keyboard only: into the group, then arrows between its radio buttons.
    choices.get_by_role("radio").first.focus()
    page.keyboard.press("Space")
    page.keyboard.press("ArrowDown")
    assert choices.get_by_label("Saint-Denis (93)", exact=False).is_checked()
    page.click("button[type=submit]:has-text('Envoyer la fiche')")
    page.wait_for_url("**/fiches/espace-numerique-en-mairie-de-saint-denis**")
    facts = page.locator(".sheet-facts").inner_text()
    assert "Saint-Denis" in facts and "Seine-Saint-Denis (93)" in facts
    context.close()
