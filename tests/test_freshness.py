"""Freshness: review dates, the "à actualiser" badge, reminders in the letter, confirmation
links, the stale queue and archiving."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

from sqlalchemy import select

from kb.auth.models import User
from kb.extensions import db
from kb.freshness import operations as freshness
from kb.freshness.models import ConfirmToken
from kb.moderation import operations as moderation
from kb.sheets import operations
from kb.sheets.models import Sheet
from kb.timeutil import utcnow
from kb.transaction import commit
from tests.smtp_server import Inbox

LINK = re.compile(r"http://kb\.test(/fraicheur/action/\S+)")  # the letter's "Confirmer"


def age(sheet: Sheet, days: int) -> Sheet:
    """Pretend the sheet was last reviewed `days` ago."""
    sheet.last_reviewed_at = utcnow() - timedelta(days=days)
    commit()
    return sheet


def contributed(make_sheet, author: User, moderator: User, **fields) -> Sheet:
    revision = make_sheet(author=author, **fields)
    moderation.approve(revision, moderator)
    commit()
    return revision.sheet


def remind(app) -> str:
    result = app.test_cli_runner().invoke(args=["freshness", "remind"])
    assert result.exit_code == 0, result.output
    return result.output


# --- due dates and badges -------------------------------------------------------------------

def test_a_due_sheet_shows_the_badge_on_its_page_and_in_listings_and_the_api_says_so(
        client, make_sheet):
    sheet = age(make_sheet(title="Vieille fiche").sheet, 400)
    fresh = make_sheet(title="Fiche récente").sheet
    assert not sheet.fresh and fresh.fresh
    page = client.get(f"/fiches/{sheet.slug}").get_data(as_text=True)
    assert "à actualiser" in page
    assert "à actualiser" not in client.get(f"/fiches/{fresh.slug}").get_data(as_text=True)
    listing = client.get("/fiches").get_data(as_text=True)
    assert listing.count("à actualiser") == 1
    obj = client.get(f"/api/v1/sheets/{sheet.slug}").json
    assert obj["fresh"] is False
    assert obj["last_reviewed_at"].startswith(sheet.last_reviewed_at.date().isoformat())
    assert obj["review_due_at"] < utcnow().isoformat()
    items = {o["slug"]: o for o in client.get("/api/v1/sheets").json["items"]}
    assert items[sheet.slug]["fresh"] is False and items[fresh.slug]["fresh"] is True
    assert {"last_reviewed_at", "review_due_at"} <= set(items[fresh.slug])


def test_approving_an_edit_resets_the_review_date(make_sheet, contributor, moderator):
    first = make_sheet()
    sheet = age(first.sheet, 400)
    edit = operations.edit_sheet(sheet, {"city": "Quimper"}, contributor, first.id)
    moderation.approve(edit, moderator)
    commit()
    assert sheet.fresh


def test_contributors_and_moderators_set_the_interval_others_cannot(
        client, login, make_sheet, make_user, contributor, moderator):
    sheet = contributed(make_sheet, contributor, moderator)
    login(make_user())
    assert client.post(f"/fiches/{sheet.slug}/frequence", data={"months": "3"}).status_code == 403
    login(contributor)
    page = client.get(f"/fiches/{sheet.slug}").get_data(as_text=True)
    assert "Relecture tous les" in page
    assert client.post(f"/fiches/{sheet.slug}/frequence", data={"months": "5"}).status_code == 422
    client.post(f"/fiches/{sheet.slug}/frequence", data={"months": "3"})
    assert db.session.get(Sheet, sheet.id).review_interval_months == 3
    login(moderator)
    client.post(f"/fiches/{sheet.slug}/frequence", data={"months": "24"})
    sheet = db.session.get(Sheet, sheet.id)
    assert sheet.review_interval_months == 24
    assert 725 < (sheet.review_due_at - sheet.last_reviewed_at).days < 735


def test_confirming_still_accurate_from_the_page_resets_the_date(client, login, make_sheet,
                                                                 contributor, moderator):
    sheet = age(contributed(make_sheet, contributor, moderator), 400)
    login(contributor)
    response = client.post(f"/fiches/{sheet.slug}/toujours-a-jour")
    assert response.status_code == 302
    assert db.session.get(Sheet, sheet.id).fresh
    history = client.get(f"/fiches/{sheet.slug}/historique").get_data(as_text=True)
    assert "fiche confirmée à jour" in history


# --- reminders, through the letter (kb/letters) ------------------------------------------------

def test_each_contributor_s_letter_lists_their_due_sheets_with_a_link_that_confirms(
        app, client, make_sheet, make_user, contributor, moderator, smtp: Inbox):
    first = age(contributed(make_sheet, contributor, moderator, title="Accueil à Brest"), 400)
    second = age(contributed(make_sheet, contributor, moderator, title="Maison France services"),
                 800)
    contributed(make_sheet, contributor, moderator, title="Fiche récente")
    other = make_user(email="other@example.org")
    age(contributed(make_sheet, other, moderator, title="Fiche d'une autre"), 400)
    smtp.messages.clear()

    output = remind(app)  # `kb freshness remind` is `kb mail letters` now
    assert "lettre préparée pour contrib@example.org : verifier 2" in output
    [letter] = smtp.to("contrib@example.org")
    assert len(smtp.to("other@example.org")) == 1
    body = Inbox.body(letter)
    assert "== À vérifier ==" in body
    assert "Accueil à Brest" in body and "Maison France services" in body
    assert "Fiche récente" not in body
    assert f"http://kb.test/fiches/{first.slug}" in body
    links = LINK.findall(body)
    assert len(links) == 2

    # Re-running in the same period sends nothing twice.
    sent = len(smtp.messages)
    assert "0 lettre(s) préparée(s)" in remind(app)
    assert len(smtp.messages) == sent

    # The link works without a password: a page with one button, then the sheet is confirmed.
    block = next(b for b in body.split("\n* ") if b.startswith("Accueil à Brest"))
    [link] = LINK.findall(block)
    page = client.get(link)
    assert page.status_code == 200 and "Accueil à Brest" in page.get_data(as_text=True)
    assert not db.session.get(Sheet, first.id).fresh  # opening the link changes nothing
    response = client.post(link)
    assert response.status_code == 200 and "Merci" in response.get_data(as_text=True)
    assert db.session.get(Sheet, first.id).fresh
    assert not db.session.get(Sheet, second.id).fresh
    # Single use.
    assert client.get(link).status_code == 410
    assert client.post(link).status_code == 410


def test_confirmation_links_expire_and_cannot_be_forged(app, client, make_sheet, contributor,
                                                        moderator):
    sheet = age(contributed(make_sheet, contributor, moderator), 400)
    token = freshness.issue_token(sheet, contributor)
    commit()
    assert client.get(f"/fraicheur/confirmer/{token}x").status_code == 404
    assert client.get("/fraicheur/confirmer/nimportequoi").status_code == 404
    row = db.session.scalar(select(ConfirmToken))
    row.expires_at = utcnow() - timedelta(seconds=1)
    commit()
    response = client.post(f"/fraicheur/confirmer/{token}")
    assert response.status_code == 410 and "expiré" in response.get_data(as_text=True)
    assert not db.session.get(Sheet, sheet.id).fresh


def test_a_sheet_with_no_reachable_contributor_goes_to_the_moderators(
        app, client, login, make_sheet, make_user, moderator, smtp: Inbox):
    orphan = age(make_sheet(author=operations.system_user(), title="Fiche importée").sheet, 400)
    blocked_author = make_user(email="gone@example.org")
    abandoned = age(contributed(make_sheet, blocked_author, moderator, title="Auteur parti"), 400)
    blocked_author.blocked = True
    commit()
    smtp.messages.clear()

    remind(app)
    assert smtp.to("gone@example.org") == []
    moderation_part = Inbox.body(smtp.to(moderator.email)[0]).split("== Pour la modération ==")[1]
    for slug in (orphan.slug, abandoned.slug):  # listed once, whatever the reasons
        assert len(re.findall(rf"^  http://kb\.test/fiches/{slug}\r?$", moderation_part, re.M)) == 1
    login(moderator)
    page = client.get("/moderation/fraicheur").get_data(as_text=True)
    stale_section = page[page.index('id="a-reprendre"'):page.index('id="a-archiver"')]
    assert "Fiche importée" in stale_section and "Auteur parti" in stale_section


def test_without_mail_url_the_letter_is_written_to_the_log(app, make_sheet, contributor,
                                                          moderator, caplog):
    app.config["KB_MAIL_URL"] = ""
    age(contributed(make_sheet, contributor, moderator, title="Accueil à Brest"), 400)
    assert "1 lettre(s) préparée(s)" in remind(app)
    with caplog.at_level(logging.INFO, logger="kb.mail"):
        result = app.test_cli_runner().invoke(args=["mail", "send"])
    assert result.exit_code == 0
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "kb.mail")
    assert "À : contrib@example.org" in logged and "Accueil à Brest" in logged
    assert "/fraicheur/action/" in logged


def test_a_failed_send_is_kept_in_the_outbox_and_sent_once_when_the_server_is_back(
        app, make_sheet, contributor, moderator, smtp: Inbox):
    age(contributed(make_sheet, contributor, moderator), 400)
    smtp.messages.clear()
    url, app.config["KB_MAIL_URL"] = app.config["KB_MAIL_URL"], "smtp://127.0.0.1:1"  # down
    assert "1 lettre(s) préparée(s)" in remind(app)  # queued with the letter's record
    runner = app.test_cli_runner()
    assert "1 à réessayer" in runner.invoke(args=["mail", "send"]).output
    app.config["KB_MAIL_URL"] = url  # the server is back
    assert runner.invoke(args=["mail", "retry"]).exit_code == 0
    assert "1 envoyé(s)" in runner.invoke(args=["mail", "send"]).output
    assert "1 lettre(s) préparée(s)" not in remind(app)  # not queued twice
    [letter] = smtp.to("contrib@example.org")
    assert "/fraicheur/action/" in Inbox.body(letter)


# --- archiving ------------------------------------------------------------------------------

def test_past_the_grace_period_moderators_archive_and_the_page_and_history_stay(
        client, login, make_sheet, moderator):
    old = age(make_sheet(title="Très ancienne").sheet, 365 + 200)
    due_only = age(make_sheet(title="Juste en retard").sheet, 380)
    assert [s.id for s in freshness.archive_candidates()] == [old.id]
    login(moderator)
    page = client.get("/moderation/fraicheur").get_data(as_text=True)
    to_archive = page[page.index('id="a-archiver"'):page.index('id="toutes"')]
    assert "Très ancienne" in to_archive and "Juste en retard" not in to_archive
    client.post(f"/moderation/fiches/{old.slug}/archiver",
                data={"reason": "Plus de nouvelles", "public_reason": "y"})  # shown to readers
    assert db.session.get(Sheet, old.id).state == "archived"
    assert due_only.state == "active"

    login(None)
    assert "Très ancienne" not in client.get("/fiches").get_data(as_text=True)
    assert old.slug not in client.get("/api/v1/sheets").get_data(as_text=True)
    page = client.get(f"/fiches/{old.slug}")
    assert page.status_code == 200 and "Cette fiche est archivée" in page.get_data(as_text=True)
    history = client.get(f"/fiches/{old.slug}/historique").get_data(as_text=True)
    assert "fiche archivée" in history and "Plus de nouvelles" in history
    assert db.session.get(Sheet, old.id).approved_revision_id is not None  # nothing deleted

    login(moderator)
    client.post(f"/moderation/fiches/{old.slug}/desarchiver")
    assert db.session.get(Sheet, old.id).state == "active"


def test_dashboard_counts_and_review_age_chart(client, login, make_sheet, contributor, moderator):
    age(make_sheet(title="Ancienne").sheet, 800)
    make_sheet(title="Récente")
    make_sheet(author=contributor, title="En attente")
    login(moderator)
    page = client.get("/moderation/tableau-de-bord").get_data(as_text=True)
    assert re.search(r'class="count">1</span> révision en attente', page)
    assert re.search(r'class="count">1</span> fiche à actualiser', page)
    assert re.search(r'<td>moins de 3 mois</td><td class="bar-value">1</td>', page)
    assert re.search(r'<td>plus de 24 mois</td><td class="bar-value">1</td>', page)
    assert "En attente" in page
