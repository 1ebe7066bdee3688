"""Registering for a visit from the sheet page, in a real browser on a real server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

import kb.models  # noqa: F401
from kb import create_app
from kb.auth.operations import create_user
from kb.extensions import db
from kb.sheets import operations
from kb.timeutil import isoformat, utcnow
from kb.transaction import commit
from kb.visits import operations as visits
from tests.conftest import sheet_data
from tests.test_browser import CHROMIUM, _serve
from tests.test_browser import browser as browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser
PASSWORD = "mot-de-passe-solide"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium absent ({CHROMIUM})")
    tmp = tmp_path_factory.mktemp("visits")
    app = create_app({
        "SECRET_KEY": "browser-visits", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/kb.sqlite3",
        "KB_INDEX_DIR": str(tmp / "index"), "RATELIMIT_ENABLED": False,
    })
    server, base = _serve(app)
    app.config["KB_BASE_URL"] = base
    with app.app_context():
        db.create_all()
        host = create_user("hote@example.org", PASSWORD, "moderator", "Hélène Hôte")
        create_user("pro@example.org", PASSWORD, "contributor", "Paula Pro")
        commit()
        sheet = operations.create_sheet(sheet_data(), host).sheet
        commit()
        campaign = visits.create_campaign(host, {
            "name": "Parcours Finistère", "starts_on": "2026-01-01T00:00:00",
            "ends_on": "2031-01-01T00:00:00", "department": "29"})
        start = utcnow() + timedelta(days=12)
        slot = visits.create_slot(sheet, host, {"campaign_id": campaign.id,
            "starts_at": isoformat(start), "ends_at": isoformat(start + timedelta(hours=2)),
            "place": "2 rue de Siam, 29200 Brest", "capacity": 5, "min_participants": 3,
            "host_name": "Hélène Hôte", "host_phone": "02 98 00 00 00",
            "accessibility": "Accès de plain-pied"})
        commit()
        yield {"base": base, "app": app, "slug": sheet.slug, "slot_id": slot.id,
               "campaign": campaign.slug}
    server.shutdown()


def test_a_professional_registers_from_the_sheet_page(site, browser):
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(f"{site['base']}/connexion")
    page.fill("#email", "pro@example.org")
    page.fill("#password", PASSWORD)
    page.click("form.narrow button[type=submit]")
    page.wait_for_url(lambda url: "/connexion" not in url)

    page.goto(f"{site['base']}/fiches/{site['slug']}")
    block = page.locator("#visites")
    assert "Visiter cette initiative" in block.inner_text()
    page.fill(f"#phone-{site['slot_id']}", "06 12 34 56 78")
    page.click(f"#visite-{site['slot_id']} button[type=submit]")
    page.wait_for_load_state()

    assert "Vous êtes inscrit·e." in page.locator("#visites").inner_text()
    assert "4 places restantes" in page.locator("#visites").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    with site["app"].app_context():
        slot = visits.slot_or_404(site["slot_id"])
        [registration] = visits.registrations(slot)
        assert registration.user.email == "pro@example.org"
        assert registration.phone == "06 12 34 56 78"


def test_the_campaign_map_leads_to_its_slots_in_a_departement_without_breaking_the_csp(
        site, browser):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    page.goto(f"{site['base']}/visites")
    page.click("text=Les parcours de visites")
    page.click("text=Parcours Finistère")
    assert page.locator("svg.choropleth").is_visible()
    page.click("svg.choropleth a[href*='territory=29'] path")
    page.wait_for_url(lambda url: "territory=29" in url)
    assert page.locator(f"#visite-{site['slot_id']}").is_visible()
    assert page.locator("#territory").input_value() == "29"
    assert not [m for m in messages if "Content Security Policy" in m], messages


@pytest.mark.parametrize("path", ["/visites", "/parcours/{campaign}"])
def test_on_a_phone_the_first_slot_is_on_the_first_screen_and_the_filters_one_tap_away(
        site, browser, path):
    page = browser.new_page(viewport={"width": 375, "height": 800})
    page.goto(site["base"] + path.format(campaign=site["campaign"]))
    slot = page.locator(f"#visite-{site['slot_id']}").bounding_box()
    assert slot is not None and slot["y"] < 800  # the answer, not three screens of filters
    assert not page.locator("#territory").is_visible()
    page.click("text=Filtrer par date, département ou format")
    assert page.locator("#territory").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
