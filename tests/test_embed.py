"""Widgets for partner sites: what they show, that they set no cookie, framing, caching, oEmbed."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from flask import session

from kb.sheets import operations
from kb.transaction import commit


@pytest.fixture
def brest(make_sheet):
    return make_sheet().sheet


# --- the sheet widget ------------------------------------------------------------------------

def test_sheet_widget_shows_the_card_of_the_approved_revision(client, brest, contributor):
    operations.edit_sheet(brest, {"summary": "Résumé en attente de relecture"}, contributor,
                          brest.approved_revision_id)
    commit()
    response = client.get(f"/embed/sheets/{brest.slug}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for shown in ("Accueil inconditionnel en mairie", "Mairie de Brest", "Commune", "Brest",
                  "Un accueil repensé avec les agents et les usagers.", "design de service",
                  "Voir la fiche", f'href="/fiches/{brest.slug}" target="_blank"'):
        assert shown in page
    assert "en attente de relecture" not in page
    assert "à actualiser" not in page
    # Its own template and CSS: not the site's layout.
    assert "css/embed.css" in page and "kb.css" not in page and "site-header" not in page


def test_stale_sheet_widget_says_it_needs_updating(client, brest):
    brest.last_reviewed_at -= timedelta(days=800)
    commit()
    assert "à actualiser" in client.get(f"/embed/sheets/{brest.slug}").get_data(as_text=True)


def test_unknown_sheet_widget_is_a_framable_404(client):
    response = client.get("/embed/sheets/nulle-part")
    assert response.status_code == 404
    assert "Cette fiche n&#39;existe pas" in response.get_data(as_text=True)
    assert "frame-ancestors *" in response.headers["Content-Security-Policy"]


def test_merged_sheet_widget_redirects_to_the_sheet_it_was_merged_into(client, make_sheet):
    kept = make_sheet(title="Fiche conservée").sheet
    gone = make_sheet(title="Fiche fusionnée").sheet
    gone.state, gone.merged_into_id = "merged", kept.id
    commit()
    response = client.get(f"/embed/sheets/{gone.slug}")
    assert response.status_code == 301
    assert response.headers["Location"].endswith(f"/embed/sheets/{kept.slug}")


# --- the list widget -------------------------------------------------------------------------

@pytest.fixture
def territory(make_sheet):
    make_sheet(title="Accueil à Quimper", city="Quimper", department="Finistère",
               scale="intercommunalite", tags=["accueil"])
    make_sheet(title="Numérique à Brest", city="Brest", department="29", scale="commune",
               tags=["numérique"])
    make_sheet(title="Accueil en Vendée", city="La Roche-sur-Yon", department="85",
               scale="departement", tags=["accueil", "France Services"])


def _titles(client, query: str) -> list[str]:
    response = client.get(f"/embed/list?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    page = response.get_data(as_text=True)
    return [t for t in ("Accueil à Quimper", "Numérique à Brest", "Accueil en Vendée") if t in page]


def test_list_widget_filters_like_search(client, territory):
    assert _titles(client, "") == ["Accueil à Quimper", "Numérique à Brest", "Accueil en Vendée"]
    assert _titles(client, "tag=accueil") == ["Accueil à Quimper", "Accueil en Vendée"]
    assert _titles(client, "scale=commune") == ["Numérique à Brest"]
    assert _titles(client, "city=brest") == ["Numérique à Brest"]
    # A département is found by code or by name, whichever the sheet holds.
    assert _titles(client, "department=29") == ["Accueil à Quimper", "Numérique à Brest"]
    assert _titles(client, "department=Vendée") == ["Accueil en Vendée"]
    assert _titles(client, "tag=accueil&department=85") == ["Accueil en Vendée"]
    assert _titles(client, "q=vendée") == ["Accueil en Vendée"]
    assert _titles(client, "q=accueil&scale=intercommunalite") == ["Accueil à Quimper"]


def test_list_widget_limit_and_link_to_the_full_listing(client, territory):
    page = client.get("/embed/list?tag=accueil&limit=1").get_data(as_text=True)
    assert page.count("<h2>") == 1
    assert "Voir toutes les fiches (2)" in page and 'href="/fiches?tag=accueil"' in page


def test_list_widget_refuses_bad_parameters_in_french(client):
    response = client.get("/embed/list?scale=planete")
    assert response.status_code == 400
    assert "valeur inconnue « planete » pour « Échelle d'action »" \
        in response.get_data(as_text=True).replace("&#39;", "'").replace("&#34;", '"')
    assert client.get("/embed/list?limit=beaucoup").status_code == 400
    assert "Aucune fiche" in client.get("/embed/list?tag=inconnu").get_data(as_text=True)


def test_q_uses_the_sql_fallback_while_search_is_absent(client, territory):
    from kb.embed.listing import matching_slugs

    slugs = matching_slugs("50%_", {})
    assert slugs == []  # LIKE wildcards in q are literal characters
    assert matching_slugs("QUIMPER", {}) == ["accueil-a-quimper"]  # title, any case
    assert len(matching_slugs("repensé avec", {})) == 3  # summary of the approved revision
    assert matching_slugs("repensé", {"tag": "numerique"}) == ["numerique-a-brest"]


# --- no session, no cookie -------------------------------------------------------------------

EMBED_URLS = ("/embed/sheets/{slug}", "/embed/list", "/embed/list?tag=accueil", "/widget.js",
              "/oembed?url=http%3A%2F%2Fkb.test%2Ffiches%2F{slug}&format=json",
              "/embed/sheets/inconnue")


def test_embeds_set_no_cookie_even_for_a_logged_in_reader(app, client, brest, login, moderator):
    login(moderator)
    for url in EMBED_URLS:
        response = client.get(url.format(slug=brest.slug))
        assert "Set-Cookie" not in response.headers, url
        assert "Cookie" not in response.headers.get("Vary", ""), url


def test_embeds_never_save_the_session_whatever_touched_it(app, client, brest):
    @app.before_request
    def touch_session() -> None:  # e.g. a flash message or a login refresh elsewhere
        session["seen"] = True

    for url in EMBED_URLS:
        assert "Set-Cookie" not in client.get(url.format(slug=brest.slug)).headers, url
    # The same request on a normal page does save the session.
    assert "Set-Cookie" in client.get(f"/fiches/{brest.slug}").headers


# --- framing: embed routes allow it, every other page refuses it -----------------------------

def test_embed_routes_may_be_framed_by_any_origin_by_default(client, brest):
    for url in (f"/embed/sheets/{brest.slug}", "/embed/list"):
        response = client.get(url)
        assert "frame-ancestors *;" in response.headers["Content-Security-Policy"]
        assert "X-Frame-Options" not in response.headers
        assert response.headers["X-Robots-Tag"] == "noindex"


def test_frame_ancestors_follow_the_configured_allowlist(app, client, brest):
    app.config["KB_EMBED_FRAME_ANCESTORS"] = "https://intranet.cd29.fr, https://reseau.example.org"
    csp = client.get(f"/embed/sheets/{brest.slug}").headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://intranet.cd29.fr https://reseau.example.org;" in csp
    # A value that would inject another directive fails closed: our own pages only.
    app.config["KB_EMBED_FRAME_ANCESTORS"] = "https://ok.fr; script-src *"
    csp = client.get(f"/embed/sheets/{brest.slug}").headers["Content-Security-Policy"]
    assert csp.startswith("frame-ancestors 'self';") and "script-src *" not in csp


def _policy(response):
    """The Content-Security-Policy header as {directive: sources}."""
    directives = [d.split() for d in response.headers["Content-Security-Policy"].split(";")]
    return {d[0]: " ".join(d[1:]) for d in directives if d}


@pytest.mark.parametrize("url", ["/", "/fiches/{slug}", "/embed", "/donnees", "/connexion",
                                 "/recherche?q=accueil", "/fiches"])
def test_other_pages_refuse_to_be_framed_and_run_only_this_sites_scripts(client, brest, url):
    response = client.get(url.format(slug=brest.slug))
    policy = _policy(response)
    assert policy["frame-ancestors"] == "'none'"
    assert response.headers["X-Frame-Options"] == "DENY"
    # Defence in depth: no inline or foreign script, no plugin, no <base> hijack.
    assert policy["default-src"] == "'self'" and "script-src" not in policy
    assert policy["object-src"] == "'none'" and policy["base-uri"] == "'none'"
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "<script>" not in response.get_data(as_text=True)  # scripts are files (static/js)
    assert not re.search(r"<[a-z][^>]*\sstyle=", response.get_data(as_text=True))


@pytest.mark.parametrize("url", ["/embed/sheets/{slug}", "/embed/list"])
def test_embeds_run_only_this_sites_scripts_and_styles(client, brest, url):
    response = client.get(url.format(slug=brest.slug))
    policy = _policy(response)
    assert policy["frame-ancestors"] == "*"  # KB_EMBED_FRAME_ANCESTORS, framable as before
    assert policy["default-src"] == "'none'" and policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'" and policy["object-src"] == "'none'"
    assert policy["base-uri"] == "'none'"
    assert "<style" not in response.get_data(as_text=True)


# --- caching -----------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/embed/sheets/{slug}", "/embed/list?tag=accueil", "/widget.js"])
def test_embeds_are_cacheable_and_revalidate_with_304(client, brest, url):
    url = url.format(slug=brest.slug)
    first = client.get(url)
    assert first.status_code == 200
    assert first.headers["ETag"] and first.headers["Last-Modified"]
    assert "public" in first.headers["Cache-Control"] and "max-age" in first.headers["Cache-Control"]
    again = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    since = client.get(url, headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert since.status_code == 304


def test_an_approved_edit_changes_the_etag(client, brest, moderator):
    first = client.get(f"/embed/sheets/{brest.slug}")
    operations.edit_sheet(brest, {"title": "Accueil repensé"}, moderator,
                          brest.approved_revision_id)
    commit()
    again = client.get(f"/embed/sheets/{brest.slug}", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 200 and "Accueil repensé" in again.get_data(as_text=True)


# --- widget.js and the configurator ------------------------------------------------------------

def test_widget_js_is_served_as_javascript(client):
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    body = response.get_data(as_text=True)
    for part in ("kb-widget", "data-sheet", "data-list", "event.source", "MAX_HEIGHT"):
        assert part in body


def test_configurator_gives_both_snippets_for_a_sheet(client, brest):
    response = client.get(f"/embed?sheet={brest.slug}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    # The snippets appear escaped inside their <textarea>.
    assert (f'&lt;div class=&#34;kb-widget&#34; data-sheet=&#34;{brest.slug}&#34;&gt;'
            f'&lt;a href=&#34;http://kb.test/fiches/{brest.slug}&#34;&gt;') in page
    assert "&lt;script src=&#34;http://kb.test/widget.js&#34; async&gt;" in page
    assert f"&lt;iframe src=&#34;http://kb.test/embed/sheets/{brest.slug}&#34;" in page
    assert f'<iframe src="/embed/sheets/{brest.slug}"' in page  # the live preview
    assert 'class="site-header"' in page  # a normal page of the site


def test_configurator_builds_a_list_snippet_from_filters(client, territory):
    page = client.get("/embed?mode=list&tag=accueil&scale=departement&limit=3").get_data(as_text=True)
    assert "data-list=&amp;#34;" not in page
    assert "data-list=&#34;scale=departement&amp;amp;tag=accueil&amp;amp;limit=3&#34;" in page
    assert '<iframe src="/embed/list?scale=departement&amp;tag=accueil&amp;limit=3"' in page
    assert client.get("/embed?mode=list&scale=planete").status_code == 400


# --- oEmbed ------------------------------------------------------------------------------------

def _oembed(client, url: str, **params: str):
    query = "&".join([f"url={quote(url, safe='')}"] + [f"{k}={v}" for k, v in params.items()])
    return client.get(f"/oembed?{query}")


def test_sheet_page_advertises_its_oembed_endpoint(client, brest):
    page = client.get(f"/fiches/{brest.slug}").get_data(as_text=True)
    expected = ('<link rel="alternate" type="application/json+oembed" '
                f'href="http://kb.test/oembed?url=http%3A%2F%2Fkb.test%2Ffiches%2F{brest.slug}'
                '&amp;format=json" title="Accueil inconditionnel en mairie">')
    assert expected in page


def test_oembed_answers_a_rich_response(client, brest):
    response = _oembed(client, f"http://kb.test/fiches/{brest.slug}", format="json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    data = response.get_json()
    assert data["version"] == "1.0" and data["type"] == "rich"
    assert data["title"] == "Accueil inconditionnel en mairie"
    assert data["provider_name"] == "Fiches initiatives" and data["provider_url"] == "http://kb.test/"
    assert isinstance(data["width"], int) and isinstance(data["height"], int)
    assert data["html"].startswith(f'<iframe src="http://kb.test/embed/sheets/{brest.slug}"')
    assert f'width="{data["width"]}" height="{data["height"]}"' in data["html"]


def test_oembed_respects_maxwidth_and_maxheight(client, brest):
    url = f"http://kb.test/fiches/{brest.slug}"
    data = _oembed(client, url, maxwidth="320", maxheight="200").get_json()
    assert data["width"] <= 320 and data["height"] <= 200
    big = _oembed(client, url, maxwidth="5000").get_json()
    assert big["width"] == 600
    assert _oembed(client, url, maxwidth="large").status_code == 400


def test_oembed_errors(client, brest, make_sheet, contributor):
    pending = make_sheet(author=contributor, title="Fiche pas encore relue").sheet
    assert _oembed(client, f"http://kb.test/fiches/{brest.slug}", format="xml").status_code == 501
    assert _oembed(client, "http://kb.test/fiches/inconnue").status_code == 404
    assert _oembed(client, f"http://kb.test/fiches/{pending.slug}").status_code == 404
    for foreign in (f"https://ailleurs.example/fiches/{brest.slug}", "http://kb.test/donnees",
                    "pas une adresse"):
        response = _oembed(client, foreign)
        assert response.status_code == 400
        assert response.get_json()["message"]
    assert client.get("/oembed").status_code == 400


def test_oembed_accepts_the_address_the_reader_used(client, brest):
    # KB_BASE_URL is the canonical address; the host a request came in through is ours too.
    assert _oembed(client, f"http://localhost/fiches/{brest.slug}").status_code == 200


def test_a_consumer_discovers_and_embeds_a_sheet(client, brest):
    """What an oEmbed consumer does: find the discovery link in the page, then fetch it."""
    from html.parser import HTMLParser
    from urllib.parse import urlsplit

    class Discovery(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.found: list[dict[str, str | None]] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            attributes = dict(attrs)
            if tag == "link" and attributes.get("type") == "application/json+oembed":
                self.found.append(attributes)

    parser = Discovery()
    parser.feed(client.get(f"/fiches/{brest.slug}").get_data(as_text=True))
    assert len(parser.found) == 1 and parser.found[0]["rel"] == "alternate"
    endpoint = urlsplit(parser.found[0]["href"] or "")
    data = client.get(f"{endpoint.path}?{endpoint.query}").get_json()
    # Required by the spec for every type, then for "rich".
    assert data["version"] == "1.0" and data["type"] == "rich"
    for name, kind in (("html", str), ("width", int), ("height", int), ("title", str),
                       ("provider_name", str), ("provider_url", str), ("cache_age", int)):
        assert isinstance(data[name], kind), name
    assert data["html"].count("<iframe") == 1 and "<script" not in data["html"]
