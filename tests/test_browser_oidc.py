"""ProConnect in a real browser (Chromium) against the loopback provider: the button signs in,
"Se déconnecter" ends the session here and at the provider. The logout redirection to the
provider follows a form post: the site's CSP (`form-action`) must allow it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

import kb.models  # noqa: F401
from kb import create_app
from kb.extensions import db
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider, oidc_provider_fixture  # noqa: F401
from tests.test_browser import CHROMIUM, _serve, browser  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


@pytest.fixture
def site(tmp_path: Any, oidc_provider: Provider) -> Iterator[str]:
    if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
        pytest.skip(f"Chromium absent ({CHROMIUM}) : apt-get install chromium (make test l'installe)")
    app = create_app({
        "SECRET_KEY": "browser-test", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/kb.sqlite3",
        "KB_INDEX_DIR": str(tmp_path / "index"), "RATELIMIT_ENABLED": False,
        "KB_OIDC_ISSUER": oidc_provider.issuer, "KB_OIDC_CLIENT_ID": CLIENT_ID,
        "KB_OIDC_CLIENT_SECRET": CLIENT_SECRET,
    })
    server, base = _serve(app)
    app.config["KB_BASE_URL"] = base
    with app.app_context():
        db.create_all()
        db.session.remove()
    yield base
    server.shutdown()
    with app.app_context():
        db.engine.dispose()


def test_sign_in_with_proconnect_then_log_out_here_and_there(site, browser, oidc_provider):  # noqa: F811
    page = browser.new_context().new_page()
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None)
    page.goto(f"{site}/connexion")
    page.get_by_role("link", name="S’identifier avec ProConnect").click()
    page.wait_for_url(f"{site}/")
    assert page.get_by_text("Vous êtes connecté·e avec ProConnect.").is_visible()
    page.get_by_role("button", name="Se déconnecter (Anne Agent)").click()
    page.wait_for_url(f"{site}/")
    assert page.get_by_text("Vous êtes déconnecté·e, ici et sur ProConnect.").is_visible()
    assert len(oidc_provider.logouts) == 1 and blocked == []
    assert page.get_by_role("link", name="Se connecter").is_visible()
