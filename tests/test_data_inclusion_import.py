"""`kb import --format data-inclusion` (issue 23): idempotent by (source, id), drafts for review
by default, every rejected row named with its line and reason and then nothing imported,
near-duplicates put in the duplicates queue rather than imported twice."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from kb import create_app
from kb.duplicates.models import DuplicateCandidate
from kb.extensions import db
from kb.importers import ImportFailed, run_import
from kb.sheets.models import Revision, Sheet
from kb.transaction import commit

ORIENTATION = ("thematiques", "publics", "modes_mobilisation", "mobilisable_par", "frais",
               "lien_mobilisation", "mobilisation_precisions", "conditions_acces",
               "zone_eligibilite")


def service(ident: str, **changes: Any) -> dict[str, Any]:
    record = {"source": "dora", "id": f"dora--{ident}", "structure_id": "dora--s1",
              "nom": f"Atelier mobilité {ident}", "date_maj": "2025-02-14",
              "description": f"Un atelier pour préparer son permis de conduire ({ident}), "
                             "avec un moniteur et des séances de code.",
              "thematiques": ["mobilite--preparer-un-permis"], "publics": ["jeunes"],
              "modes_mobilisation": ["telephoner"], "mobilisable_par": ["professionnels"],
              "zone_eligibilite": ["29"], "frais": "gratuit"}
    record.update(changes)
    return record


def _write(tmp_path: Path, records: list[Any], name: str = "services.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def _count(model: Any = Sheet) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def test_drafts_by_default_and_idempotent_by_source_and_id(app: Flask, client: FlaskClient,
                                                          tmp_path: Path) -> None:
    path = _write(tmp_path, [service("1"), service("2")])
    assert run_import(path, "data-inclusion", echo=lambda _: None)["created"] == 2
    assert client.get("/api/v1/sheets").get_json()["total"] == 0  # waiting for review
    statuses = db.session.scalars(select(Revision.status)).all()
    assert statuses == ["pending", "pending"]
    again = run_import(path, "data-inclusion", echo=lambda _: None)
    assert again["unchanged"] == 2 and _count() == 2 and _count(Revision) == 2
    published = run_import(_write(tmp_path, [service("3")], "more.json"), "data-inclusion",
                           echo=lambda _: None, publish=True)
    assert published["created"] == 1
    assert client.get("/api/v1/sheets", query_string={"thematique": "mobilite"}
                      ).get_json()["total"] == 1


def test_a_bad_row_is_reported_with_its_line_and_nothing_is_imported(
        app: Flask, tmp_path: Path) -> None:
    path = _write(tmp_path, [service("1"),
                             service("2", thematiques=["mobilite--teleportation"]),
                             {k: v for k, v in service("3").items() if k != "id"}])
    said: list[str] = []
    with pytest.raises(ImportFailed, match="2 ligne"):
        run_import(path, "data-inclusion", echo=said.append)
    text = path.read_text()
    line_2 = text[:text.index('"dora--2"')].count("\n") + 1
    assert any(f"ligne {line_2 - 2} : rejetée : thematiques" in m for m in said), said
    assert any("id : identifiant manquant" in m for m in said), said
    assert _count() == 0 and _count(Revision) == 0  # not even the good first row


@pytest.mark.parametrize("publish", [False, True])
def test_a_near_duplicate_goes_to_the_duplicates_queue_not_into_the_existing_sheet(
        app: Flask, client: FlaskClient, make_sheet: Callable[..., Revision], tmp_path: Path,
        publish: bool) -> None:
    existing = make_sheet(title="Atelier mobilité 9",
                          context=service("9")["description"], actor_name="", city="",
                          department="", tags=[], partners=[], website="", summary="",
                          stakes="", method="", results="").sheet
    before = existing.approved_revision_id
    said: list[str] = []
    path = _write(tmp_path, [service("9"), service("10", nom="Garage solidaire",
                                                   description="Des réparations à prix bas.")])
    counts = run_import(path, "data-inclusion", echo=said.append, publish=publish)
    assert counts["distinct"] == 1 and counts["created"] == 1 and counts["matched"] == 0
    # The existing sheet is untouched: no new revision, no proposal.
    assert db.session.scalar(select(func.count()).select_from(Revision).where(
        Revision.sheet_id == existing.id)) == 1
    assert db.session.get(Sheet, existing.id).approved_revision_id == before
    # The row is a draft (even with --publish), paired with it in the moderators' queue.
    [pair] = db.session.scalars(select(DuplicateCandidate)).all()
    imported = db.session.get(Sheet, pair.sheet_b_id)
    assert pair.sheet_a_id == existing.id and pair.status == "open" and pair.source == "import"
    assert imported is not None and imported.approved_revision_id is None
    assert "data·inclusion" in pair.reason
    assert any(existing.slug in m and "file des doublons" in m for m in said), said
    titles = [i["title"] for i in client.get("/api/v1/sheets").get_json()["items"]]
    assert titles.count("Atelier mobilité 9") == 1  # not published twice
    # Importing the same file again: the same (source, id), nothing new anywhere.
    again = run_import(path, "data-inclusion", echo=lambda _: None, publish=publish)
    assert again["unchanged"] == 2 and _count() == 3
    assert _count(DuplicateCandidate) == 1 and _count(Revision) == 3
    assert db.session.get(Sheet, imported.id).approved_revision_id is None


def test_export_then_import_into_a_fresh_instance_gives_back_the_vocabulary(
        app: Flask, client: FlaskClient, make_sheet: Callable[..., Revision],
        tmp_path: Path) -> None:
    for n, extra in enumerate(({"zone_eligibilite": ["Bretagne", "29019"], "frais": "payant",
                                "lien_mobilisation": "https://example.org/demande"},
                               {"publics": ["tous-publics"], "zone_eligibilite": ["france"]})):
        make_sheet(title=f"Garage solidaire {n}", city="", department="",
                   thematiques=["mobilite--entretenir-reparer-son-vehicule", "sante--addictions"],
                   publics=extra.pop("publics", ["femmes", "jeunes"]),
                   modes_mobilisation=["se-presenter"], mobilisable_par=["usagers"],
                   mobilisation_precisions="Le matin.", conditions_acces="Aucune.", **extra)
    out = tmp_path / "export.json"
    assert app.test_cli_runner().invoke(
        args=["export", str(out), "--format", "data-inclusion"]).exit_code == 0
    before = {o["title"]: {k: o[k] for k in ORIENTATION}
              for o in client.get("/api/v1/sheets").get_json()["items"]}

    fresh = create_app({**app.config, "SQLALCHEMY_DATABASE_URI":
                        f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
                        "KB_INDEX_DIR": str(tmp_path / "fresh-index"),
                        "KB_SEARCH_BACKEND": "sqlite"})  # a fresh SQLite instance
    with fresh.app_context():
        db.create_all()
        result = fresh.test_cli_runner().invoke(
            args=["import", str(out), "--format", "data-inclusion", "--publish"])
        assert result.exit_code == 0, result.output
        commit()
        after = {o["title"]: {k: o[k] for k in ORIENTATION}
                 for o in fresh.test_client().get("/api/v1/sheets").get_json()["items"]}
        db.session.remove()
        db.engine.dispose()
    assert after == before
