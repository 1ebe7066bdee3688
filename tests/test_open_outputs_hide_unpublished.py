"""Readers see only approved content of published sheets: in every embed, export and feed.

One published sheet with a pending edit, and five unpublished sheets (pending creation by a
contributor, hidden, archived, merged, rejected): none of their words may leak anywhere.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy import select

from kb.extensions import db
from kb.sheets import operations
from kb.sheets.models import Sheet
from kb.transaction import commit

SECRETS = {
    "pending": "Zanzibarpendant",
    "hidden": "Xylophonemasque",
    "archived": "Quokkarchive",
    "merged": "Wombatfusionne",
    "rejected": "Yuccarefuse",
    "pending-edit": "Jaguarenattente",
}


def _measured(label: str) -> list[dict[str, object]]:
    """A measured indicator (issue 26) whose label carries the sheet's words."""
    return [{"label": label, "kind": "sorties-positives", "value": 29, "unit": "%",
             "source_type": "etude-impact"}]


@pytest.fixture
def base(make_sheet, contributor, moderator):
    published = make_sheet(title="Fiche publiée visible", tags=["accueil"],
                           indicators=_measured("Sorties positives")).sheet
    # A pending edit on a published sheet: the published version stays the approved one.
    operations.edit_sheet(published, {"summary": SECRETS["pending-edit"],
                                      "tags": ["accueil", SECRETS["pending-edit"]],
                                      "indicators": _measured(SECRETS["pending-edit"])},
                          contributor, published.approved_revision_id)
    make_sheet(author=contributor, title=f"Fiche {SECRETS['pending']}", tags=["accueil"],
               indicators=_measured(SECRETS["pending"]))
    hidden = make_sheet(title=f"Fiche {SECRETS['hidden']}", tags=["accueil"],
                        indicators=_measured(SECRETS["hidden"])).sheet
    hidden.state = "hidden"
    archived = make_sheet(title=f"Fiche {SECRETS['archived']}", tags=["accueil"],
                          indicators=_measured(SECRETS["archived"])).sheet
    archived.state = "archived"
    merged = make_sheet(title=f"Fiche {SECRETS['merged']}", tags=["accueil"],
                        indicators=_measured(SECRETS["merged"])).sheet
    merged.state, merged.merged_into_id = "merged", published.id
    rejected = make_sheet(author=contributor, title=f"Fiche {SECRETS['rejected']}",
                          tags=["accueil"], indicators=_measured(SECRETS["rejected"]))
    operations.reject_revision(rejected, moderator, "Hors sujet")
    commit()
    return {"published": published, "hidden": hidden, "archived": archived, "merged": merged,
            "pending": None, "rejected": rejected.sheet}


def _outputs(client, base) -> dict[str, str]:
    published = base["published"]
    urls = [
        f"/embed/sheets/{published.slug}", "/embed/list", "/embed/list?tag=accueil&limit=20",
        "/embed/list?q=fiche&limit=20", "/embed?mode=list", "/embed",
        "/donnees/fiches.csv", "/donnees/fiches.json", "/donnees/fiches.jsonl",
        "/donnees/flux/modifications.atom", "/donnees/flux/nouvelles-fiches.atom",
        "/donnees/flux/mots-cles/accueil.atom", "/donnees/flux/echelles/commune.atom",
        "/sitemap.xml", "/donnees", f"/fiches/{published.slug}",
        "/oembed?url=" + quote(f"http://kb.test/fiches/{published.slug}", safe=""),
        "/api/v1/sheets?per_page=100",
        # Measured results (issue 26): across sheets, compared, and their CSV.
        "/resultats?kind=sorties-positives", "/resultats?kind=sorties-positives&has_results=1",
        "/donnees/indicateurs.csv",
        f"/resultats/comparer?fiches={published.slug}",
    ]
    pages = {}
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        pages[url] = response.get_data(as_text=True)
    return pages


def test_unpublished_content_is_absent_from_every_open_output(client, base):
    pages = _outputs(client, base)
    # The published sheet is there (so an empty output cannot pass this test)...
    for url, page in pages.items():
        if url != "/donnees":
            assert base["published"].slug in page, url
    # ...and nothing of what is not approved and published.
    for url, page in pages.items():
        for state, word in SECRETS.items():
            assert word.lower() not in page.lower(), f"{state} content leaked in {url}"
    # Unpublished slugs are absent too (exports list slugs and URLs).
    for state in ("hidden", "archived", "merged", "rejected"):
        slug = base[state].slug
        for url, page in pages.items():
            if url.startswith(("/donnees/", "/sitemap", "/embed/list", "/resultats?")):
                assert f"/fiches/{slug}" not in page and f'"{slug}"' not in page, (state, url)


def test_the_comparison_of_results_shows_no_unpublished_sheet(client, base):
    """Asked by slug, an unpublished sheet is "introuvable": neither its title nor its
    indicators (the slugs asked are the reader's own words, in the page's links)."""
    slugs = [base["published"].slug] + [base[state].slug for state in
                                        ("hidden", "archived", "merged", "rejected")][:3]
    page = client.get("/resultats/comparer?fiches=" + ",".join(slugs)).get_data(as_text=True)
    assert page.count("Fiche introuvable") == 3 and "Fiche publiée visible" in page
    for word in SECRETS.values():
        assert word not in page  # as written in titles and indicators (capitalised)


@pytest.mark.parametrize("state", ["hidden", "archived", "rejected"])
def test_unpublished_sheets_have_no_widget_nor_oembed(client, base, state):
    slug = base[state].slug
    assert client.get(f"/embed/sheets/{slug}").status_code == 404
    url = quote(f"http://kb.test/fiches/{slug}", safe="")
    assert client.get(f"/oembed?url={url}").status_code == 404


def test_pending_creation_has_no_widget_nor_oembed(client, base):
    slug = db.session.scalar(select(Sheet.slug).where(Sheet.approved_revision_id.is_(None)
                                                      & (Sheet.state == "active")))
    assert slug is not None
    assert client.get(f"/embed/sheets/{slug}").status_code == 404
    url = quote(f"http://kb.test/fiches/{slug}", safe="")
    assert client.get(f"/oembed?url={url}").status_code == 404


def test_merged_sheet_has_no_oembed_and_its_widget_shows_the_kept_sheet(client, base):
    slug = base["merged"].slug
    url = quote(f"http://kb.test/fiches/{slug}", safe="")
    assert client.get(f"/oembed?url={url}").status_code == 404
    page = client.get(f"/embed/sheets/{slug}", follow_redirects=True).get_data(as_text=True)
    assert "Fiche publiée visible" in page and SECRETS["merged"] not in page
