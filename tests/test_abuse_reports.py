"""Anonymous report comments are never e-mailed verbatim: contributors' letter links to the
report, whose page shows the text inert (no clickable link), to them and moderators only."""

from __future__ import annotations

from sqlalchemy import select

from kb.extensions import db
from kb.moderation import operations as moderation
from kb.moderation.models import Report
from kb.transaction import commit
from tests.smtp_server import Inbox

PHISHING = ("Le service a déménagé, mettez à jour vos identifiants ici : "
            "https://phish.example/connexion?kb=1 <a href=\"https://phish.example\">ici</a>")


def _published_by(make_sheet, contributor, moderator):
    revision = make_sheet(author=contributor)
    moderation.approve(revision, moderator)
    commit()
    return revision.sheet


def test_the_letter_links_to_the_report_and_never_quotes_it(app, client, make_sheet, contributor,
                                                            moderator, smtp: Inbox) -> None:
    sheet = _published_by(make_sheet, contributor, moderator)
    smtp.messages.clear()
    response = client.post(f"/fiches/{sheet.slug}/signaler",
                           data={"reason": "outdated", "comment": PHISHING},
                           environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert response.status_code == 302
    assert smtp.to("contrib@example.org") == []  # nothing at once: it waits for the letter
    assert app.test_cli_runner().invoke(args=["mail", "letters"]).exit_code == 0
    [message] = smtp.to("contrib@example.org")
    body = Inbox.body(message)
    html = str(message.get_body(("html",)).get_content())
    report_id = db.session.scalar(select(Report.id))
    assert f"http://kb.test/fiches/{sheet.slug}/signalements/{report_id}" in body
    for text in (body, html):
        assert "phish" not in text and "identifiants" not in text


def test_the_report_page_shows_the_text_inert_to_contributors_and_moderators(
        client, login, make_sheet, contributor, moderator, make_user) -> None:
    sheet = _published_by(make_sheet, contributor, moderator)
    report = moderation.report_sheet(sheet, "outdated", PHISHING, None, "ip:test")
    commit()
    url = f"/fiches/{sheet.slug}/signalements/{report.id}"

    anonymous = client.get(url)
    assert anonymous.status_code == 302 and "/connexion" in anonymous.headers["Location"]

    login(make_user())  # another contributor, not of this sheet
    assert client.get(url).status_code == 404

    for reader in (contributor, moderator):
        login(reader)
        response = client.get(url)
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        assert "https://phish.example/connexion?kb=1" in page
        assert 'href="https://phish.example' not in page
        assert "&lt;a href=&#34;https://phish.example&#34;&gt;" in page
        assert "ne sont pas cliquables" in page

    # The moderators' list shows it inert too.
    page = client.get("/moderation/signalements").get_data(as_text=True)
    assert "phish.example" in page and 'href="https://phish.example' not in page


def test_contributors_only_read_outdated_reports(client, login, make_sheet, contributor,
                                                 moderator) -> None:
    sheet = _published_by(make_sheet, contributor, moderator)
    spam = moderation.report_sheet(sheet, "spam", "Arnaque", None, "ip:test")
    commit()
    login(contributor)
    assert client.get(f"/fiches/{sheet.slug}/signalements/{spam.id}").status_code == 404
    login(moderator)
    assert client.get(f"/fiches/{sheet.slug}/signalements/{spam.id}").status_code == 200
    other = _published_by(make_sheet, contributor, moderator)
    assert client.get(f"/fiches/{other.slug}/signalements/{spam.id}").status_code == 404
