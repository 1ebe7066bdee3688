"""Measured results in a real browser (issue 26): the sheet's results block, /resultats and
the comparison view pass axe-core with no serious or critical finding, fit a phone's width,
and each chart has its text equivalent (its accessible name, and the same words shown)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
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
from tests.test_browser_pages import (
    AXE_JS,
    DESKTOP,
    LONG_WORD,
    PASSWORD,
    PHONE,
    _axe,
    _login,
    _skip_or_fail,
)
from tests.test_indicators import POSITIVE, QPV, SATISFACTION

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ.get("KB_SHOTS_DIR", "")) if os.environ.get("KB_SHOTS_DIR") else None


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    if not os.path.exists(CHROMIUM):
        _skip_or_fail(f"Chromium absent ({CHROMIUM})")
    tmp = tmp_path_factory.mktemp("results")
    app = create_app({
        "SECRET_KEY": "browser-results", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/kb.sqlite3",
        "KB_INDEX_DIR": str(tmp / "index"), "RATELIMIT_ENABLED": False,
    })
    server, base = _serve(app)
    app.config["KB_BASE_URL"] = base
    with app.app_context():
        db.create_all()
        modo = create_user("modo@example.org", PASSWORD, "moderator", "Modo")
        create_user("contrib@example.org", PASSWORD, "contributor", "Contrib")
        commit()
        qpv = operations.create_sheet(sheet_data(**QPV, indicators=[POSITIVE, SATISFACTION]),
                                      modo).sheet
        garage = operations.create_sheet(sheet_data(
            title=f"Garage solidaire {LONG_WORD[:60]}", indicators=[
                {**POSITIVE, "label": f"Retour à l'emploi {LONG_WORD[:80]}", "value": 41,
                 "target": None, "population_n": 60, "source_type": "bilan-interne"}]),
            modo).sheet
        commit()
        slugs = {"qpv": qpv.slug, "garage": garage.slug}
        db.session.remove()
    yield {"base": base, **slugs}
    server.shutdown()
    with app.app_context():
        db.engine.dispose()


def _urls(site: dict[str, str]) -> dict[str, list[str]]:
    return {"": [f"/fiches/{site['qpv']}", "/resultats?kind=sorties-positives",
                 f"/resultats/comparer?fiches={site['qpv']},{site['garage']}"],
            "contrib@example.org": [f"/fiches/{site['qpv']}/modifier"]}


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["ordinateur", "telephone"])
def test_results_pages_pass_axe_and_fit_the_screen(site, browser, viewport):
    if not AXE_JS.is_file():
        _skip_or_fail(f"axe-core absent ({AXE_JS})")
    found: dict[str, Any] = {}
    for who, urls in _urls(site).items():
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        if who:
            _login(page, site["base"], who)
        for url in urls:
            response = page.goto(site["base"] + url)
            assert response is not None and response.status == 200, url
            if SHOTS is not None:
                name = url.strip("/").split("?")[0].replace("/", "_") or "index"
                target = page.locator("#indicators") if url.endswith("/modifier") else page
                target.screenshot(path=str(SHOTS / f"i26-{name}-{viewport['width']}.png"),
                                  **({} if url.endswith("/modifier") else {"full_page": True}))
            violations = _axe(page)
            widths = page.evaluate("() => [document.documentElement.scrollWidth, "
                                   "window.innerWidth]")
            if violations or widths[0] > widths[1]:
                found[url] = (violations, widths)
        context.close()
    assert not found, found


def test_each_chart_has_its_text_equivalent_without_javascript(site, browser):
    context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{site['base']}/fiches/{site['qpv']}")
    charts = page.locator("section.results svg[role=img]")
    assert charts.count() == 2
    for index in range(2):
        chart = charts.nth(index)
        name = chart.get_attribute("aria-label") or ""
        assert name and chart.bounding_box()["width"] > 100
        # The same figures are written next to the chart.
        shown = chart.locator("xpath=..").inner_text()
        value = name.split(" : ")[1].split(",")[0] if index else name.split(" : ")[1][:4]
        assert value in shown, (name, shown)
    page.goto(f"{site['base']}/resultats?kind=sorties-positives")
    plot = page.locator("svg.dot-plot[role=img]")
    assert "2 valeurs" in (plot.get_attribute("aria-label") or "")
    assert page.locator("table tbody tr").count() == 2
    context.close()
