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
