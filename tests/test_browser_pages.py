"""The main pages in a real browser (Chromium via Playwright), on a real server.

- On a phone (390 px), no page is wider than the screen, even with a 184-character word in
  titles, names and texts.
- axe-core finds no serious or critical accessibility violation.
- The sheet form's scripts: live counts, Markdown preview, the draft kept until sent.

axe-core comes from the npm registry (`make test` installs it in .venv/axe); KB_AXE_JS may
point at another copy of axe.min.js.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import kb.models  # noqa: F401
from kb import create_app
from kb.auth.operations import create_user
from kb.duplicates.operations import add_candidate
from kb.extensions import db
from kb.moderation import operations as moderation
from kb.sheets import operations
from kb.timeutil import utcnow
from kb.transaction import commit
from tests.conftest import sheet_data
from tests.test_browser import CHROMIUM, _serve
from tests.test_browser import browser as browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
AXE_JS = Path(os.environ.get("KB_AXE_JS") or ROOT / ".venv/axe/node_modules/axe-core/axe.min.js")
PASSWORD = "mot-de-passe-solide"
LONG_WORD = ("Expérimentationterritorialedel'accueilinconditionnel" * 4)[:184]
LONG_TITLE = f"Accueil {LONG_WORD} à Brest"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def _skip_or_fail(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    if not os.path.exists(CHROMIUM):
        _skip_or_fail(f"Chromium absent ({CHROMIUM}) : apt-get install chromium "
                      "(make test l'installe quand il a les droits root)")
    tmp = tmp_path_factory.mktemp("pages")
    app = create_app({
        "SECRET_KEY": "browser-pages", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/kb.sqlite3",
        "KB_INDEX_DIR": str(tmp / "index"), "RATELIMIT_ENABLED": False,
    })
    server, base = _serve(app)
    app.config["KB_BASE_URL"] = base
    with app.app_context():
        db.create_all()
        modo = create_user("modo@example.org", PASSWORD, "moderator", "Modo")
        contrib = create_user("contrib@example.org", PASSWORD, "contributor", LONG_WORD[:120])
        commit()
        long_data = sheet_data(
            title=LONG_TITLE, summary=f"Un résumé avec {LONG_WORD} dedans.",
            context=f"Le contexte : {LONG_WORD}.\n\n- une liste\n- `{LONG_WORD}`",
            actor_name=LONG_WORD, city=LONG_WORD[:120], partners=[LONG_WORD],
            website="https://example.org/" + LONG_WORD.lower().replace("'", ""),
            tags=["accueil", LONG_WORD[:60]])
        sheet = operations.create_sheet(long_data, modo).sheet
        other = operations.create_sheet(sheet_data(title="Médiation numérique à Quimper",
                                                   city="Quimper"), modo).sheet
        commit()
        # For the moderation pages: a pending edit and a pending new sheet with the long word,
        # a report, a journal entry, a duplicate pair, a sheet due for review.
        operations.edit_sheet(sheet, {"results": f"Des résultats {LONG_WORD}."}, contrib, None,
                              comment=f"Précision {LONG_WORD}")
        operations.create_sheet(sheet_data(title=f"{LONG_WORD} deuxième"), contrib)
        moderation.report_sheet(sheet, "outdated", f"Plus à jour : {LONG_WORD}", None, "198.51.100.7")
        add_candidate(sheet.id, other.id, 0.91, "create", reason=f"Autre lieu {LONG_WORD}", user=contrib)
        other.last_reviewed_at = utcnow().replace(year=utcnow().year - 3)
        commit()
        slug = sheet.slug
        db.session.remove()
    yield {"base": base, "slug": slug}
    server.shutdown()
    with app.app_context():
        db.engine.dispose()


def _login(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/connexion")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("form.narrow button[type=submit]")
    page.wait_for_url(lambda url: "/connexion" not in url)


def _pages(site: dict[str, str]) -> dict[str, list[str]]:
    """The pages to check, by who looks at them."""
    slug = site["slug"]
    return {
        "": ["/", "/recherche?q=accueil", "/recherche?q=zzzzzz", f"/fiches/{slug}",
             f"/fiches/{slug}/historique", "/connexion", "/inscription", "/fiches"],
        "contrib@example.org": ["/fiches/nouvelle", f"/fiches/{slug}/modifier", "/mes-fiches"],
        "modo@example.org": ["/moderation", "/moderation/signalements", "/moderation/journal",
                             "/moderation/utilisateurs", "/moderation/tableau-de-bord",
                             "/moderation/doublons", "/moderation/fraicheur", "/moderation/lieux"],
    }


WIDEST = """() => {
  const limit = window.innerWidth;
  return [...document.querySelectorAll('body *')]
    .map(el => [el, el.getBoundingClientRect()])
    .filter(([el, r]) => r.right > limit + 1)
    .slice(0, 5)
    .map(([el, r]) => `${el.tagName.toLowerCase()}.${el.className} right=${Math.round(r.right)}`);
}"""


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["telephone", "ordinateur"])
def test_no_page_is_wider_than_the_screen_with_long_words(site, browser, viewport):
    failures = []
    for who, urls in _pages(site).items():
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        if who:
            _login(page, site["base"], who)
        for url in urls:
            response = page.goto(site["base"] + url)
            assert response is not None and response.status == 200, url
            widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            if widths[0] > widths[1]:
                failures.append((url, widths, page.evaluate(WIDEST)))
        if who == "contrib@example.org":
            # The form with a long word typed in, refused (too long), errors shown.
            page.goto(site["base"] + "/fiches/nouvelle")
            page.fill("#title", LONG_TITLE + " et Morlaix")
            page.click("#partie-envoi button[type=submit]:not([formaction])")
            page.wait_for_selector(".error-summary")
            widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            if widths[0] > widths[1]:
                failures.append(("/fiches/nouvelle (refusée)", widths, page.evaluate(WIDEST)))
        context.close()
    assert not failures, failures


def _axe(page: Any) -> list[str]:
    # Evaluated through the DevTools protocol: a <script> tag would be refused by the site's
    # Content-Security-Policy (no inline script), which the audited pages must keep.
    page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    violations = page.evaluate("""async () => {
      const result = await axe.run(document, {resultTypes: ['violations']});
      return result.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
        .map(v => `${v.impact} ${v.id}: ${v.help} -> `
                  + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '));
    }""")
    return list(violations)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["ordinateur", "telephone"])
def test_axe_finds_no_serious_violation(site, browser, viewport):
    if not AXE_JS.is_file():
        _skip_or_fail(f"axe-core absent ({AXE_JS}) : make test l'installe depuis le registre npm "
                      "(npm install --prefix .venv/axe axe-core)")
    found = {}
    for who, urls in _pages(site).items():
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        if who:
            _login(page, site["base"], who)
        for url in urls:
            page.goto(site["base"] + url)
            violations = _axe(page)
            if violations:
                found[url] = violations
        context.close()
    assert not found, found


def test_the_form_counts_previews_and_keeps_the_draft_until_sent(site, browser):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    _login(page, site["base"], "contrib@example.org")
    page.goto(site["base"] + "/fiches/nouvelle")

    # Counts follow the typing; over the limit, the count says by how much.
    page.fill("#title", "Accueil des jeunes à Morlaix")
    assert page.inner_text("#title-count") == "28 / 200 caractères"
    page.fill("#summary", "x" * 505)
    assert page.inner_text("#summary-count") == "505 / 500 caractères : 5 de trop"
    page.fill("#summary", "Un accueil sans rendez-vous pour les 16-25 ans.")

    # The Markdown preview, rendered by the server, in place.
    page.fill("#context", "Un **constat** partagé :\n\n- peu de jeunes viennent\n- <b>brut</b>")
    page.click("button[aria-controls=context-preview]")
    page.wait_for_selector("#context-preview:not([hidden]) strong")
    preview = page.inner_html("#context-preview")
    assert "<strong>constat</strong>" in preview and "<li>peu de jeunes viennent</li>" in preview
    assert "<b>" not in preview

    # The page is lost before sending: the draft is offered back.
    page.wait_for_timeout(800)
    page.goto(site["base"] + "/fiches/nouvelle")
    assert page.input_value("#title") == ""
    page.get_by_role("button", name="Reprendre le brouillon").click()
    assert page.input_value("#title") == "Accueil des jeunes à Morlaix"
    assert "**constat**" in page.input_value("#context")
    assert page.inner_text("#title-count") == "28 / 200 caractères"

    # Sent and accepted: the draft is gone.
    page.click("#partie-envoi button[type=submit]:not([formaction])")
    page.wait_for_url(lambda url: "/fiches/accueil-des-jeunes-a-morlaix" in url)
    page.goto(site["base"] + "/fiches/nouvelle")
    assert page.get_by_role("button", name="Reprendre le brouillon").count() == 0
    assert page.evaluate("() => Object.keys(localStorage).filter(k => k.startsWith('kb-brouillon:'))") == []
    context.close()


def test_no_page_breaks_its_content_security_policy(site, browser):
    """Every page works under its script policy (kb/__init__.py SITE_POLICY, the embeds' own):
    the browser reports no refused script, style, image or frame."""
    slug = site["slug"]
    pages = _pages(site)
    pages[""] = [*pages[""], "/embed", f"/embed?sheet={slug}", "/embed?mode=list&tag=accueil",
                 f"/embed/sheets/{slug}", "/embed/list?tag=accueil", "/territoires", "/donnees"]
    refused: dict[str, list[str]] = {}
    messages: list[str] = []
    for who, urls in pages.items():
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        page.on("console", lambda message: messages.append(message.text))
        if who:
            _login(page, site["base"], who)
        for url in urls:
            messages.clear()
            response = page.goto(site["base"] + url)
            assert response is not None and response.status == 200, url
            assert "default-src 'self'" in response.headers["content-security-policy"] \
                or "default-src 'none'" in response.headers["content-security-policy"], url
            page.wait_for_load_state("networkidle")
            found = [m for m in messages if "Content Security Policy" in m]
            if found:
                refused[url] = found
        context.close()
    assert not refused, refused
