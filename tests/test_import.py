"""Importers: the real seed dump, the full backup round trip, jsonl and csv."""

import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kb.auth.models import User
from kb.extensions import db
from kb.importers import ImportFailed, run_import
from kb.importers.exports import export
from kb.sheets.models import Revision, Sheet, published_sheets

SEED = Path(__file__).parent / "data" / "bazar_seed.txt"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "demo.json"


def import_seed(lines=None):
    return run_import(SEED, "bazar-text", echo=(lines.append if lines is not None else lambda _: None))


def published():
    return db.session.scalars(published_sheets().order_by(Sheet.id)).all()


def test_seed_dump_gives_ten_clean_published_sheets(app):
    lines = []
    counts = import_seed(lines)
    assert counts == {"created": 10, "updated": 0, "unchanged": 0, "skipped": 0, "matched": 0,
                      "distinct": 0}
    sheets = published()
    assert len(sheets) == 10
    assert sheets[0].title == "Accueil en Mairie de brest"
    text = json.dumps([s.approved_revision.data for s in sheets], ensure_ascii=False)
    assert "FloodCRM" not in text and "floodcrm" not in text
    assert "cerLiberté" not in text
    # Each paragraph once: the doubled Brest results paragraph is kept a single time.
    brest = sheets[0].approved_revision.data
    assert brest["results"].count("Le projet a duré 2,5 ans") == 1
    assert brest["method"].count("Suite à cette étape") == 1
    assert brest["tags"] == ["Education"] and brest["partners"] == ["Agence DETEA"]
    assert brest["website"] == "https://www.a-brest.net/article22276.html"


def test_seed_import_reports_spam_duplicates_and_vocabulary_fixes_per_sheet(app):
    lines = []
    import_seed(lines)
    summary = "\n".join(lines)
    assert summary.count(" — créée") == 10
    assert "spam retiré : https://floodcrm.email/" in summary
    assert "spam retiré : FloodCRM" in summary
    assert "Lien web « http:// » invalide" in summary
    assert "Ville « vendée » est un département : Vendée (85)" in summary
    assert lines[-1].startswith("10 fiche(s) lue(s) : 10 créée(s)")


def test_seed_import_maps_labels_and_free_values(app):
    import_seed()
    by_title = {s.title: s.approved_revision.data for s in published()}
    vendee = by_title["D’une MSAP à une Maison France Service en Vendée"]
    assert vendee["department"] == "85" and vendee["city"] == ""
    assert vendee["actor_type"] == "etat"  # "Précisez autre acteur : Préfecture de Vendée…"
    assert "Préfecture de Vendée" in vendee["actor_name"]
    assert vendee["scale"] == "departement"
    lyon = by_title["Innov'Accueil, une démarche d'amélioration de l'accueil en Préfecture"]
    assert lyon["city"] == "Lyon"
    saint_denis = by_title["L'accueil à Saint Denis sur un espace de médiation numérique en test"]
    assert saint_denis["contacts"] == ""  # the only contact was a spam link
    assert saint_denis["context"].startswith("- Ouverture en février 2020")


def test_reimporting_the_seed_updates_the_same_sheets(app):
    import_seed()
    second = import_seed()
    assert second == {"created": 0, "updated": 0, "unchanged": 10, "skipped": 0, "matched": 0,
                      "distinct": 0}
    assert db.session.scalar(select(func.count(Sheet.id))) == 10
    assert db.session.scalar(select(func.count(Revision.id))) == 10


def test_reimport_after_an_edit_in_the_source_adds_one_revision(app, tmp_path):
    import_seed()
    changed = tmp_path / "dump.txt"
    changed.write_text(SEED.read_text().replace("Agence DETEA", "Agence DETEA Brest"))
    counts = run_import(changed, "bazar-text", echo=lambda _: None)
    assert counts["updated"] == 1 and counts["unchanged"] == 9
    assert db.session.scalar(select(func.count(Sheet.id))) == 10


def test_imported_revisions_are_approved_and_authored_by_the_system_user(app):
    import_seed()
    revision = db.session.scalars(select(Revision)).first()
    assert revision.status == "approved"
    assert revision.author.email == "system@kb.local"


def test_backup_round_trip_keeps_sheets_history_and_authorship(app, make_sheet, contributor,
                                                              moderator, tmp_path):
    from kb.sheets import operations
    from kb.transaction import commit

    first = make_sheet(author=moderator)
    pending = operations.edit_sheet(first.sheet, {"city": "Quimper"}, contributor, first.id,
                                    "ville")
    commit()
    slug, pending_data = first.sheet.slug, dict(pending.data)
    out = io.StringIO()
    assert export(out, "json") == 1
    path = tmp_path / "backup.json"
    path.write_text(out.getvalue())

    # Empty the database, then restore.
    db.session.query(Sheet).update({Sheet.approved_revision_id: None})
    db.session.query(Revision).delete()
    db.session.query(Sheet).delete()
    db.session.commit()
    counts = run_import(path, "json", echo=lambda _: None)
    assert counts["created"] == 1
    sheet = db.session.scalar(select(Sheet))
    revisions = db.session.scalars(select(Revision).order_by(Revision.id)).all()
    assert [(r.status, r.author.email, r.data["city"]) for r in revisions] == [
        ("approved", "modo@example.org", "Brest"), ("pending", "contrib@example.org", "Quimper")]
    assert revisions[1].base_revision_id == revisions[0].id
    assert revisions[1].comment == "ville"
    assert sheet.approved_revision_id == revisions[0].id and sheet.city == "Brest"
    assert sheet.slug == slug
    assert pending_data == revisions[1].data


def test_demo_fixtures_load_as_fourteen_published_sheets(app):
    counts = run_import(FIXTURES, "json", echo=lambda _: None)
    assert counts["created"] == 14
    assert len(published()) == 14
    assert db.session.scalar(select(User).where(User.email == "moderatrice@example.org"))


def test_jsonl_export_then_import_into_an_empty_base(app, make_sheet, tmp_path):
    make_sheet(title="Première fiche")
    make_sheet(title="Deuxième fiche", tags=["numérique"])
    out = io.StringIO()
    assert export(out, "jsonl") == 2
    objects = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {o["title"] for o in objects} == {"Première fiche", "Deuxième fiche"}
    assert objects[0]["fresh"] is True and objects[0]["status"] == "approved"

    path = tmp_path / "sheets.jsonl"
    path.write_text(out.getvalue())
    counts = run_import(path, "jsonl", echo=lambda _: None)
    assert counts == {"created": 0, "updated": 0, "unchanged": 2, "skipped": 0, "matched": 0,
                      "distinct": 0}


def test_jsonl_bad_line_is_named(app, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"title": "Bonne"}\n{"title": \n')
    with pytest.raises(ImportFailed, match="ligne 2"):
        run_import(path, "jsonl", echo=lambda _: None)


def test_jsonl_invalid_sheet_is_skipped_with_its_line_and_others_kept(app, tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"title": "Bonne fiche"}\n{"title": "Mauvaise", "scale": "galaxie"}\n')
    lines = []
    counts = run_import(path, "jsonl", echo=lines.append)
    assert counts["created"] == 1 and counts["skipped"] == 1
    assert "ligne 2" in lines[0] and "scale" in lines[0]


def test_csv_export_and_import(app, make_sheet, tmp_path):
    make_sheet(title="Fiche CSV", tags=["accueil", "numérique"])
    out = io.StringIO()
    export(out, "csv")
    header, row = list(csv.reader(io.StringIO(out.getvalue())))
    assert header[:3] == ["slug", "title", "summary"]
    assert row[header.index("tags")] == "accueil | numérique"
    # A leading "-" is neutralised for spreadsheets (tests/test_abuse_csv.py), then restored.
    assert row[header.index("method")] == "'- Immersion\n- Ateliers de co-conception"
    path = tmp_path / "sheets.csv"
    path.write_text(out.getvalue().replace("Fiche CSV", "Fiche CSV modifiée"))
    counts = run_import(path, "csv", echo=lambda _: None)
    assert counts["updated"] == 1
    assert published()[0].title == "Fiche CSV modifiée"
    assert published()[0].approved_revision.data["method"].startswith("- Immersion")


def test_csv_with_unknown_column_is_refused(app, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("title,colonne_inconnue\nA,B\n")
    with pytest.raises(ImportFailed, match="colonne_inconnue"):
        run_import(path, "csv", echo=lambda _: None)


def test_unpublished_sheets_are_not_exported(app, make_sheet, contributor):
    make_sheet(author=contributor, title="En attente")
    for fmt in ("jsonl", "csv"):
        out = io.StringIO()
        assert export(out, fmt) == 0
        assert "En attente" not in out.getvalue()
