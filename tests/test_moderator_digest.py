"""The moderators' daily digest (`kb moderation digest`): one mail per moderator and day, only
when something waits, never one mail per item; opt-out in "Mon compte"."""

from __future__ import annotations

from datetime import timedelta

from kb.accounts.digest import send_moderator_digests
from kb.auth.models import User
from kb.extensions import db
from kb.moderation.models import Report
from kb.sheets import operations
from kb.timeutil import utcnow
from kb.transaction import commit
from tests.smtp_server import Inbox


def _pending(make_sheet, *authors):
    """One pending proposal per author (an author's second one would replace the first)."""
    published = make_sheet(title="Halte-garderie solidaire")
    for i, author in enumerate(authors):
        operations.edit_sheet(published.sheet, {"city": f"Ville {i}"}, author, None)
    commit()
    return published


def test_nothing_waiting_means_no_mail(app, moderator, smtp):
    result = app.test_cli_runner().invoke(args=["moderation", "digest"])
    assert result.exit_code == 0 and "Rien en attente" in result.output
    assert smtp.messages == []


def test_one_digest_per_moderator_and_day_with_counts_and_the_oldest_item(
        app, client, login, make_user, make_sheet, moderator, contributor, smtp):
    admin = make_user("admin")
    quiet = make_user("moderator")
    login(quiet)
    client.post("/compte/notifications", data={"notif-reminder": "", "notif-contributions": "y"})
    assert not db.session.get(User, quiet.id).moderator_digest  # box left unticked

    published = _pending(make_sheet, contributor, make_user(), make_user())  # one mail
    db.session.add(Report(sheet_id=published.sheet_id, reason="other", comment="?",
                          reporter_key="ip:x", created_at=utcnow() - timedelta(days=3)))
    commit()

    runner = app.test_cli_runner()
    result = runner.invoke(args=["moderation", "digest"])
    assert result.exit_code == 0, result.output
    recipients = [m["To"] for m in smtp.messages]
    assert len(recipients) == len(set(recipients))  # one mail each, whatever the item count
    assert {"modo@example.org", admin.email} <= set(recipients)
    assert quiet.email not in recipients and contributor.email not in recipients
    [message] = smtp.to("modo@example.org")
    body = Inbox.body(message)
    assert "3 proposition(s) à relire : http://kb.test/moderation" in body
    assert "1 fiche(s) signalée(s)" in body
    assert "Le plus ancien : le signalement de « Halte-garderie solidaire »" in body
    assert "/compte#notifications" in body
    html = str(message.get_body(("html",)).get_content())
    assert "<img" not in html and 'href="http://kb.test/moderation"' in html

    again = runner.invoke(args=["moderation", "digest"])
    assert again.exit_code == 0 and "déjà envoyé" in again.output
    assert len(smtp.messages) == len(recipients)

    tomorrow = send_moderator_digests(utcnow() + timedelta(days=1))
    assert len(tomorrow.sent) == len(recipients)


def test_proposals_of_unconfirmed_accounts_do_not_count(app, make_user, make_sheet, moderator,
                                                        smtp):
    newcomer = make_user()
    newcomer.email_confirmed_at = None
    commit()
    _pending(make_sheet, newcomer)
    assert send_moderator_digests().work.total == 0
    assert smtp.messages == []
