"""Measured indicators (issue 26): one declared field, through the form, the API, backup and
CSV, the review diff, filters, /resultats and its comparison, open data, the dashboard.

The figures are those of the seed /work/shared/seeds/004_*.txt (an impact study of a QPV
coaching programme in the Orne, June 2022 - June 2024).
"""

from __future__ import annotations

import csv
import io
import json
import re
from html import unescape

import pytest
from sqlalchemy import select

from kb.extensions import db
from kb.importers import run_import
from kb.importers.exports import export
from kb.sheets import operations
from kb.sheets.fields import FIELDS_BY_NAME, ValidationError, validate
from kb.sheets.models import Revision, Sheet
from kb.transaction import commit

from .conftest import sheet_data

POSITIVE = {"label": "Sorties positives vers l'emploi ou la formation", "kind": "sorties-positives",
            "value": 29, "unit": "%", "target": 25,
            "population": "habitants des QPV engagés dans un coaching", "population_n": 163,
            "period_start": "2022-06-01", "period_end": "2024-06-30",
            "source_type": "etude-impact", "response_rate": None,
            "source_url": "https://example.org/etude-impact-qpv.pdf"}
SATISFACTION = {"label": "Note de l'accompagnement", "kind": "satisfaction", "value": 4.6,
                "unit": "/5", "target": None, "population": "coachés", "population_n": 48,
                "period_start": "2022-06-01", "period_end": "2024-06-30",
                "source_type": "enquete-satisfaction", "response_rate": 45, "source_url": ""}
QPV = {"title": "Mon qu@rtier, ma solution : coaching dans les QPV de l'Orne",
       "results": "29 % de sorties positives contre 25 % attendues. 143 personnes réorientées "
                  "vers un partenaire du territoire. Une note de 4,6/5.",
       "strengths": "Un référent unique, de proximité, sur le long terme.",
       "improvements": "Mettre en place un suivi à 3 et 6 mois après l'accompagnement.",
       "thematiques": ["mobilite--etre-accompagne-dans-son-parcours-mobilite",
                       "trouver-un-emploi--maintien-dans-lemploi"],
       "city": "Alençon", "department": "61"}


def _published(make_sheet, **overrides):
    return make_sheet(**{**QPV, "indicators": [POSITIVE, SATISFACTION], **overrides}).sheet


def _form_fields(page: str) -> dict[str, str]:
    """Every input and selected option of a page's sheet form, as a browser would send it."""
    form = page[page.index('<form method="post" class="sheet-form"'):]
    fields: dict[str, str] = {}
    for tag in re.findall(r"<input[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        if name and 'type="checkbox"' not in tag and 'type="submit"' not in tag:
            value = re.search(r'value="([^"]*)"', tag)
            fields[name.group(1)] = unescape(value.group(1)) if value else ""
    for name, body in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', form, re.S):
        fields[name] = unescape(body).lstrip("\n")
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option selected value="([^"]*)"', body)
        fields[name] = unescape(chosen.group(1)) if chosen else ""
    return fields


# --- the declaration -----------------------------------------------------------------------

def test_indicators_are_cleaned_and_bad_values_refused_in_french():
    cleaned = validate(sheet_data(indicators=[
        {**POSITIVE, "value": "29", "target": "25", "population_n": "163",
         "kind": "Sorties positives (emploi ou formation)"},  # a label is taken for its value
        {"label": "", "value": ""},  # a blank row of the form is dropped
        {**SATISFACTION, "value": "4,6"}]))
    assert cleaned["indicators"] == [POSITIVE, SATISFACTION]
    assert all(f in cleaned for f in ("strengths", "improvements", "spreading"))
    assert FIELDS_BY_NAME["spreading"].label == "Conditions pour essaimer"

    for item, words in (
            ({"value": "beaucoup"}, "« Valeur » : « beaucoup » n'est pas un nombre"),
            ({"value": 120}, "un pourcentage ne dépasse pas 100"),
            ({"target": 101}, "« Objectif » : un pourcentage ne dépasse pas 100"),
            ({"unit": "/5", "value": 6}, "une note sur 5 ne dépasse pas 5"),
            ({"period_end": "2021-12-31"}, "la fin de la période (2021-12-31) est avant son début"),
            ({"period_start": "01/06/2022"}, "n'est pas une date au format AAAA-MM-JJ"),
            ({"population_n": 16.5}, "« Effectif (N) » : doit être un nombre entier"),
            ({"source_type": "rumeur"}, "valeur inconnue « rumeur » pour « Source »"),
            ({"label": ""}, "« Intitulé » : ce champ est obligatoire"),
            ({"couleur": "bleu"}, "champ inconnu « couleur »")):
        with pytest.raises(ValidationError) as refused:
            validate(sheet_data(indicators=[SATISFACTION, {**POSITIVE, **item}]))
        message = refused.value.errors["indicators"]
        assert message.startswith("indicateur 2") and words in message, message


# --- form ----------------------------------------------------------------------------------

def test_form_round_trip_and_french_error_on_the_field(client, login, moderator, make_sheet):
    sheet = _published(make_sheet)
    login(moderator)
    page = client.get(f"/fiches/{sheet.slug}/modifier").get_data(as_text=True)
    fields = _form_fields(page)
    assert fields["indicators-0-value"] == "29" and fields["indicators-1-value"] == "4.6"
    assert fields["indicators-2-label"] == ""  # a blank row to add one more

    # Sent back unchanged: the same indicators (no new revision content).
    saved = client.post(f"/fiches/{sheet.slug}/modifier", data={**fields, "indicators-0-value": "31"})
    assert saved.status_code == 302
    db.session.expire_all()
    approved = db.session.get(Sheet, sheet.id).approved_revision.data["indicators"]
    assert approved == [{**POSITIVE, "value": 31}, SATISFACTION]

    fields = _form_fields(client.get(f"/fiches/{sheet.slug}/modifier").get_data(as_text=True))
    refused = client.post(f"/fiches/{sheet.slug}/modifier",
                          data={**fields, "indicators-0-value": "120"})
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    error = re.search(r'<p class="error" id="indicators-error"[^>]*>(.*?)</p>', page, re.S)
    assert error and "un pourcentage ne dépasse pas 100" in unescape(error.group(1))
    assert 'value="120"' in page  # what was typed is kept


def test_the_editor_offers_indicators_found_in_the_text_and_adds_only_on_request(
        client, login, moderator, make_sheet):
    sheet = _published(make_sheet, indicators=[SATISFACTION])
    login(moderator)
    page = client.get(f"/fiches/{sheet.slug}/modifier").get_data(as_text=True)
    offered = unescape(page[page.index("Chiffres repérés dans vos textes"):])
    assert "« 29 % de sorties positives contre 25 % attendues »" in offered
    assert "143 personnes réorientées" in offered
    assert "4,6/5" not in offered.split("</ul>")[0]  # already an indicator of the sheet
    fields = _form_fields(page)
    assert fields["indicators-1-label"] == ""  # nothing added by itself

    button = re.search(r'name="add_indicator" value="([^"]+)"', page)
    assert button is not None
    added = client.post(f"/fiches/apercu?fiche={sheet.slug}",
                        data={**fields, "add_indicator": unescape(button.group(1))})
    assert added.status_code == 200
    fields = _form_fields(added.get_data(as_text=True))
    assert (fields["indicators-1-label"], fields["indicators-1-value"],
            fields["indicators-1-unit"], fields["indicators-1-target"]) == (
        "Sorties positives", "29", "%", "25")
    db.session.expire_all()
    assert db.session.get(Sheet, sheet.id).approved_revision.data["indicators"] == [SATISFACTION]


# --- API, backup, CSV ----------------------------------------------------------------------

def test_api_round_trip_and_422_naming_the_field(client, moderator, bearer):
    created = client.post("/api/v1/sheets", json=sheet_data(**QPV, indicators=[POSITIVE]),
                          headers=bearer(moderator))
    assert created.status_code == 201
    body = created.get_json()
    assert client.get(f"/api/v1/sheets/{body['slug']}").get_json()["indicators"] == [POSITIVE]
    assert client.get("/api/v1/sheets").get_json()["items"][0]["indicators"] == [POSITIVE]

    edited = client.patch(f"/api/v1/sheets/{body['slug']}", headers=bearer(moderator), json={
        "base_revision": body["revision"], "indicators": [POSITIVE, SATISFACTION]})
    assert edited.status_code == 200
    assert client.get(f"/api/v1/sheets/{body['slug']}").get_json()["indicators"] == [
        POSITIVE, SATISFACTION]

    bad = client.post("/api/v1/sheets", headers=bearer(moderator), json=sheet_data(
        title="Autre", indicators=[{**POSITIVE, "value": "vingt-neuf"}]))
    assert bad.status_code == 422
    assert bad.get_json()["fields"]["indicators"] == (
        "indicateur 1, « Valeur » : « vingt-neuf » n'est pas un nombre (écrivez par exemple 29 ou 4,6)")

    schema = client.get("/api/openapi.json").get_json()
    documented = json.dumps(schema, ensure_ascii=False)
    assert '"indicators"' in documented and '"population_n"' in documented
    assert all(f'"name": "{p}"' in documented for p in ("has_results", "indicator_kind",
                                                          "source_type"))


def test_backup_and_csv_round_trip(app, make_sheet, tmp_path):
    sheet = _published(make_sheet)
    slug = sheet.slug

    out = io.StringIO()
    export(out, "csv")
    header, row = list(csv.reader(io.StringIO(out.getvalue())))
    assert json.loads(row[header.index("indicators")]) == [POSITIVE, SATISFACTION]
    path = tmp_path / "sheets.csv"
    path.write_text(out.getvalue())
    assert run_import(path, "csv", echo=lambda _: None)["unchanged"] == 1

    out = io.StringIO()
    assert export(out, "json") == 1
    backup = tmp_path / "backup.json"
    backup.write_text(out.getvalue())
    db.session.query(Sheet).update({Sheet.approved_revision_id: None})
    db.session.query(Revision).delete()
    db.session.query(Sheet).delete()
    db.session.commit()
    assert run_import(backup, "json", echo=lambda _: None)["created"] == 1
    restored = db.session.scalar(select(Sheet).where(Sheet.slug == slug))
    assert restored.approved_revision.data["indicators"] == [POSITIVE, SATISFACTION]
    # Restored sheets are found by the filters again (sheet_keys written by publish()).
    assert db.session.scalar(select(Sheet.id).where(Sheet.id.in_(
        select(db.metadata.tables["sheet_keys"].c.sheet_id).where(
            db.metadata.tables["sheet_keys"].c.field == "indicators.kind",
            db.metadata.tables["sheet_keys"].c.key == "satisfaction")))) == restored.id


def test_indicators_csv_one_row_per_indicator_spreadsheet_safe(client, make_sheet):
    _published(make_sheet, indicators=[{**POSITIVE, "label": "=HYPERLINK(\"x\")"}, SATISFACTION])
    response = client.get("/donnees/indicateurs.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["value"] for r in rows] == ["29", "4.6"]
    assert rows[0]["label"] == "'=HYPERLINK(\"x\")"  # never run as a formula
    assert rows[1]["source_type_label"] == "Enquête de satisfaction"
    assert rows[1]["response_rate"] == "45" and rows[1]["population_n"] == "48"
    assert rows[0]["period_start"] == "2022-06-01" and rows[0]["sheet_url"].endswith(rows[0]["sheet_slug"])


# --- review -------------------------------------------------------------------------------

def test_the_review_diff_shows_the_indicator_that_changed(client, login, make_sheet, contributor,
                                                          moderator):
    sheet = _published(make_sheet)
    pending = operations.edit_sheet(sheet, {"indicators": [{**POSITIVE, "value": 31},
                                                           SATISFACTION]},
                                    contributor, sheet.approved_revision_id, "chiffre 2024")
    commit()
    login(moderator)
    page = client.get(f"/fiches/{sheet.slug}/diff", query_string={
        "from": sheet.approved_revision_id, "to": pending.id}).get_data(as_text=True)
    assert "Résultats mesurés" in page
    assert "<del>29</del><ins>31</ins>" in page
    # One line per indicator: the unchanged one is not marked.
    assert "<del>Note" not in page and "<ins>Note" not in page
    review = client.get(f"/moderation/revisions/{pending.id}").get_data(as_text=True)
    assert "Résultats mesurés" in review and "<del>29</del><ins>31</ins>" in review


# --- readers -------------------------------------------------------------------------------

def test_the_sheet_page_shows_each_indicator_with_its_chart_and_text(client, make_sheet):
    sheet = _published(make_sheet)
    page = client.get(f"/fiches/{sheet.slug}").get_data(as_text=True)
    block = page[page.index('id="f-indicators"'):]
    svgs = re.findall(r"<svg[^>]*>", block)
    assert len(svgs) == 2 and all('role="img"' in svg for svg in svgs)
    label = unescape(re.search(r'aria-label="([^"]+)"', svgs[0]).group(1))
    assert label == ("Sorties positives vers l'emploi ou la formation : 29\u202f%, pour un "
                     "objectif de 25\u202f%")
    text = unescape(re.sub(r"<[^>]+>", " ", block))
    assert "pour un objectif de 25\u202f%" in text  # the same figures, written
    assert "du 1er juin 2022 au 30 juin 2024" in text
    assert "enquête de satisfaction, N = 48, 45\u202f% de réponses" in text
    assert "<script" not in block.split("</section>")[0]
    # Lessons learned come after the results.
    assert page.index('id="f-indicators"') < page.index('id="f-strengths"')
    jsonld = json.loads(re.search(r'application/ld\+json">(.*?)</script>', page, re.S).group(1))
    assert [m["value"] for m in jsonld["mentions"]] == [29, 4.6]
    assert jsonld["mentions"][0]["observationPeriod"] == "2022-06-01/2024-06-30"


def test_filters_has_results_kind_and_source(client, make_sheet):
    measured = _published(make_sheet)
    other = make_sheet(title="Accueil sans chiffres").sheet
    satisfaction_only = make_sheet(title="Enquête seule", indicators=[SATISFACTION]).sheet

    def slugs(url, **params):
        body = client.get(url, query_string=params).get_json()
        return sorted(item["slug"] for item in body["items"])

    assert slugs("/api/v1/search", has_results=1) == sorted([measured.slug, satisfaction_only.slug])
    assert slugs("/api/v1/sheets", has_results="oui") == sorted([measured.slug,
                                                                 satisfaction_only.slug])
    assert len(slugs("/api/v1/search", has_results=0)) == 3  # 0: no filter
    assert slugs("/api/v1/search", indicator_kind="sorties-positives") == [measured.slug]
    assert slugs("/api/v1/search", source_type="Enquête de satisfaction") == sorted(
        [measured.slug, satisfaction_only.slug])
    facets = client.get("/api/v1/search").get_json()["facets"]
    assert facets["has_results"] == {"1": 2} and facets["indicator_kind"]["satisfaction"] == 2
    bad = client.get("/api/v1/search", query_string={"indicator_kind": "bonheur"})
    assert bad.status_code == 400 and "Type d'indicateur" in bad.get_json()["message"]
    listing = client.get("/fiches", query_string={"has_results": 1}).get_data(as_text=True)
    assert measured.title in unescape(listing) and other.title not in unescape(listing)
    page = client.get("/recherche", query_string={"source_type": "etude-impact"})
    assert page.status_code == 200 and measured.title in unescape(page.get_data(as_text=True))


def test_results_page_plots_one_kind_across_sheets_with_period_and_n(client, make_sheet):
    first = _published(make_sheet)
    second = make_sheet(title="Garage solidaire de Flers",
                        thematiques=["mobilite--entretenir-reparer-son-vehicule"],
                        indicators=[{**POSITIVE, "value": 41, "target": None,
                                     "population_n": 60, "source_type": "bilan-interne",
                                     "period_start": "2023-01-01", "period_end": "2023-12-31"}]
                        ).sheet
    make_sheet(title="Enquête seule", indicators=[SATISFACTION])
    response = client.get("/resultats", query_string={"kind": "sorties-positives"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    svg = re.search(r'<svg class="dot-plot"[^>]*>', page).group(0)
    assert 'role="img"' in svg and "2 valeurs, de 29" in unescape(svg)
    assert page.count("<circle") == 2
    text = unescape(re.sub(r"<[^>]+>", " ", page))
    assert "ne sont pas directement comparables" in text
    assert "du 1er janvier 2023 au 31 décembre 2023" in text and "bilan interne, N = 60" in text
    assert "Enquête seule" not in text

    by_theme = client.get("/resultats", query_string={
        "kind": "sorties-positives", "thematique": "mobilite"}).get_data(as_text=True)
    assert second.title in unescape(by_theme) and first.title in unescape(by_theme)
    assert client.get("/resultats", query_string={"kind": "bonheur"}).status_code == 400
    assert client.get("/resultats", query_string={"thematique": "lune"}).status_code == 400


def test_comparison_of_up_to_four_sheets_side_by_side(client, make_sheet, contributor):
    first = _published(make_sheet)
    second = make_sheet(title="Garage solidaire de Flers", indicators=[SATISFACTION]).sheet
    unpublished = make_sheet(author=contributor, title="Brouillon Tatouinesecret",
                             indicators=[POSITIVE]).sheet
    page = client.get("/resultats/comparer", query_string={
        "fiches": f"{first.slug},{second.slug},{unpublished.slug}"}).get_data(as_text=True)
    columns = re.findall(r'<section class="compare-column".*?</section>', page, re.S)
    assert len(columns) == 3
    assert first.title in unescape(columns[0]) and columns[0].count('role="img"') == 2
    assert "Garage solidaire" in columns[1] and columns[1].count('role="img"') == 1
    assert "Fiche introuvable" in columns[2] and "Tatouinesecret" not in page
    # The checkboxes of /resultats send fiches=a&fiches=b.
    both = client.get(f"/resultats/comparer?fiches={first.slug}&fiches={second.slug}")
    assert both.get_data(as_text=True).count('class="compare-column"') == 2
    five = client.get("/resultats/comparer", query_string={"fiches": "a,b,c,d,e"})
    assert five.status_code == 400 and "au plus 4 fiches" in five.get_data(as_text=True)


def test_dashboard_shows_the_share_of_sheets_with_a_measured_result(client, login, make_sheet,
                                                                   moderator):
    _published(make_sheet)
    make_sheet(title="Sans chiffres")
    make_sheet(title="Toujours sans chiffres")
    make_sheet(title="Encore sans chiffres")
    login(moderator)
    page = unescape(client.get("/moderation/tableau-de-bord").get_data(as_text=True))
    assert "25 % des fiches publiées avec au moins un résultat mesuré (1 sur 4)" in " ".join(
        re.sub(r"<[^>]+>", " ", page).split())


def test_an_edit_conflict_on_indicators_keeps_the_writers_rows(client, login, make_sheet,
                                                               moderator):
    sheet = _published(make_sheet)
    login(moderator)
    fields = _form_fields(client.get(f"/fiches/{sheet.slug}/modifier").get_data(as_text=True))
    operations.edit_sheet(sheet, {"indicators": [{**POSITIVE, "value": 30}]}, moderator,
                          sheet.approved_revision_id, "autre modification")
    commit()
    conflict = client.post(f"/fiches/{sheet.slug}/modifier",
                           data={**fields, "indicators-0-value": "31"})
    assert conflict.status_code == 409
    page = conflict.get_data(as_text=True)
    assert "Résultats mesurés" in page
    assert 'name="indicators-0-value" type="text" value="31"' in page  # the writer's own text
    assert "Sorties positives vers l&#39;emploi ou la formation : 30" in page  # the other one


def test_finding_figures_stays_fast_whatever_is_pasted():
    """The editor reads figures on every form shown: bounded regular expressions, a bounded
    part of each text (a run of 20,000 digits once took minutes)."""
    import time

    from kb.sheets.indicators import suggestions

    texts = {"results": "1" * 20_000, "context": "5 % de sorties " * 1_400,
             "method": "123 " * 5_000, "summary": "12 personnes " * 1_500}
    started = time.perf_counter()
    found = suggestions(texts)
    assert time.perf_counter() - started < 2.0  # about 0.1 s (bench/suggestions.py)
    assert [s.item["value"] for s in found] == [12, 5]  # summary first, then results...
