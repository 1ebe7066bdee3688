"""The two-line snippet on a partner page of another origin, in a real browser (Chromium).

The app runs on a real server (werkzeug, SQLite file), the partner page on another port of
127.0.0.1 (another origin). Chromium is the Debian package: Playwright cannot download browsers.
"""

from __future__ import annotations

import html
import os
import re
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

import kb.models  # noqa: F401
from kb import create_app
from kb.auth.operations import create_user
from kb.extensions import db
from kb.sheets import operations
from tests.conftest import sheet_data

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LONG_SUMMARY = ("Un accueil repensé avec les agents et les usagers, des prototypes testés neuf "
                "mois, une signalétique refaite et des guichets adaptés aux remarques des agents. ")


def _serve(wsgi_app: Any) -> tuple[Any, str]:
    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own server
        return response.read().decode()


def _snippet(base: str, query: str) -> str:
    """The script snippet exactly as the configurator gives it to a partner."""
    page = _get(f"{base}/embed?{query}")
    match = re.search(r'<textarea id="snippet-script"[^>]*>(.*?)</textarea>', page, re.S)
    assert match, "no snippet on the configurator page"
    return html.unescape(match.group(1))


@pytest.fixture
def sites(tmp_path: Any) -> Iterator[dict[str, str]]:
    if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
        pytest.skip(f"Chromium absent ({CHROMIUM}) : apt-get install chromium (make test l'installe)")
    app = create_app({
        "SECRET_KEY": "browser-test", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/kb.sqlite3",
        "KB_INDEX_DIR": str(tmp_path / "index"), "RATELIMIT_ENABLED": False,
    })
    kb_server, kb_base = _serve(app)
    app.config["KB_BASE_URL"] = kb_base
    with app.app_context():
        db.create_all()
        moderator = create_user("modo@example.org", "mot-de-passe-solide", "moderator", "Modo")
        card = operations.create_sheet(sheet_data(summary=LONG_SUMMARY * 2), moderator).sheet
        for n, (city, department) in enumerate((("Quimper", "29"), ("Nantes", "44"),
                                                 ("Saint-Denis", "93"))):
            operations.create_sheet(sheet_data(title=f"Accueil partagé n° {n + 1}", city=city,
                                               department=department), moderator)
        db.session.commit()
        slug = card.slug
        db.session.remove()

    sheet_snippet = _snippet(kb_base, f"sheet={slug}")
    list_snippet = _snippet(kb_base, "mode=list&tag=accueil&limit=3")
    partner_html = f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Réseau partenaire</title></head>
<body style="max-width:760px;margin:20px auto;font-family:serif">
<h1>Le site d'un réseau partenaire</h1>
{sheet_snippet}
<p>Texte du partenaire entre les deux widgets.</p>
{list_snippet}
<h2>Une page normale du site, encadrée</h2>
<iframe id="normal" src="{kb_base}/fiches/{slug}" width="600" height="300"></iframe>
</body></html>"""

    def partner(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [partner_html.encode()]

    partner_server, partner_base = _serve(partner)
    yield {"kb": kb_base, "partner": partner_base + "/", "slug": slug,
           "title": "Accueil inconditionnel en mairie"}
    partner_server.shutdown()
    kb_server.shutdown()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def test_snippets_become_sized_iframes_and_normal_pages_refuse_framing(sites, browser):
    page = browser.new_page(viewport={"width": 900, "height": 900})
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(sites["partner"])

    # Both widgets report their height: the parent sizes them and hides the fallback links.
    page.wait_for_function("""() => {
      const frames = document.querySelectorAll('.kb-widget iframe');
      return frames.length === 2 && [...frames].every(f => parseInt(f.style.height, 10) > 100);
    }""", timeout=15_000)
    assert page.locator(".kb-widget > div[hidden] > a").count() == 2

    sheet_frame = next(f for f in page.frames if "/embed/sheets/" in f.url)
    list_frame = next(f for f in page.frames if "/embed/list" in f.url)
    assert sheet_frame.locator("h1").inner_text() == sites["title"]
    assert sheet_frame.get_by_role("link", name="Voir la fiche").get_attribute("target") == "_blank"
    assert list_frame.locator("h2").all_inner_texts() == [
        "Accueil partagé n° 3", "Accueil partagé n° 2", "Accueil partagé n° 1"]

    for frame, selector in ((sheet_frame, ".kb-widget[data-sheet] iframe"),
                            (list_frame, ".kb-widget[data-list] iframe")):
        outer = page.locator(selector).evaluate("f => f.getBoundingClientRect().height")
        inner = frame.evaluate("""() => ({
          scroll: document.documentElement.scrollHeight,
          client: document.documentElement.clientHeight,
          content: document.querySelector('[data-kb-frame]').getBoundingClientRect().height,
        })""")
        # Grown to the content, without an inner scrollbar.
        assert inner["scroll"] <= inner["client"], (selector, inner)
        assert abs(outer - inner["content"]) <= 1.5, (selector, outer, inner)
        assert outer > 150, (selector, outer)

    # A message that is not from the widget's own frame, or without its secret, is ignored.
    before = page.locator(".kb-widget[data-sheet] iframe").evaluate("f => f.style.height")
    page.evaluate("""() => window.postMessage(
        {type: 'kb-widget:height', secret: 'faux', height: 3000}, '*')""")
    sheet_frame.evaluate("""() => window.parent.postMessage(
        {type: 'kb-widget:height', secret: 'faux', height: 3000}, '*')""")
    page.wait_for_timeout(300)
    assert page.locator(".kb-widget[data-sheet] iframe").evaluate("f => f.style.height") == before

    # A normal page of the site, framed by another origin, is refused by the browser.
    normal = page.locator("#normal").element_handle().content_frame()
    assert normal is not None
    page.wait_for_timeout(300)
    shown = normal.evaluate("() => document.body ? document.body.innerText : ''")
    assert sites["title"] not in shown
    assert not normal.url.startswith(sites["kb"] + "/fiches/")
    assert any("frame-ancestors" in text for text in console), console


def test_without_scripts_partners_keep_plain_links(sites, browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(sites["partner"])
    assert page.locator(".kb-widget iframe").count() == 0
    links = page.locator(".kb-widget a")
    assert links.count() == 2
    assert links.nth(0).get_attribute("href") == f"{sites['kb']}/fiches/{sites['slug']}"
    assert links.nth(1).get_attribute("href") == f"{sites['kb']}/fiches?tag=accueil"
    assert sites["title"] in links.nth(0).inner_text()
    context.close()
