"""The last mile for readers and moderators (issue 13): pages people expect, French wording,
one similarity score, moderation that needs no operator. Everything through HTTP responses."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import func, select

from kb.duplicates.models import DuplicateCandidate
from kb.extensions import db
from kb.moderation.models import AuditEntry
from kb.sheets import operations
from kb.sheets.models import Revision, Sheet
from kb.transaction import commit
from kb.wording import plural
from tests.conftest import sheet_data
from tests.test_duplicates import BREST, REWORDED, SAME_CITY


def html(response) -> str:
    return response.get_data(as_text=True)


def main(response) -> str:
    """The page's own content, without the header's search box and the footer."""
    text = html(response)
    return text[text.index("<main"):text.index("</main>")]


def form_body(data, **extra):
    body = {k: "\n".join(v) if isinstance(v, list) else v for k, v in data.items()}
    body.update(extra)
    return body


# --- French plurals ---------------------------------------------------------------------------

def test_plural_is_french_singular_below_two():
    assert plural(0, "fiche") == "0 fiche"
    assert plural(1, "fiche") == "1 fiche"
    assert plural(2, "fiche") == "2 fiches"
    assert plural(2, "fiche publiée", "fiches publiées") == "2 fiches publiées"
    assert plural(12345, "fiche") == "12\u202f345 fiches"
    assert plural(3, "révision", with_number=False) == "révisions"


def test_counts_on_pages_use_french_plurals(client, make_sheet, moderator, login):
    assert "<strong>0 fiche</strong>" in main(client.get("/fiches"))
    make_sheet(title="Seule fiche", tags=["accueil"])
    assert "<strong>1 fiche</strong>" in main(client.get("/fiches"))
    make_sheet(title="Deuxième fiche", tags=["accueil"])
    assert "<strong>2 fiches</strong>" in main(client.get("/fiches"))
    assert "La base compte 2 fiches publiées" in html(client.get("/donnees"))
    login(moderator)
    dashboard = html(client.get("/moderation/tableau-de-bord"))
    assert re.search(r'class="count">0</span> révision en attente<', dashboard)
    assert "0 révisions" not in dashboard and "0 fiches" not in dashboard


# --- listings: /fiches, tag pages, scale pages -------------------------------------------------

@pytest.fixture
def three(make_sheet):
    return [
        make_sheet(title="Brest accueille", tags=["accueil"], scale="commune",
                   actor_type="association", city="Brest", department="29"),
        make_sheet(title="Atelier de Quimper", tags=["accueil", "numérique"], scale="quartier",
                   actor_type="commune", city="Quimper", department="Finistère"),
        make_sheet(title="Nantes jardine", tags=["alimentation"], scale="quartier",
                   actor_type="collectif", city="Nantes", department="44"),
    ]


def test_tag_page_is_a_real_page(client, three):
    response = client.get("/tags/accueil")
    assert response.status_code == 200
    page = html(response)
    assert "<h1>Mot-clé : accueil</h1>" in page
    assert "<title>Mot-clé : accueil · Fiches initiatives</title>" in page
    assert "Les fiches publiées avec le mot-clé « accueil »." in page
    assert "<strong>2 fiches</strong>" in page
    assert "Brest accueille" in page and "Atelier de Quimper" in page
    assert "Nantes jardine" not in page
    assert ('<link rel="alternate" type="application/atom+xml" title="Mot-clé « accueil »" '
            'href="/donnees/flux/mots-cles/accueil.atom">') in page
    assert 'class="feed-link" href="/donnees/flux/mots-cles/accueil.atom"' in page
    assert '<select id="sort" name="sort">' in page


def test_scale_page_is_a_real_page(client, three):
    response = client.get("/echelle/quartier")
    assert response.status_code == 200
    page = main(response)
    assert "<h1>Échelle : quartier</h1>" in page and "<strong>2 fiches</strong>" in page
    assert "Atelier de Quimper" in page and "Nantes jardine" in page
    assert "Brest accueille" not in page
    assert 'href="/donnees/flux/echelles/quartier.atom"' in html(response)
    assert client.get("/echelle/galaxie").status_code == 404


def test_unknown_tag_is_a_french_404(client, three):
    response = client.get("/tags/n-existe-pas")
    assert response.status_code == 404
    page = html(response)
    assert "Page introuvable" in page and "mot-clé « n-existe-pas »" in page


def test_listing_sorts(client, three):
    by_title = main(client.get("/fiches?sort=title"))
    positions = [by_title.index(t) for t in ("Atelier de Quimper", "Brest accueille",
                                             "Nantes jardine")]
    assert positions == sorted(positions)
    assert '<option value="title" selected>' in by_title
    newest = main(client.get("/fiches"))
    assert newest.index("Nantes jardine") < newest.index("Brest accueille")


def test_fiches_has_the_same_filters_with_removable_chips(client, three):
    page = main(client.get("/fiches?department=29&scale=quartier"))
    # "29" and "Finistère" are one département; the scale narrows to Quimper.
    assert "<strong>1 fiche</strong> avec ces filtres" in page
    assert "Atelier de Quimper" in page and "Brest accueille" not in page
    assert "Département : <strong>Finistère (29)</strong>" in page
    assert 'href="/fiches?scale=quartier">retirer' in page
    assert 'href="/fiches?department=29">retirer' in page
    assert "Retirer tous les filtres" in page
    nothing = main(client.get("/fiches?tag=inconnu"))
    assert "<strong>0 fiche</strong>" in nothing and 'href="/fiches">retirer' in nothing


def test_facet_labels_do_not_repeat_counts(client, three):
    page = main(client.get("/fiches"))
    assert "Finistère (29)</a> <span class=\"facet-count\">2 fiches</span>" in page
    assert "(29) (" not in page


def test_page_past_the_end_goes_to_the_last_page(client, make_sheet):
    for n in range(3):
        make_sheet(title=f"Fiche {n}")
    response = client.get("/fiches?page=999&sort=title")
    assert response.status_code == 302 and response.location == "/fiches?sort=title"
    assert client.get("/tags/accueil?page=50").location == "/tags/accueil"


def test_home_advertises_the_atom_feeds(client):
    page = html(client.get("/"))
    assert '<link rel="alternate" type="application/atom+xml" title="Nouvelles fiches" ' \
           'href="/donnees/flux/nouvelles-fiches.atom">' in page
    assert "Suivre les nouveautés" in page
    assert '<a href="/donnees/flux/modifications.atom">Dernières modifications</a>' in page


def test_feeds_point_back_to_the_tag_and_scale_pages(client, three):
    assert 'href="http://kb.test/tags/accueil"' in html(
        client.get("/donnees/flux/mots-cles/accueil.atom"))
    assert 'href="http://kb.test/echelle/quartier"' in html(
        client.get("/donnees/flux/echelles/quartier.atom"))


def test_cards_say_what_each_value_is(client, three):
    page = main(client.get("/fiches"))
    assert "Lieu : Brest, Finistère (29) · Échelle : commune · Porteur : association" in page
    assert "Commune · Commune" not in page


# --- search bugs ------------------------------------------------------------------------------

def test_punctuation_only_search_is_an_empty_query_with_a_message(client, three):
    page = main(client.get("/recherche", query_string={"q": "?!;:"}))
    assert "pour « ?!;: »" not in page
    assert "ne contient ni lettre ni chiffre" in page
    assert "<strong>3 fiches</strong>" in page
    api = client.get("/api/v1/search", query_string={"q": "?!;:"}).get_json()
    assert api["total"] == 3 and "ni lettre ni chiffre" in api["message"]


def test_search_page_past_the_end_goes_to_the_last_page(client, three):
    response = client.get("/recherche?q=accueil&page=999")
    assert response.status_code == 302 and response.location == "/recherche?q=accueil"


def test_did_you_mean_keeps_the_accents(client, make_sheet):
    make_sheet(**sheet_data(title="Médiation numérique à Quimper", city="Quimper",
                            context="Des ateliers de médiation numérique pour les habitants.",
                            tags=["numérique"]))
    page = main(client.get("/recherche", query_string={"q": "mediation numerkiue"}))
    assert "Vouliez-vous dire" in page
    assert ">médiation numérique</a>" in page


def test_search_facets_do_not_repeat_counts(client, three):
    page = main(client.get("/recherche"))
    assert "Finistère (29)</a> <span class=\"facet-count\">2 fiches</span>" in page
    assert "(29) (" not in page


# --- sheet pages --------------------------------------------------------------------------------

def test_creating_a_sheet_says_fiche_creee(client, contributor, moderator, login):
    login(contributor)
    pending = client.post("/fiches/nouvelle", data={"title": "Ma nouvelle fiche"},
                          follow_redirects=True)
    assert "Fiche créée : elle sera publiée après relecture" in html(pending)
    assert "Modification enregistrée" not in html(pending)
    login(moderator)
    published = client.post("/fiches/nouvelle", data={"title": "Une fiche publiée"},
                            follow_redirects=True)
    assert "Fiche créée et publiée." in html(published)


def test_a_never_published_sheet_is_not_a_jour(client, contributor, login, make_sheet):
    slug = make_sheet(author=contributor, title="Pas encore relue").sheet.slug
    login(contributor)
    page = main(client.get(f"/fiches/{slug}"))
    assert "à jour</span>" not in page
    assert "pas encore publiée" in page


def test_restore_is_not_offered_on_the_current_revision(client, make_sheet, moderator, login):
    first = make_sheet(title="Version une")
    second = operations.edit_sheet(first.sheet, {"title": "Version deux"}, first.author,
                                   first.id)
    commit()
    login(moderator)
    page = main(client.get(f"/fiches/{first.sheet.slug}/historique"))
    assert f'form="restore-{first.id}"' in page
    assert f'form="restore-{second.id}"' not in page and "version actuelle" in page
    count = db.session.scalar(select(func.count()).select_from(Revision))
    response = client.post(f"/fiches/{first.sheet.slug}/revisions/{second.id}/restaurer",
                           follow_redirects=True)
    assert "déjà la version actuelle" in html(response)
    assert db.session.scalar(select(func.count()).select_from(Revision)) == count


def test_a_rejected_head_does_not_make_the_current_revision_restorable(
        client, make_sheet, contributor, moderator, login):
    published = make_sheet(title="Publiée")
    proposal = operations.edit_sheet(published.sheet, {"title": "Refusée"}, contributor,
                                     published.id)
    commit()
    operations.reject_revision(proposal, moderator, "non")
    commit()
    login(moderator)
    page = main(client.get(f"/fiches/{published.sheet.slug}/historique"))
    assert f'form="restore-{published.id}"' not in page
    assert f'form="restore-{proposal.id}"' in page


def test_favicon_is_served_and_linked(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/x-icon"
    assert icon.data[:4] == b"\x00\x00\x01\x00"  # an ICO header
    page = html(client.get("/"))
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
    assert client.get("/static/favicon.svg").status_code == 200


# --- open data for spreadsheets -------------------------------------------------------------------

def test_spreadsheet_csv_opens_in_a_french_spreadsheet(client, make_sheet):
    make_sheet(title="Accueil ; « guillemets », virgules", tags=["accueil", "numérique"])
    response = client.get("/donnees/fiches-tableur.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "fiches-initiatives-tableur.csv" in response.headers["Content-Disposition"]
    raw = response.data
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 byte order mark: accents read right
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:2] == ["slug", "title"]
    assert rows[1][1] == "Accueil ; « guillemets », virgules"
    assert "accueil | numérique" in rows[1]
    standard = list(csv.reader(io.StringIO(html(client.get("/donnees/fiches.csv")))))
    assert standard == rows  # the same rows, only the separator and the BOM differ
    donnees = html(client.get("/donnees"))
    assert 'href="/donnees/fiches-tableur.csv"' in donnees and 'href="/donnees/fiches.csv"' in donnees
    assert "/donnees/fiches-tableur.csv" in client.get("/api/openapi.json").get_json()["paths"]


def test_cli_exports_the_spreadsheet_variant(app, make_sheet, tmp_path):
    make_sheet(title="Fiche exportée")
    target = tmp_path / "fiches.csv"
    result = app.test_cli_runner().invoke(args=["export", str(target), "--format", "csv-excel"])
    assert result.exit_code == 0, result.output
    data = target.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfslug;title;")
    assert "csv-excel" in app.test_cli_runner().invoke(args=["export", "--help"]).output


# --- duplicates: one score, the journal, the review page, no operator -------------------------

def test_one_similarity_score_while_typing_in_the_queue_and_on_review(
        client, make_sheet, contributor, moderator, login):
    original = make_sheet(**BREST)
    login(contributor)
    fields = form_body(REWORDED)
    # What the form's script sends while typing: every field of the form.
    typed = client.post("/api/v1/sheets/similar", data={**fields, "csrf_token": "x"})
    assert typed.status_code == 200
    [hint] = [i for i in typed.get_json()["items"] if i["slug"] == original.sheet.slug]
    same_by_get = client.get("/api/v1/sheets/similar", query_string=fields).get_json()["items"]
    assert same_by_get[0]["score"] == hint["score"]
    step = html(client.post("/fiches/nouvelle", data=fields))
    percent = f"{round(hint['score'] * 100)}\u00a0%"
    assert f"(ressemblance {percent})" in step  # the confirmation step says the same
    saved = client.post("/fiches/nouvelle", data=form_body(
        REWORDED, duplicates_seen="1", distinct="1", distinct_reason="Un autre hall"))
    assert saved.status_code == 302
    [pair] = db.session.scalars(select(DuplicateCandidate)).all()
    assert pair.score == hint["score"]

    login(moderator)
    assert percent in html(client.get("/moderation/doublons"))
    assert f"ressemblance {percent}" in html(client.get(f"/moderation/doublons/{pair.id}"))
    pending = db.session.scalar(select(Revision).where(Revision.status == "pending"))
    assert percent in html(client.get(f"/moderation/revisions/{pending.id}"))


def test_review_page_warns_about_a_confirmed_other_initiative(client, make_sheet, contributor,
                                                              moderator, login):
    original = make_sheet(**BREST)
    login(contributor)
    client.post("/fiches/nouvelle", data=form_body(
        REWORDED, duplicates_seen="1", distinct="1",
        distinct_reason="Un autre hall, rue Jaurès"))
    pending = db.session.scalar(select(Revision).where(Revision.status == "pending"))
    [pair] = db.session.scalars(select(DuplicateCandidate)).all()
    login(moderator)
    page = main(client.get(f"/moderation/revisions/{pending.id}"))
    assert "Attention : une fiche très proche existe déjà" in page
    assert f'href="/fiches/{original.sheet.slug}"' in page
    assert "Claire Contrib a confirmé qu'il s'agit d'une autre initiative" in page
    assert "« Un autre hall, rue Jaurès »" in page
    assert f'href="/moderation/doublons/{pair.id}"' in page
    # The sheet page's review box says it too.
    sheet_page = main(client.get(f"/fiches/{pending.sheet.slug}?revision={pending.id}"))
    assert "Un autre hall, rue Jaurès" in sheet_page


def test_a_review_without_similar_sheets_has_no_warning(client, make_sheet, contributor,
                                                        moderator, login):
    make_sheet(**BREST)
    pending = make_sheet(author=contributor, **SAME_CITY)
    login(moderator)
    assert "fiche très proche" not in html(client.get(f"/moderation/revisions/{pending.id}"))


def test_merges_and_decisions_are_in_the_moderation_journal(client, make_sheet, moderator,
                                                            login):
    a = make_sheet(**BREST)
    b = make_sheet(**REWORDED)
    c = make_sheet(**SAME_CITY)
    [pair] = db.session.scalars(select(DuplicateCandidate)).all()
    login(moderator)
    client.post(f"/moderation/doublons/{pair.id}/fusionner",
                data={"survivor": "a", "comment": "même hall"})
    other = client.post("/moderation/doublons/comparer",
                        data={"a": f"http://kb.test/fiches/{a.sheet.slug}", "b": c.sheet.slug})
    other_pair = db.session.scalar(select(DuplicateCandidate).where(
        DuplicateCandidate.source == "manual"))
    assert other.location == f"/moderation/doublons/{other_pair.id}"
    client.post(f"/moderation/doublons/{other_pair.id}/pas-un-doublon")
    actions = {e.action: e for e in db.session.scalars(select(AuditEntry))}
    assert actions["merge"].sheet_id == a.sheet_id
    assert actions["merge"].details["merged_slug"] == b.sheet.slug
    assert actions["merge"].actor_id == moderator.id and actions["merge"].reason == "même hall"
    journal = main(client.get("/moderation/journal"))
    assert "fiches fusionnées" in journal and "pas un doublon" in journal
    assert f'a absorbé « <a href="/fiches/{b.sheet.slug}/historique">' in journal
    assert "même hall" in journal
    history = main(client.get(f"/fiches/{a.sheet.slug}/historique"))
    assert "fiches fusionnées" in history


def test_publishing_a_copy_queues_the_pair_without_an_operator(client, make_sheet, contributor,
                                                               moderator, login):
    make_sheet(**BREST)
    pending = make_sheet(author=contributor, **REWORDED)
    assert db.session.scalar(select(func.count()).select_from(DuplicateCandidate)) == 0
    login(moderator)
    client.post(f"/moderation/revisions/{pending.id}/approuver")
    [pair] = db.session.scalars(select(DuplicateCandidate)).all()
    assert pair.source == "scan" and pair.status == "open"
    assert "Brest : l&#39;accueil de l&#39;hotel de ville repense" in html(
        client.get("/moderation/doublons"))


def test_a_bulk_commit_leaves_the_comparison_to_the_scheduled_scan(app, client, make_sheet):
    author = make_sheet(**BREST).author
    for n in range(51):  # more than one publication batch compares at once
        operations.create_sheet(sheet_data(**{**REWORDED, "title": f"{REWORDED['title']} {n}"}),
                                author)
    commit()
    assert db.session.scalar(select(func.count()).select_from(DuplicateCandidate)) == 0
    result = app.test_cli_runner().invoke(args=["duplicates", "scan", "--quiet"])
    assert result.exit_code == 0 and "nouvelle(s)" in result.output
    assert "Recherche des doublons" not in result.output  # no progress bars under cron
    assert db.session.scalar(select(func.count()).select_from(DuplicateCandidate)) > 0
    quiet = app.test_cli_runner().invoke(args=["duplicates", "scan", "--quiet"])
    assert quiet.exit_code == 0 and quiet.output == ""  # nothing new: nothing to mail


# --- moderation pages -----------------------------------------------------------------------------

def test_dashboard_shows_each_number_once(client, make_sheet, moderator, login):
    make_sheet(title="Récente")
    login(moderator)
    page = main(client.get("/moderation/tableau-de-bord"))
    assert "bar-chart" not in page
    section = page[page.index('id="ages"'):page.index("Travail en attente")]
    assert section.count("moins de 3 mois") == 1
    assert section.count('class="bar"') == len(re.findall(r"<tr><td>", section))


def test_empty_states_say_what_to_do_in_the_interface(client, moderator, login):
    login(moderator)
    for url in ("/moderation", "/moderation/doublons", "/moderation/signalements",
                "/moderation/fraicheur", "/moderation/tableau-de-bord", "/moderation/journal"):
        response = client.get(url)
        assert response.status_code == 200, url
        # Only the service's health, addressed to the technical team, names commands.
        page = re.sub(r'<section class="service-health".*?</section>', "", html(response),
                      flags=re.S)
        assert "<code>kb " not in page, url
    duplicates = main(client.get("/moderation/doublons"))
    assert "comparée automatiquement" in duplicates and "Comparer deux fiches" in duplicates
    assert "Rien à relire" in main(client.get("/moderation"))


def test_comparing_two_sheets_by_hand_needs_two_existing_sheets(client, make_sheet, moderator,
                                                                 login):
    a = make_sheet(**BREST)
    login(moderator)
    response = client.post("/moderation/doublons/comparer",
                           data={"a": a.sheet.slug, "b": "inconnue"}, follow_redirects=True)
    assert "Indiquez deux fiches existantes" in html(response)
    same = client.post("/moderation/doublons/comparer",
                       data={"a": a.sheet.slug, "b": a.sheet.slug}, follow_redirects=True)
    assert "deux fiches différentes" in html(same)
    assert db.session.scalar(select(func.count()).select_from(DuplicateCandidate)) == 0


def test_sheet_projection_used_by_cards_is_the_published_one(client, make_sheet):
    sheet = make_sheet(title="Projection", scale="region", actor_type="etat").sheet
    assert db.session.get(Sheet, sheet.id).scale == "region"
    assert "Échelle : région · Porteur : État" in main(client.get("/fiches"))


def test_similar_post_needs_no_csrf_token_and_checks_lengths(app, client, make_sheet):
    make_sheet(**BREST)
    app.config["WTF_CSRF_ENABLED"] = True  # as in production: the endpoint writes nothing
    response = client.post("/api/v1/sheets/similar", data={"title": BREST["title"]})
    assert response.status_code == 200 and response.get_json()["items"][0]["score"] == 1.0
    too_long = client.post("/api/v1/sheets/similar", data={"summary": "x" * 501})
    assert too_long.status_code == 400 and "summary" in too_long.get_json()["message"]
    assert client.post("/api/v1/sheets/similar", data={}).get_json() == {"items": []}  # nothing typed yet
    post = client.get("/api/openapi.json").get_json()["paths"]["/api/v1/sheets/similar"]["post"]
    assert "application/x-www-form-urlencoded" in post["requestBody"]["content"]
