"""data·inclusion records (issue 23): the API's services and structures and `kb export --format
data-inclusion` validate against the schema package's own models, over the demo sheets and
generated ones."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from data_inclusion.schema import v1 as di
from flask import Flask
from flask.testing import FlaskClient

from kb.config import PROJECT_ROOT
from kb.importers import run_import
from kb.sheets.models import Revision
from kb.transaction import commit

DEMO = PROJECT_ROOT / "fixtures" / "demo.json"


@pytest.fixture
def sheets(app: Flask, make_sheet: Callable[..., Revision]) -> None:
    run_import(Path(DEMO), "json", echo=lambda *_: None)
    commit()
    make_sheet(title="Garage solidaire.", summary="", context="", method="", results="",
               actor_name="", thematiques=["mobilite--entretenir-reparer-son-vehicule"],
               publics=["femmes", "jeunes"], modes_mobilisation=["telephoner", "se-presenter"],
               mobilisable_par=["usagers", "professionnels"], frais="payant",
               lien_mobilisation="https://example.org/demande", zone_eligibilite=["Bretagne"],
               conditions_acces="Avoir un véhicule.", mobilisation_precisions="Appeler le matin.")
    make_sheet(title="Ab", city="", department="", actor_name="X", website="")


def _all(client: FlaskClient, url: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        body = client.get(url, query_string={"page": page, "per_page": 5}).get_json()
        items += body["items"]
        if len(items) >= body["total"]:
            return items
        page += 1


def test_every_service_and_structure_of_the_api_validates_with_the_package(
        client: FlaskClient, sheets: None) -> None:
    services = _all(client, "/api/v1/data-inclusion/services")
    structures = _all(client, "/api/v1/data-inclusion/structures")
    assert len(services) == 16  # 14 demo sheets and 2 generated ones
    for record in services:
        di.Service.model_validate(record, context={"ignore_warnings": False})
    for record in structures:
        di.Structure.model_validate(record, context={"ignore_warnings": False})
    # Every service names a structure that is there, and the vocabulary went through.
    assert {s["structure_id"] for s in services} <= {s["id"] for s in structures}
    garage = next(s for s in services if s["nom"] == "Garage solidaire")
    assert garage["thematiques"] == ["mobilite--entretenir-reparer-son-vehicule"]
    assert set(garage["publics"]) == {"femmes", "jeunes"}
    assert garage["zone_eligibilite"] == ["22", "29", "35", "56"]
    assert garage["frais"] == "payant"
    demo = [s for s in services if s["thematiques"]]
    assert len(demo) >= 12


def test_the_cli_export_gives_the_same_valid_records(app: Flask, client: FlaskClient,
                                                     sheets: None, tmp_path: Path) -> None:
    out = tmp_path / "di.json"
    result = app.test_cli_runner().invoke(args=["export", str(out), "--format",
                                                "data-inclusion"])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert len(written["services"]) == 16
    for record in written["services"]:
        di.Service.model_validate(record, context={"ignore_warnings": False})
    for record in written["structures"]:
        di.Structure.model_validate(record, context={"ignore_warnings": False})
    assert written["services"] == _all(client, "/api/v1/data-inclusion/services")


def test_the_openapi_document_describes_both_endpoints(client: FlaskClient) -> None:
    paths = client.get("/api/openapi.json").get_json()["paths"]
    for name in ("services", "structures"):
        operation = paths[f"/api/v1/data-inclusion/{name}"]["get"]
        assert {p["name"] for p in operation["parameters"]} == {"page", "per_page"}


def test_moderators_see_the_quality_score_and_the_lowest(client: FlaskClient, login: Any,
                                                         make_user: Any, sheets: None) -> None:
    lowest = client.get("/moderation/qualite")
    assert lowest.status_code in (302, 401, 403)  # not for readers
    login(make_user("moderator"))
    page = client.get("/moderation/qualite").get_data(as_text=True)
    scores = [float(s) for s in re_scores(page)]
    assert len(scores) == 16 and scores == sorted(scores)
    assert "Fiche Ab" not in page and "Ab</a>" in page
    slug = client.get("/api/v1/sheets", query_string={"thematique": "mobilite"}
                      ).get_json()["items"][0]["slug"]
    assert "Score de qualité data·inclusion" in client.get(f"/fiches/{slug}").get_data(
        as_text=True)


def re_scores(page: str) -> list[str]:
    import re

    return re.findall(r"</a></td><td>(\d\.\d\d)</td>", page)


def test_structures_come_from_kb_structures_paged_in_sql_then_the_carriers_names(
        app: Flask, client: FlaskClient, make_sheet: Callable[..., Revision],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from kb.extensions import db
    from kb.importers import datainclusion
    from kb.structures.models import Structure

    carried = []
    for n, (name, siret) in enumerate((("Mission locale du Pays de Brest", "73282932000074"),
                                        ("Garage solidaire du Finistère", None),
                                        ("Sans fiche publiée", None))):
        structure = Structure(name=name, siret=siret, commune_code="29019" if n == 0 else "",
                              website="https://ml-brest.example.org" if n == 0 else "",
                              networks=["mission-locale"] if n == 0 else [])
        db.session.add(structure)
        carried.append(structure)
    commit()
    for n, structure in enumerate(carried[:2]):
        for i in range(2):  # two sheets, one structure
            sheet = make_sheet(title=f"Accompagnement {n}-{i}", actor_name=structure.name).sheet
            sheet.structure_id = structure.id
    make_sheet(title="Accueil en mairie", actor_name="Mairie de Brest")
    make_sheet(title="Accueil en mairie, suite", actor_name="mairie de Brest")  # same carrier
    make_sheet(title="Sans porteur", actor_name="")
    commit()
    built: list[int] = []
    real = datainclusion.structure_row_record
    monkeypatch.setattr(datainclusion, "structure_row_record",
                        lambda s, updated: built.append(s.id) or real(s, updated))
    first = client.get("/api/v1/data-inclusion/structures",
                       query_string={"page": 1, "per_page": 1}).get_json()
    assert first["total"] == 4 and len(first["items"]) == 1
    assert built == [carried[0].id]  # the page's record only, not the whole list sliced
    mission = first["items"][0]
    assert mission["id"] == f"fiches-initiatives--structure-{carried[0].id}"
    assert mission["nom"] == "Mission locale du Pays de Brest"
    assert mission["siret"] == "73282932000074" and mission["code_insee"] == "29019"
    assert mission["commune"] == "Brest" and mission["reseaux_porteurs"] == ["mission-locale"]
    assert mission["site_web"].startswith("https://ml-brest.example.org")
    everything = _all(client, "/api/v1/data-inclusion/structures")
    ids = [s["id"] for s in everything]
    assert len(ids) == len(set(ids)) == 4  # each once across the pages; no sheetless one
    assert ids[1] == f"fiches-initiatives--structure-{carried[1].id}"
    assert ids[2:] == ["fiches-initiatives--fiche-" + ids[2].rsplit("-", 1)[1],
                       "fiches-initiatives--mairie-de-brest"]
    for record in everything:
        di.Structure.model_validate(record, context={"ignore_warnings": False})
    services = _all(client, "/api/v1/data-inclusion/services")
    assert {s["structure_id"] for s in services} == set(ids)
