"""Issue 25, "Whom to call, in reach": the "Contacter" block first, addresses written in a
sheet's text are links, and an anonymous "Poser une question" is told why it must sign in."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from urllib.parse import parse_qs, urlsplit

from flask.testing import FlaskClient

from kb.auth.models import User
from kb.sheets.models import Revision
from kb.text import render_markdown
from tests.conftest import PASSWORD, sheet_data


def test_contact_block_comes_before_the_story(client: FlaskClient, make_sheet,
                                              make_user) -> None:
    team = make_user("contributor", trusted=True, email="porteuse@example.org")
    sheet = make_sheet(author=team, **sheet_data(
        contacts="Écrire à equipe@mairie-exemple.fr", website="https://example.org/garage",
        context="Une longue histoire. " * 200)).sheet
    page = client.get(f"/fiches/{sheet.slug}").get_data(as_text=True)
    block = page[page.index('class="contact-box"'):]
    block = block[:block.index("</section>")]
    assert page.index('class="contact-box"') < page.index('id="f-context"')
    assert 'href="mailto:equipe@mairie-exemple.fr"' in block
    assert 'href="https://example.org/garage"' in block
    assert f'/fiches/{sheet.slug}/questions/nouvelle' in block
    assert "Comment contacter cette initiative ?" not in page, "said once, in the block"


# --- links in a sheet's text ---------------------------------------------------------------

def test_emails_phones_and_addresses_become_links() -> None:
    html = str(render_markdown(
        "Écrire à equipe@mairie-exemple.fr ou appeler le 04 68 12 34 56 (+33 4 68 12 34 56). "
        "Voir https://example.org/aide?x=1&y=2."))
    assert '<a href="mailto:equipe@mairie-exemple.fr">equipe@mairie-exemple.fr</a>' in html
    assert '<a href="tel:0468123456">04 68 12 34 56</a>' in html
    assert '<a href="tel:+33468123456">+33 4 68 12 34 56</a>' in html
    assert ('<a href="https://example.org/aide?x=1&amp;y=2" rel="nofollow ugc noopener">'
            'https://example.org/aide?x=1&amp;y=2</a>.') in html


def test_code_and_existing_links_are_left_as_written() -> None:
    html = str(render_markdown(
        "`contact@example.org` et [écrire à https://a.fr](https://b.fr)\n\n"
        "    https://code.example 04 68 12 34 56\n"))
    assert "<code>contact@example.org</code>" in html
    assert '<a href="https://b.fr" rel="nofollow ugc noopener">écrire à https://a.fr</a>' in html
    assert "<pre><code>https://code.example 04 68 12 34 56" in html
    assert html.count("<a ") == 1


def test_linking_adds_no_way_in_for_markup() -> None:
    html = str(render_markdown('https://x.fr/"onmouseover="alert(1) et <b>x@y.fr</b> '
                               'https://x.fr/a<script>b'))
    links = re.findall(r"<a ([^>]*)>", html)
    assert links == ['href="mailto:x@y.fr"', 'href="https://x.fr/a" rel="nofollow ugc noopener"']
    assert "<b>" not in html and "<script" not in html


# --- "Poser une question" without an account -----------------------------------------------

def test_anonymous_question_says_why_and_comes_back(client: FlaskClient,
                                                    make_sheet: Callable[..., Revision],
                                                    make_user: Callable[..., User]) -> None:
    team = make_user("contributor", trusted=True, email="porteuse@example.org")
    slug = make_sheet(author=team, contacts="equipe@mairie-exemple.fr").sheet.slug
    ask = f"/fiches/{slug}/questions/nouvelle"
    response = client.get(ask)
    assert response.status_code == 302
    login_url = response.location
    page = unescape(client.get(login_url).get_data(as_text=True))
    assert "Pour poser une question à l'équipe de cette fiche, connectez-vous" in page
    assert "Connectez-vous pour accéder à cette page" not in page
    # "Créer un compte" keeps where the reader was going (the header's "Publier une fiche"
    # leads to sign-up too, for the new-sheet form).
    sign_ups = [parse_qs(urlsplit(href).query).get("next")
                for href in re.findall(r'href="(/inscription\?[^"]*)"', page)]
    assert [ask] in sign_ups
    # Signed in from that page, the reader is back at the question.
    asker = make_user("contributor", email="lectrice@example.org")
    response = client.post(login_url, data={"email": asker.email, "password": PASSWORD})
    assert response.status_code == 302 and response.location == ask


def test_a_foreign_next_is_ignored(client: FlaskClient, make_user) -> None:
    user = make_user("contributor", email="lectrice@example.org")
    page = unescape(client.get("/connexion?next=//evil.example/fiches/x/questions/nouvelle")
                    .get_data(as_text=True))
    sign_ups = re.findall(r'href="(/inscription[^"]*)"', page)
    assert sign_ups and not any("evil.example" in href for href in sign_ups)
    response = client.post("/connexion?next=//evil.example/",
                           data={"email": user.email, "password": PASSWORD})
    assert response.location == "/"
