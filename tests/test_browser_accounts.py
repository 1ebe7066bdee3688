"""The password reset flow in a real browser (Chromium), with a real server and SMTP server:
forgotten password → mail → new password → log in; the session opened before is refused."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import expect

import kb.models  # noqa: F401
from kb import create_app
from kb.auth.operations import create_user
from kb.extensions import db
from tests.smtp_server import Handler, Inbox, _free_port
from tests.test_browser import CHROMIUM, _serve, browser  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser

OLD, NEW = "mot-de-passe-solide", "une phrase facile à retenir"


@pytest.fixture
def site(tmp_path: Any) -> Iterator[dict[str, Any]]:
    if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
        pytest.skip(f"Chromium absent ({CHROMIUM}) : apt-get install chromium (make test l'installe)")
    inbox = Inbox()
    port = _free_port()
    smtp = Controller(Handler(inbox), hostname="127.0.0.1", port=port)
    smtp.start()
    app = create_app({
        "SECRET_KEY": "browser-test", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/kb.sqlite3",
        "KB_INDEX_DIR": str(tmp_path / "index"), "RATELIMIT_ENABLED": False,
        "KB_MAIL_URL": f"smtp://127.0.0.1:{port}",
    })
    server, base = _serve(app)
    app.config["KB_BASE_URL"] = base
    with app.app_context():
        db.create_all()
        create_user("lea@example.org", OLD, display_name="Léa Dumas")
        db.session.commit()
        db.session.remove()
    yield {"base": base, "inbox": inbox}
    server.shutdown()
    smtp.stop()
    with app.app_context():
        db.engine.dispose()


def _log_in(page: Any, base: str, password: str) -> None:
    page.goto(f"{base}/connexion")
    page.get_by_label("Adresse e-mail").fill("lea@example.org")
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()


def test_a_forgotten_password_is_reset_by_mail_and_old_sessions_end(site, browser):  # noqa: F811
    base, inbox = site["base"], site["inbox"]
    laptop = browser.new_context().new_page()  # a session opened before the reset
    _log_in(laptop, base, OLD)
    laptop.goto(f"{base}/compte")
    assert laptop.get_by_role("heading", name="Mon compte").is_visible()

    page = browser.new_context().new_page()
    page.goto(f"{base}/connexion")
    page.get_by_role("link", name="Mot de passe oublié ?").click()
    page.get_by_label("Adresse e-mail").fill("lea@example.org")
    page.get_by_role("button", name="Recevoir le lien").click()
    # Waits for the page after the redirect (is_visible() reads the page as it is: a flake).
    expect(page.get_by_role("heading", name="Vérifiez votre messagerie")).to_be_visible()

    [message] = inbox.to("lea@example.org")
    link = re.search(rf"{re.escape(base)}/connexion/nouveau-mot-de-passe/\S+",
                     Inbox.body(message)).group(0)
    page.goto(link)
    page.get_by_label("Nouveau mot de passe").fill("lea-dumas-2026")
    page.get_by_label("Confirmez le mot de passe").fill("lea-dumas-2026")
    page.get_by_role("button", name="Enregistrer le mot de passe").click()
    expect(page.get_by_text("ne doit pas contenir votre nom")).to_be_visible()
    page.get_by_label("Nouveau mot de passe").fill(NEW)
    page.get_by_label("Confirmez le mot de passe").fill(NEW)
    page.get_by_role("button", name="Enregistrer le mot de passe").click()
    page.wait_for_url(f"{base}/connexion")
    assert page.get_by_text("Votre mot de passe est changé").is_visible()

    _log_in(page, base, NEW)
    page.wait_for_url(f"{base}/")
    assert page.get_by_role("button", name="Se déconnecter (Léa Dumas)").is_visible()

    laptop.goto(f"{base}/compte")  # the old session is refused: back to the login page
    assert laptop.url.startswith(f"{base}/connexion")
    page.goto(link)
    assert page.get_by_role("heading", name="Lien inutilisable").is_visible()
