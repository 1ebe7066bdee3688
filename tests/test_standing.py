"""Whose reports count: only reporters with standing hide a sheet without a moderator
(kb/moderation/standing.py). Anonymous reports and fresh or unconfirmed accounts queue it."""

from __future__ import annotations

from datetime import timedelta

from kb.extensions import db
from kb.moderation import operations as moderation
from kb.moderation.standing import has_standing
from kb.sheets.models import Sheet
from kb.timeutil import utcnow
from kb.transaction import commit


def _aged(user, days=30):
    user.created_at = utcnow() - timedelta(days=days)
    commit()
    return user


def _spam(client, login, slug, user, ip):
    login(user)
    return client.post(f"/fiches/{slug}/signaler", data={"reason": "spam"},
                       environ_base={"REMOTE_ADDR": ip})


def test_anonymous_reports_and_throwaway_accounts_never_hide_a_sheet(client, login, make_sheet,
                                                                     make_user, moderator):
    sheet = make_sheet(title="Fiche visée").sheet
    unconfirmed = _aged(make_user())
    unconfirmed.email_confirmed_at = None
    commit()
    reporters = [None, None, make_user(), make_user(), unconfirmed]  # fresh, fresh, unconfirmed
    for n, user in enumerate(reporters):
        assert _spam(client, login, sheet.slug, user, f"203.0.113.{n}").status_code == 302
    assert db.session.get(Sheet, sheet.id).state == "active"
    login(None)
    assert client.get(f"/fiches/{sheet.slug}").status_code == 200
    login(moderator)  # queued for review
    page = client.get("/moderation/signalements").get_data(as_text=True)
    assert "Fiche visée" in page


def test_three_reporters_with_standing_hide_a_sheet(client, login, make_sheet, make_user):
    sheet = make_sheet().sheet
    old = _aged(make_user())
    contributor = make_user()
    approved_author = make_user()
    revision = make_sheet(author=approved_author, title="Une fiche à lui")
    moderation.approve(revision, make_user("moderator"))
    commit()
    for n, user in enumerate((old, contributor, approved_author)):
        _spam(client, login, sheet.slug, user, f"198.51.100.{n}")
    # `contributor` is fresh and has nothing approved: only two count so far.
    assert db.session.get(Sheet, sheet.id).state == "active"
    _spam(client, login, sheet.slug, make_user(trusted=True), "198.51.100.9")
    assert db.session.get(Sheet, sheet.id).state == "hidden"


def test_standing_rules(app, make_user, make_sheet):
    fresh = make_user()
    assert not has_standing(fresh)
    assert has_standing(_aged(make_user(), days=4))
    assert not has_standing(_aged(make_user(), days=2))
    assert has_standing(make_user(trusted=True)) and has_standing(make_user("moderator"))
    author = make_user()
    revision = make_sheet(author=author)
    assert not has_standing(author)
    moderation.approve(revision, make_user("moderator"))
    commit()
    assert has_standing(author)  # an approved contribution
    blocked = _aged(make_user())
    blocked.blocked = True
    unconfirmed = _aged(make_user())
    unconfirmed.email_confirmed_at = None
    commit()
    assert not has_standing(blocked) and not has_standing(unconfirmed) and not has_standing(None)
    app.config["KB_STANDING_DAYS"] = 1
    assert has_standing(_aged(make_user(), days=2))
