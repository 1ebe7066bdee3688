"""Moderation: pre-moderation of new contributors, decisions by e-mail, audit log, reports."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from kb.auth.models import User
from kb.extensions import db
from kb.mail.models import OutboxMail
from kb.mail.sender import send_due
from kb.moderation import operations as moderation
from kb.moderation.models import AuditEntry, Report
from kb.sheets import operations
from kb.sheets.models import Revision, Sheet
from kb.timeutil import utcnow
from kb.transaction import commit, sheets_changed
from tests.conftest import sheet_data
from tests.smtp_server import Inbox


def form_of(data):
    return {k: "\n".join(v) if isinstance(v, list) else v for k, v in data.items()}


def audit_actions(sheet_id=None, user_id=None):
    query = select(AuditEntry.action).order_by(AuditEntry.id)
    if sheet_id is not None:
        query = query.where(AuditEntry.sheet_id == sheet_id)
    if user_id is not None:
        query = query.where(AuditEntry.target_user_id == user_id)
    return list(db.session.scalars(query))


# --- pre-moderation and decisions -----------------------------------------------------------

def test_new_contributor_sheet_is_invisible_until_approved_and_the_author_is_told(
        client, login, contributor, moderator, smtp: Inbox):
    login(contributor)
    response = client.post("/fiches/nouvelle", data=form_of(sheet_data(title="Guichet unique")))
    assert response.status_code == 302
    sheet = db.session.scalar(select(Sheet))
    slug = sheet.slug
    pending = db.session.scalar(select(Revision))
    assert pending.status == "pending"

    login(None)
    waiting = client.get(f"/fiches/{slug}").get_data(as_text=True)  # 200: not a broken link
    assert "en cours de relecture" in waiting and "Guichet unique" not in waiting
    assert "Guichet unique" not in client.get("/fiches").get_data(as_text=True)
    assert client.get(f"/api/v1/sheets/{slug}").status_code == 404

    login(moderator)
    response = client.post(f"/moderation/revisions/{pending.id}/approuver")
    assert response.status_code == 302

    login(None)
    assert client.get(f"/fiches/{slug}").status_code == 200
    assert "Guichet unique" in client.get("/fiches").get_data(as_text=True)
    [message] = smtp.to("contrib@example.org")
    assert "publiée" in message["Subject"]
    assert f"http://kb.test/fiches/{slug}" in Inbox.body(message)
    assert audit_actions(sheet.id) == ["approve"]
    history = client.get(f"/fiches/{slug}/historique").get_data(as_text=True)
    assert "révision approuvée" in history and "Marc Modo" in history


def test_rejection_needs_a_reason_which_the_author_receives_and_sees_in_the_history(
        client, login, make_sheet, contributor, moderator, smtp: Inbox):
    first = make_sheet()
    edit = operations.edit_sheet(first.sheet, {"city": "Spamville"}, contributor, first.id)
    commit()
    login(moderator)
    client.post(f"/moderation/revisions/{edit.id}/refuser", data={"reason": ""})
    assert db.session.get(Revision, edit.id).status == "pending"
    assert smtp.messages == []

    client.post(f"/moderation/revisions/{edit.id}/refuser",
                data={"reason": "La ville ne correspond pas à l'initiative."})
    assert db.session.get(Revision, edit.id).status == "rejected"
    [message] = smtp.to("contrib@example.org")
    assert "n'a pas été retenue" in message["Subject"]
    assert "La ville ne correspond pas à l'initiative." in Inbox.body(message)

    login(contributor)
    history = client.get(f"/fiches/{first.sheet.slug}/historique").get_data(as_text=True)
    assert "refusée" in history and "La ville ne correspond pas" in history
    login(None)
    public = client.get(f"/fiches/{first.sheet.slug}/historique").get_data(as_text=True)
    assert "La ville ne correspond pas" not in public  # rejected work stays with its author


def test_no_mail_is_sent_when_the_decision_is_rolled_back(make_sheet, contributor, moderator,
                                                         smtp: Inbox):
    revision = make_sheet(author=contributor)
    moderation.approve(revision, moderator)
    db.session.rollback()
    commit()
    assert smtp.messages == []


def test_queue_lists_pending_work_oldest_first_with_filters(client, login, make_sheet, make_user,
                                                            moderator):
    ana = make_user(name="Ana Lyse", email="ana@example.org")
    bob = make_user(name="Bob Eau", email="bob@example.org")
    published = make_sheet(title="Déjà publiée")
    new_sheet = make_sheet(author=ana, title="Nouvelle fiche d'Ana", tags=["mobilité"])
    edit = operations.edit_sheet(published.sheet, {"summary": "Un autre résumé"}, bob, published.id)
    commit()
    login(moderator)
    page = client.get("/moderation").get_data(as_text=True)
    assert page.index("Nouvelle fiche d&#39;Ana") < page.index("Déjà publiée")

    def titles(query):
        return client.get("/moderation" + query).get_data(as_text=True)

    assert "Nouvelle fiche" in titles("?type=new") and "Déjà publiée" not in titles("?type=new")
    assert "Déjà publiée" in titles("?type=edit") and "Nouvelle fiche" not in titles("?type=edit")
    assert "Nouvelle fiche" in titles("?tag=mobilite")
    assert "Déjà publiée" not in titles("?tag=mobilite")
    assert "Déjà publiée" in titles("?auteur=bob") and "Nouvelle fiche" not in titles("?auteur=bob")
    assert client.get("/moderation?type=autre").status_code == 400
    assert new_sheet.id < edit.id


def test_review_page_shows_a_word_level_diff_or_the_whole_new_sheet(client, login, make_sheet,
                                                                    contributor, moderator):
    first = make_sheet(results="Nouveaux guichets installés en 2020.")
    edit = operations.edit_sheet(first.sheet, {"results": "Nouveaux guichets installés en 2021."},
                                 contributor, first.id)
    new = make_sheet(author=contributor, title="Maison des services")
    commit()
    login(moderator)
    page = client.get(f"/moderation/revisions/{edit.id}").get_data(as_text=True)
    assert "<del>2020</del><ins>2021</ins>" in page
    assert "Réalisations" in page and "Mots-clés" not in page  # only what changed
    page = client.get(f"/moderation/revisions/{new.id}").get_data(as_text=True)
    assert "Nouvelle fiche : tout le contenu proposé" in page
    # A new sheet reads as text (issue 25), not as one long insertion.
    assert "<p>Maison des services</p>" in page and "<ins>Maison" not in page
    assert "Mots-clés" in page


def test_bulk_approve_and_reject(client, login, make_sheet, contributor, moderator, smtp: Inbox):
    revisions = [make_sheet(author=contributor, title=f"Fiche {n}") for n in range(3)]
    login(moderator)
    client.post("/moderation/revisions/lot", data={
        "action": "approuver", "revision": [str(revisions[0].id), str(revisions[1].id)]})
    client.post("/moderation/revisions/lot", data={
        "action": "refuser", "revision": [str(revisions[2].id)], "reason": "Hors sujet"})
    statuses = [db.session.get(Revision, r.id).status for r in revisions]
    assert statuses == ["approved", "approved", "rejected"]
    assert len(smtp.to("contrib@example.org")) == 3
    client.post("/moderation/revisions/lot", data={"action": "refuser",
                                                   "revision": [str(revisions[0].id)]})
    assert db.session.get(Revision, revisions[0].id).status == "approved"  # no reason, no change


def test_api_review_goes_through_moderation(client, make_sheet, contributor, moderator, bearer,
                                            smtp: Inbox):
    revision = make_sheet(author=contributor)
    response = client.post(f"/api/v1/revisions/{revision.id}/approve", headers=bearer(moderator))
    assert response.status_code == 200
    assert audit_actions(revision.sheet_id) == ["approve"]
    assert len(smtp.to("contrib@example.org")) == 1


# --- trust ----------------------------------------------------------------------------------

def test_trusted_contributors_and_moderators_are_published_at_once(make_sheet, make_user):
    assert make_sheet(author=make_user(trusted=True)).status == "approved"
    assert make_sheet(author=make_user("moderator")).status == "approved"
    assert make_sheet(author=make_user("admin")).status == "approved"
    assert make_sheet(author=make_user()).status == "pending"


def test_trust_is_granted_after_n_approved_revisions_unless_a_moderator_withdrew_it(
        app, make_sheet, make_user, moderator):
    app.config["KB_AUTO_APPROVE_AFTER"] = 3
    author = make_user()
    author.created_at -= timedelta(days=30)  # older than the standing period (KB_STANDING_DAYS)
    for n in range(3):  # three sheets: tests/test_trust_promotion.py has the whole rule
        assert not author.trusted
        moderation.approve(make_sheet(author=author, title=f"Fiche {n}"), moderator)
        commit()
    assert author.trusted
    assert audit_actions(user_id=author.id) == ["trust_auto"]
    assert make_sheet(author=author, title="Publiée directement").status == "approved"

    moderation.set_trust(author, moderator, False, "Trop de liens publicitaires")
    commit()
    other = make_sheet(author=author, title="De nouveau relue")
    assert other.status == "pending"
    moderation.approve(other, moderator)
    commit()
    assert not author.trusted  # the moderator's decision wins over the counter


# --- blocking -------------------------------------------------------------------------------

def test_blocking_a_user_rejects_their_pending_work_and_logs_it(client, login, make_sheet,
                                                                make_user, moderator):
    spammer = make_user(email="spam@example.org")
    first = make_sheet(author=spammer, title="Pub 1")
    second = make_sheet(author=spammer, title="Pub 2")
    login(moderator)
    response = client.post(f"/moderation/utilisateurs/{spammer.id}/bloquer",
                           data={"reason": "Publicité"})
    assert response.status_code == 302
    assert db.session.get(User, spammer.id).blocked
    for revision in (first, second):
        revision = db.session.get(Revision, revision.id)
        assert revision.status == "rejected" and "Publicité" in revision.review_reason
    assert audit_actions() == ["block", "reject", "reject"]
    login(None)
    response = client.post("/connexion", data={"email": "spam@example.org",
                                               "password": "mot-de-passe-solide"})
    assert "Ce compte est bloqué" in response.get_data(as_text=True)


def test_a_moderator_cannot_block_another_moderator_but_an_admin_can(client, login, make_user,
                                                                     moderator):
    other = make_user("moderator")
    login(moderator)
    assert client.post(f"/moderation/utilisateurs/{other.id}/bloquer",
                       data={"reason": "test"}).status_code == 403
    login(make_user("admin"))
    client.post(f"/moderation/utilisateurs/{other.id}/bloquer", data={"reason": "test"})
    assert db.session.get(User, other.id).blocked


# --- reports --------------------------------------------------------------------------------

def _report(client, slug, reason, ip, comment=""):
    return client.post(f"/fiches/{slug}/signaler", data={"reason": reason, "comment": comment},
                       environ_base={"REMOTE_ADDR": ip})


def _with_standing(make_user):
    """A confirmed account older than KB_STANDING_DAYS: its spam report counts."""
    user = make_user()
    user.created_at = utcnow() - timedelta(days=30)
    commit()
    return user


def test_three_spam_reports_from_distinct_readers_with_standing_hide_the_sheet(
        app, client, login, make_sheet, make_user):
    sheet = make_sheet().sheet
    slug, sheet_id = sheet.slug, sheet.id
    changed: list[list[int]] = []
    first, second, third = (_with_standing(make_user) for _ in range(3))

    def listener(sender, sheet_ids):
        changed.append(sheet_ids)

    sheets_changed.connect(listener, app)
    try:
        _report(client, slug, "spam", "203.0.113.1")  # anonymous: queued, never counted
        login(first)
        for _ in range(3):  # the same reader three times counts once
            _report(client, slug, "spam", "203.0.113.1")
        login(second)
        _report(client, slug, "spam", "203.0.113.2")
        assert db.session.get(Sheet, sheet_id).state == "active"
        assert client.get(f"/fiches/{slug}").status_code == 200
        login(third)
        assert _report(client, slug, "spam", "203.0.113.3").status_code == 302
    finally:
        sheets_changed.disconnect(listener, app)
    login(None)
    assert db.session.get(Sheet, sheet_id).state == "hidden"
    assert [sheet_id] in changed  # the search index hears of it
    assert client.get(f"/fiches/{slug}").status_code == 404
    assert client.get(f"/api/v1/sheets/{slug}").status_code == 404
    assert slug not in client.get("/api/v1/sheets").get_data(as_text=True)
    assert audit_actions(sheet_id) == ["hide_spam"]
    reporters = db.session.scalars(select(Report.reporter_key)).all()
    assert len(reporters) == 4 and not any("203.0.113" in key for key in reporters)


def test_a_moderator_restores_a_hidden_sheet_and_its_spam_reports_are_closed(
        client, login, make_sheet, make_user, moderator):
    sheet = make_sheet().sheet
    for user in (make_user(trusted=True), make_user(trusted=True), _with_standing(make_user)):
        login(user)
        _report(client, sheet.slug, "spam", "198.51.100.7")
    assert db.session.get(Sheet, sheet.id).state == "hidden"
    login(moderator)
    page = client.get("/moderation/signalements").get_data(as_text=True)
    assert "Fiches masquées" in page and sheet.title in page
    client.post(f"/moderation/fiches/{sheet.slug}/retablir", data={"reason": "Faux positif"})
    assert db.session.get(Sheet, sheet.id).state == "active"
    assert db.session.scalars(select(Report).where(Report.closed_at.is_(None))).all() == []
    assert audit_actions(sheet.id) == ["hide_spam", "restore"]


def test_outdated_report_reaches_the_moderators_and_the_sheet_contributors_letter(
        app, client, login, make_sheet, contributor, moderator, smtp: Inbox):
    revision = make_sheet(author=contributor)
    moderation.approve(revision, moderator)
    commit()
    smtp.messages.clear()
    response = _report(client, revision.sheet.slug, "outdated", "192.0.2.5",
                       "Le guichet a fermé en 2025.")
    assert response.status_code == 302
    assert smtp.messages == []  # no mail per report: the sheet waits in its contributors' letter
    app.test_cli_runner().invoke(args=["mail", "letters"])
    [message] = smtp.to("contrib@example.org")
    body = Inbox.body(message).split("== À vérifier ==")[1]
    # The reader's text is not relayed by e-mail, only a link (tests/test_abuse_reports.py).
    assert "Le guichet a fermé en 2025." not in body
    assert "/signalements/" in body
    login(moderator)
    page = client.get("/moderation/signalements").get_data(as_text=True)
    assert "Informations périmées" in page and "Le guichet a fermé en 2025." in page
    report_id = db.session.scalar(select(Report.id))
    client.post(f"/moderation/signalements/{report_id}/classer", data={"reason": "Corrigé"})
    assert db.session.get(Report, report_id).closed_at is not None


def test_report_form_refuses_unknown_reasons_and_other_without_comment(client, make_sheet):
    slug = make_sheet().sheet.slug
    assert client.get(f"/fiches/{slug}/signaler").status_code == 200
    assert _report(client, slug, "bof", "192.0.2.1").status_code == 422
    response = _report(client, slug, "other", "192.0.2.1")
    assert response.status_code == 422 and "Précisez" in response.get_data(as_text=True)
    assert db.session.scalars(select(Report)).all() == []


def test_api_report_works_without_a_token(client, make_sheet):
    slug = make_sheet().sheet.slug
    response = client.post(f"/api/v1/sheets/{slug}/reports",
                           json={"reason": "duplicate", "comment": "Voir la fiche de Brest"})
    assert response.status_code == 201 and response.json["reason"] == "duplicate"
    response = client.post(f"/api/v1/sheets/{slug}/reports", json={"reason": "nope"})
    assert response.status_code == 422 and response.json["error"] == "validation"
    assert client.post("/api/v1/sheets/absente/reports", json={"reason": "spam"}).status_code == 404


def test_sheet_page_links_to_the_report_form(client, make_sheet):
    slug = make_sheet().sheet.slug
    assert f"/fiches/{slug}/signaler" in client.get(f"/fiches/{slug}").get_data(as_text=True)


@pytest.mark.parametrize("role, link", [("moderator", True), ("admin", True),
                                        ("contributor", False), (None, False)])
def test_moderation_link_in_the_header_only_for_moderators(client, login, make_user, role, link):
    login(make_user(role) if role else None)
    assert ('href="/moderation"' in client.get("/").get_data(as_text=True)) is link


def test_openapi_documents_the_moderation_endpoints(client):
    paths = client.get("/api/openapi.json").json["paths"]
    report = paths["/api/v1/sheets/{slug}/reports"]["post"]
    assert report["requestBody"]["content"]["application/json"]["schema"]["properties"][
        "reason"]["enum"] == ["outdated", "duplicate", "spam", "inappropriate", "other"]
    assert "429" in report["responses"]
    for path in ("/api/v1/sheets/{slug}/confirm", "/api/v1/moderation/revisions",
                 "/api/v1/moderation/reports", "/api/v1/moderation/stale"):
        assert path in paths


def test_the_audit_log_page_lists_who_did_what_and_why(client, login, make_sheet, contributor,
                                                       moderator):
    revision = make_sheet(author=contributor, title="Fiche refusée")
    moderation.reject(revision, moderator, "Doublon de la fiche de Brest")
    commit()
    login(moderator)
    page = client.get("/moderation/journal").get_data(as_text=True)
    assert "Marc Modo" in page and "révision refusée" in page
    assert "Doublon de la fiche de Brest" in page and "Fiche refusée" in page


def test_an_unreachable_mail_server_does_not_undo_the_decision(app, client, login, make_sheet,
                                                               contributor, moderator):
    app.config["KB_MAIL_URL"] = "smtp://127.0.0.1:1"  # nothing listens there
    revision = make_sheet(author=contributor)
    login(moderator)
    assert client.post(f"/moderation/revisions/{revision.id}/approuver").status_code == 302
    assert db.session.get(Revision, revision.id).status == "approved"
    # The notice waits in the outbox; a sender that cannot reach the server keeps it for later.
    [row] = db.session.scalars(select(OutboxMail).where(OutboxMail.recipient == "contrib@example.org"))
    assert row.kind == "moderation.decision" and row.state == "pending"
    run = send_due()
    assert run.connection_failed and run.retrying == 1
    db.session.refresh(row)
    assert row.state == "pending" and row.attempts == 1 and "injoignable" in (row.last_error or "")
    assert db.session.get(Revision, revision.id).status == "approved"
