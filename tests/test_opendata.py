"""Open data: exports, Atom feeds, JSON-LD, sitemap, robots.txt, CORS on the read-only API."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from xml.etree import ElementTree

import feedparser
import pytest

from kb.config import PROJECT_ROOT
from kb.extensions import db
from kb.importers import run_import
from kb.importers.exports import CSV_COLUMNS, export
from kb.sheets import operations
from kb.sheets.fields import FIELD_NAMES
from kb.sheets.models import published_sheets
from kb.transaction import commit

SEED = PROJECT_ROOT / "fixtures" / "demo.json"


@pytest.fixture
def seeded(app):
    """The demo sheets (the field's seed dump), as `make run` loads them."""
    run_import(Path(SEED), "json", echo=lambda *args, **kwargs: None)
    return db.session.scalars(published_sheets()).all()


# --- exports ---------------------------------------------------------------------------------

def test_csv_export_of_the_seed_parses_with_the_declared_columns(client, seeded):
    response = client.get("/donnees/fiches.csv")
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    assert set(FIELD_NAMES) <= set(rows[0])
    assert sorted(r["slug"] for r in rows) == sorted(s.slug for s in seeded)
    assert len(seeded) >= 10


def test_json_and_jsonl_exports_hold_the_api_objects(client, seeded):
    array = json.loads(client.get("/donnees/fiches.json").get_data(as_text=True))
    lines = [json.loads(line) for line in
             client.get("/donnees/fiches.jsonl").get_data(as_text=True).splitlines()]
    assert array == lines and len(array) == len(seeded)
    api = client.get(f"/api/v1/sheets/{array[0]['slug']}").get_json()
    assert array[0] == api


def test_empty_base_exports_are_still_valid(client):
    assert json.loads(client.get("/donnees/fiches.json").data) == []
    assert client.get("/donnees/fiches.jsonl").data == b""
    assert list(csv.reader(io.StringIO(client.get("/donnees/fiches.csv").get_data(as_text=True)))) \
        == [list(CSV_COLUMNS)]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_http_and_cli_exports_are_the_same_bytes(client, seeded, fmt):
    out = io.StringIO(newline="")
    export(out, fmt)
    assert client.get(f"/donnees/fiches.{fmt}").get_data(as_text=True) == out.getvalue()


def test_exports_are_streamed_from_a_generator(app, seeded, monkeypatch):
    """Rows are produced while the response is read, not built in memory first."""
    import kb.opendata.views as views

    produced: list[str] = []
    real = views.published_objects

    def counting():
        for obj in real():
            produced.append(obj["slug"])
            yield obj

    monkeypatch.setattr(views, "published_objects", counting)
    response = app.test_client().get("/donnees/fiches.jsonl", buffered=False)
    chunks = iter(response.response)
    first = next(chunks)
    assert json.loads(first)["slug"] == produced[0] and len(produced) == 1
    rest = list(chunks)
    assert len(produced) == len(seeded) == 1 + len(rest)
    response.close()


def test_exports_revalidate_and_change_with_the_data(client, seeded, moderator):
    first = client.get("/donnees/fiches.csv")
    assert first.headers["ETag"] and "public" in first.headers["Cache-Control"]
    assert first.headers["Access-Control-Allow-Origin"] == "*"
    assert client.get("/donnees/fiches.csv",
                      headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    sheet = seeded[0]
    operations.edit_sheet(sheet, {"city": "Morlaix"}, moderator, sheet.approved_revision_id)
    commit()
    assert client.get("/donnees/fiches.csv",
                      headers={"If-None-Match": first.headers["ETag"]}).status_code == 200


# --- feeds -------------------------------------------------------------------------------------

FEEDS = ("/donnees/flux/modifications.atom", "/donnees/flux/nouvelles-fiches.atom",
         "/donnees/flux/mots-cles/accueil.atom", "/donnees/flux/echelles/commune.atom")


@pytest.mark.parametrize("url", FEEDS)
def test_feeds_of_the_seed_are_valid_atom(client, seeded, url):
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "application/atom+xml"
    feed = feedparser.parse(response.data)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.title and feed.feed.id.startswith("tag:kb.test,2026:feed:")
    assert feed.entries
    for entry in feed.entries:
        assert entry.id.startswith("tag:kb.test,2026:")
        assert entry.link.startswith("http://kb.test/fiches/")
        assert entry.updated_parsed and entry.title
    assert feed.feed.links[-1].href == f"http://kb.test{url}" or any(
        link.rel == "self" and link.href == f"http://kb.test{url}" for link in feed.feed.links)


def test_feed_ids_are_stable_and_changes_list_approved_revisions(client, make_sheet, moderator,
                                                                 contributor):
    sheet = make_sheet().sheet
    first = feedparser.parse(client.get("/donnees/flux/modifications.atom").data)
    operations.edit_sheet(sheet, {"city": "Morlaix"}, moderator, sheet.approved_revision_id,
                          "Nouvelle ville")
    pending = operations.edit_sheet(sheet, {"title": "Titre pas encore relu"}, contributor,
                                    sheet.approved_revision_id)
    commit()
    assert pending.status == "pending"
    after = feedparser.parse(client.get("/donnees/flux/modifications.atom").data)
    assert [e.id for e in after.entries][1:] == [e.id for e in first.entries]
    assert "Nouvelle ville" in after.entries[0].title
    assert all("pas encore relu" not in e.title for e in after.entries)
    new = feedparser.parse(client.get("/donnees/flux/nouvelles-fiches.atom").data)
    assert [e.id for e in new.entries] == [f"tag:kb.test,2026:sheet:{sheet.id}"]


def test_feed_text_is_escaped(client, make_sheet):
    make_sheet(title="Ateliers <script>alert(1)</script> & co",
               summary="Moins de 5 < 10 & « guillemets »", tags=["accueil"])
    feed = feedparser.parse(client.get("/donnees/flux/mots-cles/accueil.atom").data)
    assert not feed.bozo
    assert feed.entries[0].title == "Ateliers <script>alert(1)</script> & co"
    assert "Moins de 5 &lt; 10 &amp; « guillemets »" in feed.entries[0].summary


def test_unknown_feed_topics_are_404(client):
    assert client.get("/donnees/flux/mots-cles/inconnu.atom").status_code == 404
    assert client.get("/donnees/flux/echelles/planete.atom").status_code == 404


# --- JSON-LD, sitemap, robots ------------------------------------------------------------------

def _jsonld(page: str) -> dict:
    match = re.search(r'<script type="application/ld\+json">(.*?)</script>', page, re.S)
    assert match, "no JSON-LD"
    return json.loads(match.group(1))


def test_sheet_page_describes_itself_in_json_ld(client, make_sheet):
    sheet = make_sheet(title="Accueil </script><b>gras</b>").sheet
    data = _jsonld(client.get(f"/fiches/{sheet.slug}").get_data(as_text=True))
    assert data["@context"] == "https://schema.org" and data["@type"] == "Article"
    assert data["name"] == "Accueil </script><b>gras</b>"
    assert data["url"] == f"http://kb.test/fiches/{sheet.slug}"
    assert data["author"] == {"@type": "Organization", "name": "Mairie de Brest",
                              "url": "https://example.org/accueil"}
    assert data["spatialCoverage"]["@type"] == "Place"
    assert data["spatialCoverage"]["address"]["addressLocality"] == "Brest"
    assert data["spatialCoverage"]["address"]["addressRegion"] == "Finistère"
    assert data["keywords"] == "accueil, design de service"
    assert {"@type": "Thing", "name": "accueil"} in data["about"]
    assert data["dateModified"].endswith("+00:00")


def test_pending_version_page_carries_no_json_ld(client, make_sheet, contributor, login):
    sheet = make_sheet(author=contributor).sheet
    login(contributor)
    page = client.get(f"/fiches/{sheet.slug}").get_data(as_text=True)
    assert "ld+json" not in page and "json+oembed" not in page


def test_sitemap_lists_published_sheets_with_lastmod(client, seeded):
    response = client.get("/sitemap.xml")
    assert response.status_code == 200 and response.mimetype == "application/xml"
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    root = ElementTree.fromstring(response.data)
    urls = {u.findtext("s:loc", namespaces=ns): u.findtext("s:lastmod", namespaces=ns)
            for u in root.findall("s:url", ns)}
    assert set(urls) == {f"http://kb.test/fiches/{s.slug}" for s in seeded}
    assert all(re.match(r"\d{4}-\d\d-\d\dT", lastmod) for lastmod in urls.values())


def test_robots_points_at_the_sitemap_and_keeps_crawlers_off_edit_routes(client):
    body = client.get("/robots.txt").get_data(as_text=True)
    assert "Sitemap: http://kb.test/sitemap.xml" in body
    for rule in ("Disallow: /moderation", "Disallow: /fiches/*/modifier",
                 "Disallow: /fiches/nouvelle"):
        assert rule in body


def test_open_data_page_and_footer_link_the_exports_and_feeds(client):
    page = client.get("/donnees").get_data(as_text=True)
    for link in ("/donnees/fiches.csv", "/donnees/fiches.json", "/donnees/fiches.jsonl",
                 "/donnees/flux/modifications.atom", "/donnees/flux/echelles/commune.atom"):
        assert f'href="{link}"' in page
    footer = page.split('<footer', 1)[1]
    assert 'href="/donnees"' in footer and 'href="/donnees/fiches.csv"' in footer


def test_api_document_links_the_open_data(client):
    doc = client.get("/api/openapi.json").get_json()
    for path in ("/donnees/fiches.csv", "/donnees/fiches.json", "/donnees/fiches.jsonl",
                 "/donnees/flux/modifications.atom"):
        assert path in doc["paths"]
    assert "/donnees" in doc["info"]["description"]


# --- CORS on the read-only API -----------------------------------------------------------------

def test_api_reads_are_open_to_any_origin(client, make_sheet):
    sheet = make_sheet().sheet
    for url in ("/api/v1/sheets", f"/api/v1/sheets/{sheet.slug}", "/api/v1/tags",
                "/api/openapi.json", "/api/v1/sheets/inconnue"):
        response = client.get(url, headers={"Origin": "https://partenaire.example"})
        assert response.headers["Access-Control-Allow-Origin"] == "*", url
        assert "Access-Control-Allow-Credentials" not in response.headers


def test_api_preflight_allows_get_only(client):
    preflight = client.options("/api/v1/sheets", headers={
        "Origin": "https://partenaire.example", "Access-Control-Request-Method": "GET"})
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" not in preflight.headers["Access-Control-Allow-Methods"]
    assert "Authorization" not in preflight.headers["Access-Control-Allow-Headers"]
    for method, url in (("POST", "/api/v1/sheets"), ("PATCH", "/api/v1/sheets/x"),
                        ("POST", "/api/v1/revisions/1/approve")):
        refused = client.options(url, headers={"Origin": "https://partenaire.example",
                                               "Access-Control-Request-Method": method})
        assert "Access-Control-Allow-Origin" not in refused.headers, (method, url)


def test_api_writes_carry_no_cors_header(client, contributor, bearer):
    response = client.post("/api/v1/sheets", json={"title": "Fiche"},
                           headers={"Origin": "https://partenaire.example", **bearer(contributor)})
    assert response.status_code in (201, 202, 422)
    assert "Access-Control-Allow-Origin" not in response.headers
