"""Duplicates: similar sheets while writing, the moderators' queue, merge with redirects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kb.config import PROJECT_ROOT
from kb.duplicates import index
from kb.duplicates.models import DuplicateCandidate, DuplicateFeature, DuplicateFingerprint
from kb.duplicates.operations import merge
from kb.duplicates.similarity import HIGH, Fingerprint, score
from kb.extensions import db
from kb.importers import run_import
from kb.sheets import operations
from kb.sheets.models import Sheet
from kb.transaction import commit
from tests.conftest import sheet_data

BREST = sheet_data(
    title="Accueil en mairie de Brest",
    context="Lancement en 2017 d'un projet d'amélioration de l'accueil des usagers dans le hall "
            "de l'hôtel de ville, qui reçoit quelque 500 personnes chaque jour.",
    stakes="Améliorer l'orientation, l'attente, la confidentialité et l'atmosphère du hall. "
           "Porter autant d'attention aux agents qu'aux usagers pendant tout le projet.",
    method="Immersion et interviews, ateliers entre agents et usagers, fabrication de "
           "prototypes de guichets et de mobilier, neuf mois d'essais et d'ajustements avec "
           "une dizaine d'agents explorateurs et les services techniques de la ville.",
    results="Réagencement des espaces, nouveau mobilier, nouvelle signalétique et gestion de la "
            "file d'attente, livrés en février 2020 après deux ans et demi de projet.",
)
# The same initiative, written again by someone else: title reworded, accents dropped,
# fields in another order, a paragraph edited.
REWORDED = sheet_data(
    title="Brest : l'accueil de l'hotel de ville repense",
    context="Ameliorer l'orientation, l'attente, la confidentialite et l'atmosphere du hall. "
            "Porter autant d'attention aux agents qu'aux usagers pendant tout le projet.",
    stakes="Lancement en 2017 d'un projet d'amelioration de l'accueil des usagers dans le hall "
           "de l'hotel de ville, qui recoit environ 500 personnes chaque jour.",
    method="Immersion et interviews, ateliers entre agents et usagers, fabrication de "
           "prototypes de guichets et de mobilier, neuf mois d'essais et d'ajustements avec "
           "les agents explorateurs et les services techniques.",
    results="Reagencement des espaces, nouveau mobilier, nouvelle signaletique et gestion de la "
            "file d'attente, livres en fevrier 2020.",
    tags=["accueil", "mairie"], partners=["Agence DETEA", "Designers de Brest"],
)
# Another initiative by the same actor in the same city.
SAME_CITY = sheet_data(
    title="Ateliers numériques à la médiathèque de Brest",
    context="Des habitants éloignés du numérique demandent de l'aide pour leurs démarches en "
            "ligne : déclaration de revenus, dossiers de la CAF, prise de rendez-vous.",
    stakes="Rendre les personnes autonomes avec leur téléphone et leur messagerie.",
    method="Deux ateliers par semaine animés par un conseiller numérique, sur inscription, "
           "avec prêt de tablettes et un accompagnement individuel les samedis matin.",
    results="Trois cents personnes accompagnées la première année, un guide publié.",
    tags=["numérique", "inclusion"],
)


def fingerprints() -> int:
    return db.session.scalar(select(func.count()).select_from(DuplicateFingerprint)) or 0


def candidates() -> list[DuplicateCandidate]:
    return list(db.session.scalars(select(DuplicateCandidate).order_by(DuplicateCandidate.id)))


@pytest.fixture
def demo(app):
    run_import(PROJECT_ROOT / "fixtures" / "demo.json", "json", echo=lambda _: None)


# --- similarity -------------------------------------------------------------------------------

def test_reworded_copy_scores_above_the_threshold_and_another_initiative_below():
    original = Fingerprint.of(BREST)
    assert score(original, Fingerprint.of(REWORDED)) >= HIGH
    assert score(original, Fingerprint.of(SAME_CITY)) < HIGH / 2
    assert score(original, Fingerprint.of(BREST)) == 1.0


# --- the lookup index follows commits ---------------------------------------------------------

def test_index_follows_publication_and_leaves_pending_sheets_out(make_sheet, contributor,
                                                                  moderator):
    make_sheet(**BREST)
    pending = make_sheet(author=contributor, **SAME_CITY)
    assert fingerprints() == 1
    operations.approve_revision(pending, moderator)
    commit()
    assert fingerprints() == 2
    assert index.stale_sheet_ids() == []


def test_stale_rows_are_found_and_repaired(make_sheet):
    first = make_sheet(**BREST)
    db.session.execute(DuplicateFeature.__table__.delete())
    db.session.execute(DuplicateFingerprint.__table__.delete())
    db.session.commit()
    assert index.stale_sheet_ids() == [first.sheet_id]
    index.sync(index.stale_sheet_ids())
    db.session.commit()
    assert fingerprints() == 1 and index.stale_sheet_ids() == []


# --- GET /api/v1/sheets/similar ---------------------------------------------------------------

def test_typing_the_title_of_a_seed_sheet_proposes_it_first(client, demo):
    response = client.get("/api/v1/sheets/similar", query_string={"title": "Accueil en mairie de Brest"})
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert items[0]["slug"] == "accueil-en-mairie-de-brest"
    assert items[0]["url"] == "http://kb.test/fiches/accueil-en-mairie-de-brest"
    assert items[0]["score"] == 1.0
    assert all(0 <= item["score"] <= 1 for item in items)
    assert set(items[0]) == {"slug", "title", "url", "score"}


def test_similar_is_routed_before_the_sheet_slug_route(client, app):
    adapter = app.url_map.bind("kb.test")
    assert adapter.match("/api/v1/sheets/similar", method="GET")[0] == "duplicates.similar_api"
    assert adapter.match("/api/v1/sheets/autre", method="GET")[0] == "api.get_sheet"


def test_similar_without_query_finds_nothing_and_too_long_is_a_clear_400(client):
    # Nothing typed, nothing similar (schemathesis: a request the schema allows is accepted).
    response = client.get("/api/v1/sheets/similar")
    assert response.status_code == 200 and response.get_json() == {"items": []}
    response = client.get("/api/v1/sheets/similar", query_string={"title": "x" * 400})
    assert response.status_code == 400 and "title" in response.get_json()["message"]


def test_similar_proposes_only_published_sheets(client, make_sheet, contributor):
    make_sheet(author=contributor, **BREST)  # pending
    response = client.get("/api/v1/sheets/similar", query_string={"title": BREST["title"]})
    assert response.get_json()["items"] == []


def test_similar_with_text_finds_a_reworded_sheet(client, make_sheet):
    make_sheet(**BREST)
    make_sheet(**SAME_CITY)
    response = client.get("/api/v1/sheets/similar", query_string={
        "title": REWORDED["title"], "text": REWORDED["context"] + " " + REWORDED["stakes"]})
    slugs = [i["slug"] for i in response.get_json()["items"]]
    assert slugs[0] == "accueil-en-mairie-de-brest"


def test_openapi_documents_similar(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    assert "/api/v1/sheets/similar" in paths


# --- the new-sheet form -----------------------------------------------------------------------

def _form(data, **extra):
    body = {k: "\n".join(v) if isinstance(v, list) else v for k, v in data.items()}
    body.update(extra)
    return body


def test_form_page_loads_the_similar_script(client, login, contributor):
    login(contributor)
    page = client.get("/fiches/nouvelle").get_data(as_text=True)
    assert "js/similar.js" in page and 'data-url="/api/v1/sheets/similar"' in page


def test_reworded_copy_needs_an_explicit_confirmation_with_a_reason(client, login, contributor,
                                                                    make_sheet):
    original = make_sheet(**BREST)
    login(contributor)
    first = client.post("/fiches/nouvelle", data=_form(REWORDED))
    page = first.get_data(as_text=True)
    assert first.status_code == 200
    assert "Cette initiative existe peut-être déjà" in page
    assert "/fiches/accueil-en-mairie-de-brest" in page
    assert db.session.scalar(select(func.count()).select_from(Sheet)) == 1

    unconfirmed = client.post("/fiches/nouvelle", data=_form(REWORDED, duplicates_seen="1"))
    assert unconfirmed.status_code == 422
    assert "autre initiative" in unconfirmed.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Sheet)) == 1

    confirmed = client.post("/fiches/nouvelle", data=_form(
        REWORDED, duplicates_seen="1", distinct="1", distinct_reason="Un autre hall, rue Jaurès"))
    assert confirmed.status_code == 302
    [pair] = candidates()
    new = db.session.scalar(select(Sheet).where(Sheet.id != original.sheet_id))
    assert {pair.sheet_a_id, pair.sheet_b_id} == {original.sheet_id, new.id}
    assert pair.reason == "Un autre hall, rue Jaurès" and pair.source == "create"
    assert pair.created_by_id == contributor.id and pair.status == "open"


def test_a_loose_match_is_only_a_hint(client, login, contributor, make_sheet):
    make_sheet(**BREST)
    login(contributor)
    data = _form(SAME_CITY, title="Accueil numérique en mairie de Brest")
    first = client.post("/fiches/nouvelle", data=data)
    page = first.get_data(as_text=True)
    assert "Cette initiative existe peut-être déjà" in page
    confirmation = page[page.index('id="distinct-confirmation"'):]
    assert confirmation[:confirmation.index(">")].rstrip().endswith("hidden")
    second = client.post("/fiches/nouvelle", data={**data, "duplicates_seen": "1"})
    assert second.status_code == 302
    assert candidates() == []


def test_nothing_similar_saves_at_once(client, login, contributor, make_sheet):
    make_sheet(**BREST)
    login(contributor)
    response = client.post("/fiches/nouvelle", data=_form(sheet_data(
        title="Bus itinérant des services publics en Ariège", context="Un bus sillonne "
        "les vallées pour rapprocher les services publics des habitants isolés.", stakes="",
        method="", results="", tags=["mobilité"], city="Foix", department="09",
        actor_name="Département")))
    assert response.status_code == 302


# --- scan and queue ---------------------------------------------------------------------------

def test_scan_queues_the_copy_not_the_other_initiative_and_respects_decisions(
        app, make_sheet, client, login, moderator):
    a = make_sheet(**BREST)
    b = make_sheet(**REWORDED)
    make_sheet(**SAME_CITY)
    # Each publication is compared with the base at once: the pair is queued without a scan.
    db.session.execute(DuplicateCandidate.__table__.delete())
    db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["duplicates", "scan"])
    assert result.exit_code == 0, result.output
    assert "1 nouvelle(s)" in result.output
    [pair] = candidates()
    assert {pair.sheet_a_id, pair.sheet_b_id} == {a.sheet_id, b.sheet_id}
    assert pair.score >= HIGH and pair.source == "scan"

    login(moderator)
    queue = client.get("/moderation/doublons").get_data(as_text=True)
    assert "Accueil en mairie de Brest" in queue
    compare = client.get(f"/moderation/doublons/{pair.id}")
    assert compare.status_code == 200
    assert "<del>" in compare.get_data(as_text=True) and "<ins>" in compare.get_data(as_text=True)
    assert client.post(f"/moderation/doublons/{pair.id}/pas-un-doublon").status_code == 302
    db.session.expire_all()
    assert candidates()[0].status == "not_duplicate"
    again = runner.invoke(args=["duplicates", "scan"])
    assert "0 nouvelle(s)" in again.output
    assert len(candidates()) == 1
    assert "Accueil en mairie de Brest" not in client.get("/moderation/doublons").get_data(as_text=True)


def test_queue_is_for_moderators_only(client, login, contributor):
    login(contributor)
    assert client.get("/moderation/doublons").status_code == 403


def test_queue_asks_anonymous_readers_to_log_in(client):
    assert client.get("/moderation/doublons").status_code == 302


# --- merge ------------------------------------------------------------------------------------

def test_merge_keeps_chosen_fields_unites_lists_redirects_and_keeps_both_histories(
        app, make_sheet, make_user, client, login, moderator, smtp):
    writer = make_user("contributor", trusted=True, email="ecrit@example.org")
    a = make_sheet(**BREST)
    b = make_sheet(author=writer, **REWORDED)
    [pair] = candidates()  # queued when b was published
    login(moderator)
    response = client.post(f"/moderation/doublons/{pair.id}/fusionner", data={
        "survivor": "a", "field_results": "b", "field_title": "a"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/fiches/accueil-en-mairie-de-brest")
    db.session.expire_all()
    survivor, merged = db.session.get(Sheet, a.sheet_id), db.session.get(Sheet, b.sheet_id)
    assert merged.state == "merged" and merged.merged_into_id == survivor.id
    data = survivor.approved_revision.data
    assert survivor.approved_revision.reviewed_by_id == moderator.id
    assert survivor.approved_revision.author_id == moderator.id
    assert data["title"] == BREST["title"] and data["results"] == REWORDED["results"]
    assert data["stakes"] == BREST["stakes"]
    assert data["partners"] == ["Agence DETEA", "Designers de Brest"]
    assert data["tags"] == ["accueil", "design de service", "mairie"]
    assert db.session.get(DuplicateCandidate, pair.id).status == "merged"

    page = client.get(f"/fiches/{merged.slug}")
    assert page.status_code == 301 and page.headers["Location"].endswith(f"/fiches/{survivor.slug}")
    api = client.get(f"/api/v1/sheets/{merged.slug}")
    assert api.status_code == 301
    assert api.headers["Location"].endswith(f"/api/v1/sheets/{survivor.slug}")
    login(None)
    assert client.get(f"/api/v1/sheets/{merged.slug}").status_code == 301
    history = client.get(f"/fiches/{merged.slug}/historique")
    assert history.status_code == 200 and "hotel de ville repense" in history.get_data(as_text=True)
    old = client.get(f"/fiches/{merged.slug}?revision={b.id}")
    assert old.status_code == 200
    assert client.get(f"/fiches/{survivor.slug}/historique").status_code == 200
    # Both contributors are told; the merged sheet leaves the lookup index.
    # One mail to each author of both sheets, never to the moderator who merged, and no mail
    # shows another person's address.
    told = sorted(m["To"] for m in smtp.messages)
    assert told == sorted(["ecrit@example.org", a.author.email])
    for message in smtp.messages:
        others = {"ecrit@example.org", a.author.email, "modo@example.org"} - {message["To"]}
        assert not any(o in message.as_string() for o in others), message["To"]
    assert [fp.sheet_id for fp in db.session.scalars(select(DuplicateFingerprint))] == [a.sheet_id]
    similar = client.get("/api/v1/sheets/similar", query_string={"title": REWORDED["title"]})
    assert merged.slug not in [i["slug"] for i in similar.get_json()["items"]]


def test_merge_refuses_a_sheet_with_a_pending_edit(make_sheet, contributor, moderator):
    a = make_sheet(**BREST)
    b = make_sheet(**REWORDED)
    operations.edit_sheet(b.sheet, {"city": "Quimper"}, contributor, b.id)
    commit()
    with pytest.raises(ValueError, match="en attente"):
        merge(a.sheet, b.sheet, {}, moderator)


# --- import -----------------------------------------------------------------------------------

def _jsonl(tmp_path: Path, *objects) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(o, ensure_ascii=False) for o in objects), "utf-8")
    return path


def test_import_of_a_duplicate_updates_the_existing_sheet(app, make_sheet, tmp_path):
    original = make_sheet(**BREST)
    lines: list[str] = []
    counts = run_import(_jsonl(tmp_path, {**REWORDED, "slug": "brest-accueil-copie"}), "jsonl",
                        echo=lines.append)
    assert counts["matched"] == 1 and counts["created"] == 0
    assert db.session.scalar(select(func.count()).select_from(Sheet)) == 1
    db.session.expire_all()
    assert db.session.get(Sheet, original.sheet_id).title == REWORDED["title"]
    assert any("accueil-en-mairie-de-brest" in line and "doublon" in line for line in lines)


def test_import_marked_distinct_creates_the_sheet_and_queues_the_pair(app, make_sheet, tmp_path):
    original = make_sheet(**BREST)
    lines: list[str] = []
    counts = run_import(_jsonl(tmp_path, {**REWORDED, "slug": "autre-accueil",
                                          "distinct_from_existing": True}), "jsonl",
                        echo=lines.append)
    assert counts["distinct"] == 1
    [pair] = candidates()
    new = db.session.scalar(select(Sheet).where(Sheet.slug == "autre-accueil"))
    assert {pair.sheet_a_id, pair.sheet_b_id} == {original.sheet_id, new.id}
    assert pair.source == "import"
    assert "1 créée(s) malgré une fiche très proche" in lines[-1]


def test_import_of_another_initiative_creates_it(app, make_sheet, tmp_path):
    make_sheet(**BREST)
    counts = run_import(_jsonl(tmp_path, SAME_CITY), "jsonl", echo=lambda _: None)
    assert counts["created"] == 1 and counts["matched"] == 0


def test_rows_of_one_file_are_not_matched_to_each_other_but_the_scan_queues_them(
        app, make_sheet, tmp_path):
    make_sheet(**SAME_CITY)  # the base is not empty, and holds neither of the two rows
    path = _jsonl(tmp_path, {**BREST, "slug": "brest-1"}, {**REWORDED, "slug": "brest-2"})
    counts = run_import(path, "jsonl", echo=lambda _: None)
    assert counts["created"] == 2 and counts["matched"] == 0
    result = app.test_cli_runner().invoke(args=["duplicates", "scan"])
    assert result.exit_code == 0, result.output
    pairs = [{db.session.get(Sheet, c.sheet_a_id).slug, db.session.get(Sheet, c.sheet_b_id).slug}
             for c in candidates()]
    assert {"brest-1", "brest-2"} in pairs


def test_rebuild_command_recomputes_the_index_from_the_database(app, make_sheet):
    make_sheet(**BREST)
    make_sheet(**SAME_CITY)
    db.session.execute(DuplicateFeature.__table__.delete())
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["duplicates", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "2 fiche(s) indexée(s)" in result.output
    response = app.test_client().get("/api/v1/sheets/similar", query_string={"title": BREST["title"]})
    assert response.get_json()["items"][0]["slug"] == "accueil-en-mairie-de-brest"


def test_the_duplicates_queue_is_reachable_from_the_moderation_menu(client, login, moderator):
    login(moderator)
    assert 'href="/moderation/doublons"' in client.get("/moderation").get_data(as_text=True)
    queue = client.get("/moderation/doublons").get_data(as_text=True)
    assert 'aria-current="page"' in queue and "Doublons à examiner" in queue
