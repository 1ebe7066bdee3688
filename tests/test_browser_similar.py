"""The similar-sheets panel of the new-sheet form, in a real browser (Chromium): the score a
writer reads while typing is the one the moderators' queue shows for the same pair."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

import kb.models  # noqa: F401
from kb import create_app
from kb.auth.operations import create_user
from kb.duplicates.models import DuplicateCandidate
from kb.extensions import db
from kb.sheets import operations
from tests.test_browser import CHROMIUM, _serve, browser  # noqa: F401  (fixture)
from tests.test_duplicates import BREST, REWORDED

pytestmark = pytest.mark.browser
PASSWORD = "mot-de-passe-solide"


@pytest.fixture
def site(tmp_path: Any) -> Iterator[tuple[Any, str]]:
    import os

    if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
        pytest.skip(f"Chromium absent ({CHROMIUM}) : apt-get install chromium (make test l'installe)")
    app = create_app({
        "SECRET_KEY": "browser-test", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/kb.sqlite3",
        "KB_INDEX_DIR": str(tmp_path / "index"), "RATELIMIT_ENABLED": False,
    })
    server, base = _serve(app)
    with app.app_context():
        db.create_all()
        moderator = create_user("modo@example.org", PASSWORD, "moderator", "Modo")
        create_user("claire@example.org", PASSWORD, "contributor", "Claire")
        operations.create_sheet(BREST, moderator)
        from kb.transaction import commit

        commit()
        db.session.remove()
    yield app, base
    server.shutdown()
    with app.app_context():
        db.engine.dispose()


def test_the_score_shown_while_typing_is_the_one_moderators_see(site, browser):  # noqa: F811
    app, base = site
    page = browser.new_page()
    page.goto(f"{base}/connexion")
    page.fill("#email", "claire@example.org")
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.goto(f"{base}/fiches/nouvelle")
    for name, value in REWORDED.items():
        if page.locator(f"select#{name}").count():  # choices, and the département list
            page.select_option(f"#{name}", value)
        else:
            page.fill(f"#{name}", "\n".join(value) if isinstance(value, list) else value)
    item = page.locator("#similar-sheets li").first
    item.wait_for(timeout=10_000)
    shown = re.search(r"ressemblance (\d+)\s%", item.inner_text())
    assert shown, item.inner_text()
    assert page.locator("#distinct-confirmation").is_visible()
    page.check("#distinct")
    page.fill("#distinct_reason", "Un autre hall")
    page.click("form.sheet-form button[type=submit]")
    page.wait_for_url(re.compile(r"/fiches/brest"))
    with app.app_context():
        pair = db.session.scalar(select(DuplicateCandidate))
        assert pair is not None and pair.source == "create"
        assert round(pair.score * 100) == int(shown.group(1))
