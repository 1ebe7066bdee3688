"""Issue 25, "A moderator's morning": one queue row per sheet and author, counts on the links,
the review of a new sheet in words, "À actualiser" on an outdated-information report."""

from __future__ import annotations

import re

from sqlalchemy import select

from kb.extensions import db
from kb.sheets import operations
from kb.sheets.models import Revision, RevisionStatus
from kb.timeutil import utcnow
from kb.transaction import commit
from tests.conftest import sheet_data


def test_the_queue_lists_one_row_per_sheet_and_author_with_counts_on_links_and_tabs(
        client, login, contributor, moderator, make_user):
    first = operations.create_sheet(sheet_data(title="Garde itinérante"), contributor)
    commit()
    # Two proposals of one author left pending side by side (saved before replaced proposals
    # were marked): one row, the latest.
    second = Revision(sheet=first.sheet, author=contributor, data={**first.data, "results": "v2"},
                      base_revision_id=first.id, created_at=utcnow(),
                      status=RevisionStatus.PENDING.value)
    db.session.add(second)
    other = operations.create_sheet(sheet_data(title="Permis solidaire"), make_user())
    commit()
    login(moderator)
    html = client.get("/moderation").get_data(as_text=True)
    assert html.count("Garde itinérante") == 1
    assert f"/moderation/revisions/{second.id}" in html
    assert f"/moderation/revisions/{first.id}\"" not in html
    assert f"/moderation/revisions/{other.id}" in html
    assert "2 révisions en attente" in html
    link = re.search(r'<a href="/moderation">Modération(.*?)</a>', html, re.S)
    assert link and re.search(r">2<", link.group(1))
    tab = re.search(r'File de relecture <span class="count-pill">(\d+)', html)
    assert tab and tab.group(1) == "2"
    assert re.search(r'Doublons <span class="count-pill">0', html)
    dashboard = client.get("/moderation/tableau-de-bord").get_data(as_text=True)
    assert "paire" in dashboard and 'href="/moderation/doublons"' in dashboard


def test_the_review_of_a_new_sheet_shows_rendered_text_names_and_decisions_at_both_ends(
        client, login, contributor, moderator):
    first = operations.create_sheet(sheet_data(
        title="Garde d'enfants à Perpignan", city="Perpignan", department="",
        method="- **Crèche** à horaires décalés\n- <script>alert(1)</script>Navette"),
        contributor)
    commit()
    assert first.data["department"] == "66" and first.data["epci"]
    login(moderator)
    html = client.get(f"/moderation/revisions/{first.id}").get_data(as_text=True)
    assert "<strong>Crèche</strong>" in html and "<li>" in html
    assert "**Crèche**" not in html and "<script>alert" not in html
    assert "Pyrénées-Orientales (66)" in html and "Perpignan Méditerranée" in html
    assert first.data["epci"] not in html
    top = html.index('form="approve-form"')
    assert top < html.index('id="d-title"') < html.index('id="approve-form"')
    assert 'href="#reason"' in html


def test_an_outdated_information_report_can_make_the_sheet_due_now(
        app, client, login, make_sheet, contributor, moderator, smtp):
    from kb.freshness import operations as freshness
    from kb.moderation import operations as moderation
    from kb.moderation.models import Report

    revision = make_sheet(author=contributor, title="Point conseil budget")
    moderation.approve(revision, moderator)
    commit()
    sheet = revision.sheet
    assert sheet.fresh and sheet not in freshness.due_sheets()
    moderation.report_sheet(sheet, "outdated", "Le numéro a changé.", None, "fp")
    commit()
    report = db.session.scalar(select(Report))
    login(moderator)
    page = client.get("/moderation/signalements").get_data(as_text=True)
    assert f"/moderation/signalements/{report.id}/a-actualiser" in page and "À actualiser" in page
    response = client.post(f"/moderation/signalements/{report.id}/a-actualiser")
    assert response.status_code == 302
    db.session.expire_all()
    assert not sheet.fresh and sheet in freshness.due_sheets()
    assert report.closed_at is not None
    assert "à actualiser" in client.get(f"/fiches/{sheet.slug}").get_data(as_text=True)
    assert "Point conseil budget" in client.get("/moderation/fraicheur").get_data(as_text=True)
    smtp.messages.clear()
    result = app.test_cli_runner().invoke(args=["freshness", "remind"])
    assert result.exit_code == 0, result.output
    [letter] = smtp.to("contrib@example.org")
    assert "Point conseil budget" in smtp.body(letter)


def test_only_an_outdated_information_report_makes_a_sheet_due(client, login, make_sheet,
                                                               moderator):
    from kb.moderation import operations as moderation
    from kb.moderation.models import Report

    sheet = make_sheet(title="Atelier numérique").sheet
    moderation.report_sheet(sheet, "spam", "pub", None, "fp")
    commit()
    report = db.session.scalar(select(Report))
    login(moderator)
    client.post(f"/moderation/signalements/{report.id}/a-actualiser")
    db.session.expire_all()
    assert sheet.fresh and report.closed_at is None
