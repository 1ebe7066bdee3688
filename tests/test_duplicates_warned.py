"""Issue 25, duplicates: a pair the writer was warned about reaches moderators at the highest
score shown; the review page lists similar published sheets; the manual comparison offers
titles."""

from __future__ import annotations

from sqlalchemy import select

from kb.duplicates.models import DuplicateCandidate
from kb.duplicates.similarity import HIGH
from kb.extensions import db
from kb.sheets.models import Revision, Sheet
from tests.test_duplicates import BREST, SAME_CITY, _form


def _pairs() -> list[DuplicateCandidate]:
    return list(db.session.scalars(select(DuplicateCandidate)))


def test_a_pair_the_writer_was_warned_about_is_queued_at_the_highest_score_seen(
        client, login, contributor, make_sheet, moderator):
    original = make_sheet(**BREST)
    unrelated = make_sheet(title="Bus itinérant en Ariège", context="Un bus dans les vallées.",
                           stakes="", method="", results="", tags=["mobilité"], city="Foix",
                           department="09")
    login(contributor)
    slug = original.sheet.slug
    # Warned at 62 % while typing; the text sent scores lower (a loose match, no confirmation).
    response = client.post("/fiches/nouvelle", data=_form(
        SAME_CITY, title="Accueil numérique en mairie de Brest", duplicates_seen="1",
        duplicates_warned=f"{slug}=0.62;{unrelated.sheet.slug}=0.9;nope=2;x=abc"))
    assert response.status_code == 302
    [pair] = _pairs()  # not the unrelated sheet: the text sent does not look like it
    assert original.sheet_id in (pair.sheet_a_id, pair.sheet_b_id)
    assert pair.score == 0.62 and pair.source == "warned" and pair.status == "open"
    new = db.session.scalar(select(Sheet).where(Sheet.slug != slug, Sheet.id != unrelated.sheet_id))
    pending = db.session.scalar(select(Revision).where(Revision.sheet_id == new.id))

    login(moderator)
    assert "62" in client.get("/moderation/doublons").get_data(as_text=True)
    review = client.get(f"/moderation/revisions/{pending.id}").get_data(as_text=True)
    assert "Ressemblance de <strong>62" in review and BREST["title"] in review
    assert "a vue en écrivant" in review and "a confirmé" not in review


def test_below_the_warning_threshold_nothing_is_queued(client, login, contributor, make_sheet):
    original = make_sheet(**BREST)
    login(contributor)
    client.post("/fiches/nouvelle", data=_form(
        SAME_CITY, title="Accueil numérique en mairie de Brest", duplicates_seen="1",
        duplicates_warned=f"{original.sheet.slug}={HIGH - 0.05:.2f}"))
    assert _pairs() == []


def test_the_review_page_lists_similar_published_sheets_even_without_a_warning(
        client, login, contributor, make_sheet, moderator):
    make_sheet(**BREST)
    login(contributor)
    client.post("/fiches/nouvelle", data=_form(
        SAME_CITY, title="Accueil numérique en mairie de Brest", duplicates_seen="1"))
    assert _pairs() == []
    pending = db.session.scalar(select(Revision).where(Revision.status == "pending"))
    login(moderator)
    review = client.get(f"/moderation/revisions/{pending.id}").get_data(as_text=True)
    assert "Fiches publiées semblables" in review and BREST["title"] in review
    assert 'name="b" value="accueil-en-mairie-de-brest"' in review


def test_the_manual_comparison_offers_titles_and_reads_the_choice_back(
        client, login, make_sheet, moderator, contributor):
    a = make_sheet(**BREST)
    b = make_sheet(title="Maison France services de Lorient", city="Lorient", department="56")
    login(contributor)
    assert client.get("/moderation/doublons/titres?q=mairie").status_code == 403
    login(moderator)
    page = client.get("/moderation/doublons").get_data(as_text=True)
    assert 'list="pair-titles-a"' in page and "js/sheet-titles.js" in page
    items = client.get("/moderation/doublons/titres?q=MAIRIE brest").get_json()["items"]
    assert [i["value"] for i in items] == [f"{BREST['title']} ({a.sheet.slug})"]
    assert client.get("/moderation/doublons/titres?q=%25").get_json()["items"] == []
    response = client.post("/moderation/doublons/comparer", data={
        "a": items[0]["value"], "b": "Maison France services de Lorient"})
    assert response.status_code == 302 and "/moderation/doublons/" in response.headers["Location"]
    [pair] = _pairs()
    assert {pair.sheet_a_id, pair.sheet_b_id} == {a.sheet_id, b.sheet_id}


def test_the_scan_queues_a_close_pair_under_the_confirmation_threshold(app, make_sheet):
    from kb.duplicates.similarity import SCAN

    original = make_sheet(**BREST)
    # Half rewritten (another title, context and method): 39 %, under HIGH, above SCAN.
    copy = make_sheet(**{**BREST, "title": "Un hall repensé", "context": SAME_CITY["context"],
                         "method": SAME_CITY["method"]})
    [pair] = _pairs()  # queued when published, as the nightly scan would
    assert {pair.sheet_a_id, pair.sheet_b_id} == {original.sheet_id, copy.sheet_id}
    assert SCAN <= pair.score < HIGH and pair.source == "scan"
    result = app.test_cli_runner().invoke(args=["duplicates", "scan", "--help"])
    assert "0.35" in result.output


def test_approving_the_warned_sheet_keeps_the_highest_score_seen(client, login, contributor,
                                                                 make_sheet, moderator):
    from kb.moderation import operations as moderation
    from kb.transaction import commit

    original = make_sheet(**BREST)
    login(contributor)
    client.post("/fiches/nouvelle", data=_form(
        SAME_CITY, title="Accueil numérique en mairie de Brest", duplicates_seen="1",
        duplicates_warned=f"{original.sheet.slug}=0.62"))
    pending = db.session.scalar(select(Revision).where(Revision.status == "pending"))
    moderation.approve(pending, moderator)
    commit()  # published: the sheet is compared with the base again
    [pair] = _pairs()
    assert pair.score == 0.62
