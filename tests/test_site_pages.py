"""Footer pages: mentions légales, accessibilité, données personnelles, contact.

Sensible defaults shipped with the code, completed by settings, replaced by the operator's own
Markdown files (KB_PAGES_DIR).
"""

from __future__ import annotations

import re

import pytest
from flask import Flask

from kb import create_app
from kb.extensions import db

PAGES = {
    "/mentions-legales": "Mentions légales",
    "/accessibilite": "Déclaration d'accessibilité",
    "/donnees-personnelles": "Données personnelles",
    "/contact": "Contact",
}


@pytest.fixture
def configured(app_config, tmp_path, pg_database):
    def make(**settings: str) -> Flask:
        app = create_app({**app_config, "KB_PAGES_DIR": str(tmp_path / "pages"), **settings})
        with app.app_context():
            if pg_database is None:
                db.create_all()
        return app

    return make


def _footer(page: str) -> list[tuple[str, str]]:
    nav = re.search(r'<nav class="footer-pages".*?</nav>', page, re.S).group(0)
    return re.findall(r'<a href="([^"]+)">([^<]+)</a>', nav)


def test_every_page_links_the_four_pages_in_its_footer(client, make_sheet):
    slug = make_sheet().sheet.slug
    for url in ("/", "/recherche?q=accueil", f"/fiches/{slug}", "/connexion"):
        links = _footer(client.get(url).get_data(as_text=True))
        assert [href for href, _ in links] == list(PAGES), url
    labels = [label for _, label in _footer(client.get("/").get_data(as_text=True))]
    # RGAA: the footer link says the conformity status.
    assert labels == ["Mentions légales", "Accessibilité : non conforme", "Données personnelles",
                      "Contact"]


def test_default_pages_are_complete_and_say_what_is_not_set(client):
    for url, title in PAGES.items():
        response = client.get(url)
        page = response.get_data(as_text=True)
        assert response.status_code == 200, url
        assert f"<h1>{title.replace(chr(39), '&#39;')}</h1>" in page
        assert "{{" not in page and "}}" not in page, url
    accessibility = client.get("/accessibilite").get_data(as_text=True)
    assert "<strong>non conforme</strong>" in accessibility
    assert "Aucun audit de conformité n'a encore été réalisé" in accessibility
    assert "<h2>Voies de recours</h2>" in accessibility
    assert "Défenseur des droits" in accessibility
    personal = client.get("/donnees-personnelles").get_data(as_text=True)
    assert "CNIL" in personal and "stockage local" in personal


def test_settings_complete_the_default_text(configured):
    app = configured(KB_PUBLISHER="la Délégation au numérique de Brest",
                     KB_CONTACT_EMAIL="contact@brest.example", KB_HOSTING="OVH, Roubaix.",
                     KB_ACCESSIBILITY_STATUS="Partiellement conforme",
                     KB_ACCESSIBILITY_AUDIT="Audit réalisé le 2 février 2026 : 75 % des critères respectés.")
    client = app.test_client()
    legal = client.get("/mentions-legales").get_data(as_text=True)
    assert "Ce site est publié par la Délégation au numérique de Brest." in legal
    assert re.search(r'<a href="mailto:contact@brest.example"[^>]*>contact@brest.example</a>', legal)
    assert "OVH, Roubaix." in legal
    accessibility = client.get("/accessibilite").get_data(as_text=True)
    assert "La Délégation au numérique de Brest s'engage" in accessibility
    assert "<strong>partiellement conforme</strong>" in accessibility
    assert "75 % des critères respectés" in accessibility
    assert ("/accessibilite", "Accessibilité : partiellement conforme") in _footer(accessibility)


def test_an_unknown_status_is_not_claimed(configured):
    client = configured(KB_ACCESSIBILITY_STATUS="conforme à 100 %").test_client()
    assert "Accessibilité : non conforme" in client.get("/").get_data(as_text=True)


def test_the_operator_file_replaces_the_default(configured, tmp_path):
    app = configured(KB_CONTACT_EMAIL="ecrire@ville.example")
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "contact.md").write_text(
        "# Nous écrire\n\nÉcrivez à {{ contact }} ou passez au 3 rue du Port.\n\n"
        "## Horaires\n\nDu lundi au vendredi. {{ inconnu }}\n\n<script>alert(1)</script>\n",
        encoding="utf-8")
    page = app.test_client().get("/contact").get_data(as_text=True)
    assert "<h1>Nous écrire</h1>" in page
    assert re.search(r'<a href="mailto:ecrire@ville.example"[^>]*>ecrire@ville.example</a> ou passez', page)
    assert "<h2>Horaires</h2>" in page
    assert "{{ inconnu }}" in page  # a typo shows, rather than vanishing
    assert "<script>alert" not in page
    assert "Le plus rapide" not in page  # the default text is gone


def test_admins_are_told_how_to_replace_the_default(client, login, make_user):
    assert "Texte par défaut" not in client.get("/contact").get_data(as_text=True)
    login(make_user("admin"))
    assert "Texte par défaut" in client.get("/contact").get_data(as_text=True)
