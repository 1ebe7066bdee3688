"""Issue 25's journeys, each one Playwright test in Chromium on a real server: a contributor
publishes, edits twice and finds one row in "Mes contributions"; a moderator reviews a sheet
together with the similar sheet its author was warned about. Both at 375 px (no page wider
than the screen). With KB_SHOTS_DIR set, screenshots at 375 and 1280 px are written there."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import kb.models  # noqa: F401
from kb import create_app
from kb.auth.operations import create_user
from kb.duplicates.models import DuplicateCandidate
from kb.extensions import db
from kb.sheets import operations
from kb.transaction import commit
from tests.test_browser import CHROMIUM, _serve
from tests.test_browser import browser as browser  # noqa: F401 - the fixture
from tests.test_duplicates import BREST, REWORDED, SAME_CITY

pytestmark = pytest.mark.browser
PASSWORD = "mot-de-passe-solide"
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}
SHOTS = os.environ.get("KB_SHOTS_DIR", "")


@pytest.fixture
def site(tmp_path: Any) -> Iterator[tuple[Any, str]]:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium absent ({CHROMIUM})")
        pytest.skip(f"Chromium absent ({CHROMIUM}) : apt-get install chromium")
    app = create_app({
        "SECRET_KEY": "browser-journeys", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/kb.sqlite3",
        "KB_INDEX_DIR": str(tmp_path / "index"), "RATELIMIT_ENABLED": False,
    })
    server, base = _serve(app)
    with app.app_context():
        db.create_all()
        moderator = create_user("modo@example.org", PASSWORD, "moderator", "Marc Modo")
        create_user("claire@example.org", PASSWORD, "contributor", "Claire")
        operations.create_sheet(BREST, moderator)
        commit()
        db.session.remove()
    yield app, base
    server.shutdown()
    with app.app_context():
        db.engine.dispose()


def _login(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/connexion")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(lambda url: "/connexion" not in url)


def _fits(page: Any) -> None:
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], (page.url, widths)


def _shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def _send(page: Any) -> None:
    page.click("#partie-envoi button[type=submit]:not([formaction])")


def test_publish_edit_twice_and_see_one_row_in_mes_contributions(site, browser):
    app, base = site
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    _login(page, base, "claire@example.org")
    page.goto(f"{base}/fiches/nouvelle")
    page.fill("#title", "Navette solidaire vers l'emploi à Prades")
    page.fill("#summary", "Une navette pour les personnes sans voiture vers leurs entretiens.")
    page.fill("#context", "Peu de bus **entre les villages** et la ville.")
    _send(page)
    page.wait_for_url(re.compile(r"/fiches/navette-solidaire"))
    address = page.url.split("?")[0]
    for text in ("Douze trajets par semaine.", "Vingt trajets par semaine, deux chauffeurs."):
        page.goto(address + "/modifier")
        page.fill("#results", text)
        _send(page)
        page.wait_for_url(re.compile(r"revision="))
        assert text in page.inner_text("main")

    page.goto(f"{base}/mes-fiches")
    rows = page.locator("li.contribution")
    assert rows.count() == 1
    assert "en attente de relecture" in rows.first.inner_text().lower()
    details = rows.first.locator("details")
    assert "3 révisions" in details.locator("summary").inner_text()
    assert not details.locator("ol").is_visible()  # folded
    details.locator("summary").click()
    assert details.locator("ol li").count() == 3
    assert details.locator("ol").inner_text().count("remplacée par une proposition suivante") == 2
    _fits(page)
    _shot(page, "mes-contributions-375")
    page.set_viewport_size(DESKTOP)
    _shot(page, "mes-contributions-1280")

    # A colleague given the link: "en cours de relecture", nothing of the sheet.
    other = browser.new_context(viewport=PHONE).new_page()
    response = other.goto(address)
    assert response is not None and response.status == 200
    assert "en cours de relecture" in other.inner_text("main")
    assert "Navette" not in other.inner_text("body")
    _fits(other)
    _shot(other, "en-cours-de-relecture-375")
    other.context.close()
    context.close()


def _fill(page: Any, data: dict[str, Any]) -> None:
    for name, value in data.items():
        if page.locator(f"select#{name}").count():
            page.select_option(f"#{name}", value)
        elif page.locator(f"#{name}").count():
            page.fill(f"#{name}", "\n".join(value) if isinstance(value, list) else value)


def test_review_one_sheet_together_with_the_similar_sheet_its_author_was_warned_about(
        site, browser):
    app, base = site
    writer = browser.new_context(viewport=PHONE).new_page()
    _login(writer, base, "claire@example.org")
    writer.goto(f"{base}/fiches/nouvelle")
    _fill(writer, REWORDED)  # close to the published Brest sheet: warned, confirmation shown
    first = writer.locator("#similar-sheets li").first
    first.wait_for(timeout=10_000)
    warned = int(re.search(r"ressemblance (\d+)", first.inner_text()).group(1))
    assert warned >= 40 and writer.locator("#distinct-confirmation").is_visible()
    # The writer rewrites it until the score falls under the confirmation threshold, and sends.
    _fill(writer, {**SAME_CITY, "title": "Accueil numérique en mairie de Brest"})
    writer.wait_for_function(
        "() => { const m = document.querySelector('#similar-sheets li');"
        " return m && /ressemblance ([0-3]?\\d)\\s/.test(m.textContent); }", timeout=10_000)
    _send(writer)
    writer.wait_for_url(re.compile(r"/fiches/accueil-numerique"))
    writer.context.close()
    with app.app_context():
        pair = db.session.scalar(select(DuplicateCandidate))
        assert pair is not None and round(pair.score * 100) == warned

    for viewport, suffix in ((PHONE, "375"), (DESKTOP, "1280")):
        page = browser.new_context(viewport=viewport).new_page()
        _login(page, base, "modo@example.org")
        page.goto(f"{base}/moderation")
        assert re.search(r"Modération\s*1", page.inner_text("header"))
        _fits(page)
        _shot(page, f"file-de-relecture-{suffix}")
        page.click("text=Accueil numérique en mairie de Brest")
        page.wait_for_url(re.compile(r"/moderation/revisions/\d+"))
        warning = page.locator(".duplicate-warning")
        assert f"{warned} %" in warning.inner_text().replace("\u202f", " ").replace("\xa0", " ")
        assert BREST["title"] in warning.inner_text()
        assert page.locator("button[form=approve-form]").is_visible()
        _fits(page)
        _shot(page, f"relecture-{suffix}")
        page.context.close()

    page = browser.new_context(viewport=PHONE).new_page()
    _login(page, base, "modo@example.org")
    page.goto(f"{base}/moderation")
    page.click("text=Accueil numérique en mairie de Brest")
    page.click("text=Comparer les deux fiches")
    page.wait_for_url(re.compile(r"/moderation/doublons/\d+"))
    assert BREST["title"] in page.inner_text("main")
    _fits(page)
    page.go_back()
    page.click("button[form=approve-form]")  # the decision at the top of the page
    page.wait_for_url(re.compile(r"/moderation$"))
    assert "approuvée" in page.inner_text("main")
    page.context.close()
