"""La lettre des fiches: one letter per person per period gathering what waits for them (sheets
to check, follows, questions, moderation), five items per section plus "et N autres", a sheet
listed once, nothing when nothing waits; monthly on the first Wednesday morning (Europe/Paris)
or weekly; per-section opt-out and RFC 8058 one-click unsubscribe."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from kb.auth.models import User
from kb.auth.preferences import set_letter_period, set_letter_section
from kb.extensions import db
from kb.follows import operations as follows
from kb.follows.models import Follow
from kb.letters.models import Letter
from kb.letters.operations import build_letters, period_of, unsubscribe_url
from kb.letters.schedule import first_wednesday, monthly_period, weekly_period
from kb.mail.message import build_message
from kb.moderation.operations import report_sheet
from kb.questions import operations as questions
from kb.sheets import operations as sheets
from kb.sheets.models import Revision, Sheet
from kb.transaction import commit, mark_changed
from tests.letter_helpers import Queued, queued_fixture  # noqa: F401  (fixture "queued")

# Wednesday 9 January 2030, 10:00 UTC: inside the monthly period that began on Wednesday
# 2 January at 08:00 Paris, and the weekly (Wednesday) one that began the same morning.
NOW = datetime(2030, 1, 9, 10, 0)


def _due_soon(revision: Revision, days: int = 10) -> Sheet:
    """A published sheet whose review falls due `days` after NOW."""
    sheet = revision.sheet
    sheet.last_reviewed_at = NOW + timedelta(days=days) \
        - timedelta(days=round(sheet.review_interval_months * 30.44))
    commit()
    return sheet


def _updated(revision: Revision, days_ago: float) -> Sheet:
    sheet = revision.sheet
    sheet.updated_at = sheet.created_at = NOW - timedelta(days=days_ago)
    mark_changed([sheet])
    commit()
    return sheet


@pytest.fixture
def busy(make_user: Callable[..., User], make_sheet: Callable[..., Revision]) -> User:
    """A moderator who owns 10 sheets coming due, follows 5 things, and has 2 open questions on
    their sheets; plus moderation work: a proposal, a report."""
    person = make_user("moderator", email="occupee@example.org", name="Odile Occupée")
    owned = [make_sheet(author=person, title=f"Fiche suivie de près {i}", tags=["theme0"])
             for i in range(10)]
    for revision in owned:
        _due_soon(revision)
    others = [make_sheet(title=f"Nouveauté {i}", tags=[f"theme{i}"]) for i in range(5)]
    for revision in others:
        _updated(revision, 1)
    for i in range(5):
        follows.follow(person, {"tag": f"theme{i}"}, now=NOW - timedelta(days=3))
    # The follow of theme0 matches the person's own sheets too: they are listed once, under
    # "À vérifier" only.
    for revision in owned:
        _updated(revision, 0.5)
    asker = make_user("contributor", email="curieuse@example.org")
    for revision in owned[:2]:
        questions.ask(revision.sheet, asker, "Comment avez-vous recruté les bénévoles ?",
                      "Nous lançons le même projet à Lorient.", now=NOW - timedelta(days=2))
    contributor = make_user("contributor")
    sheets.edit_sheet(owned[0].sheet, {"city": "Quimper"}, contributor, owned[0].id)
    reported = make_sheet(title="Halte-garderie solidaire", tags=["petite enfance"])
    report_sheet(reported.sheet, "other", "Le lien ne marche plus.", None, "ip:1")
    commit()
    return person


def _items(body: str, title: str) -> list[str]:
    """The item lines of one section of a text letter."""
    section = body.split(f"== {title} ==", 1)[1].split("\n== ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("* ")]


def test_a_busy_moderator_gets_exactly_one_letter_with_capped_sections(
        app: Flask, busy: User, queued: Queued) -> None:
    run = build_letters(NOW)
    [letter] = queued.letters(busy.email)  # one mail for everything
    assert [u.id for u, _ in run.queued].count(busy.id) == 1
    assert letter.subject == "La lettre des fiches — janvier 2030"
    assert not letter.transactional and letter.dedupe_key == f"letter:{busy.id}:2030-01"
    body = letter.body
    titles = re.findall(r"^== (.+) ==$", body, re.M)
    assert titles == ["À vérifier", "Vos suivis", "Questions en attente", "Pour la modération"]

    assert len(_items(body, "À vérifier")) == 5  # ten sheets: five shown…
    assert "… et 5 autres : http://kb.test/compte#contributions" in body  # …and the rest
    assert len(_items(body, "Vos suivis")) == 5
    assert len(_items(body, "Questions en attente")) == 2
    # The proposal is on a sheet already listed to check: the reported sheet is left.
    assert _items(body, "Pour la modération") == ["* Halte-garderie solidaire (signalée le "
                                                  f"{datetime.now():%d/%m/%Y})"]
    assert body.count("… et") == 1  # only the section over its cap says "et N autres"

    # Every sheet is listed once in the letter (questions are items of their own).
    sheet_items = re.findall(r"^\* .+\n  (http://kb\.test/fiches/[^\s/]+)$",
                             body.split("== Questions en attente ==")[0]
                             + body.split("== Pour la modération ==")[1], re.M)
    assert len(sheet_items) == 5 + 5 + 1 == len(set(sheet_items))
    assert "Fiche suivie de près" not in body.split("== Vos suivis ==")[1].split("== Q")[0]
    html = letter.html or ""
    assert "et 5 autres</a>" in html and "<img" not in html

    assert db.session.scalar(select(func.count(Letter.id)).where(Letter.user_id == busy.id)) == 1


def test_running_twice_in_a_period_adds_nothing_and_the_old_commands_are_aliases(
        app: Flask, busy: User, queued: Queued) -> None:
    build_letters(NOW)
    again = build_letters(NOW + timedelta(days=6))
    assert again.queued == [] and again.already >= 1
    runner = app.test_cli_runner()
    for args in (["mail", "letters"], ["freshness", "remind"], ["follows", "digest"],
                 ["moderation", "digest"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, result.output
        assert "0 lettre(s) préparée(s)" in result.output
    # The real clock is years before NOW: its period is another one, but the person's last
    # letter is later than its start, so it is not built either.
    assert len(queued.letters(busy.email)) == 1
    assert db.session.scalar(select(func.count(Letter.id)).where(Letter.user_id == busy.id)) == 1

    next_month = build_letters(datetime(2030, 2, 6, 8, 0))  # Wednesday 6 February, 09:00 Paris
    assert busy.id in [u.id for u, _ in next_month.queued]


def test_an_empty_period_sends_nothing_and_is_not_looked_at_again(
        app: Flask, make_user: Callable[..., User], queued: Queued) -> None:
    quiet = make_user("contributor")
    unconfirmed = make_user("contributor")
    unconfirmed.email_confirmed_at = None
    commit()
    run = build_letters(NOW)
    assert run.queued == [] and run.empty == 1 and queued.letters() == []
    [row] = db.session.scalars(select(Letter).where(Letter.user_id == quiet.id))
    assert (row.period_key, row.queued) == ("2030-01", False)
    # An address nobody confirmed owning is not even looked at.
    assert db.session.scalar(select(Letter.id).where(Letter.user_id == unconfirmed.id)) is None
    assert build_letters(NOW + timedelta(hours=1)).empty == 0


# --- the period -------------------------------------------------------------------------------

def test_the_first_wednesday_across_months_and_summer_time() -> None:
    assert [first_wednesday(2030, m).day for m in (1, 2, 3, 4, 5)] == [2, 6, 6, 3, 1]
    assert first_wednesday(2026, 12).isoformat() == "2026-12-02"
    # 08:00 in Paris is 07:00 UTC in winter, 06:00 UTC in summer.
    assert monthly_period(datetime(2030, 1, 2, 6, 59)).key == "2029-12"
    january = monthly_period(datetime(2030, 1, 2, 7, 0))
    assert (january.key, january.start, january.label) == \
        ("2030-01", datetime(2030, 1, 2, 7, 0), "janvier 2030")
    assert monthly_period(datetime(2030, 5, 1, 5, 59)).key == "2030-04"
    assert monthly_period(datetime(2030, 5, 1, 6, 0)).key == "2030-05"
    # The last days of a month before its first Wednesday belong to the previous period.
    assert monthly_period(datetime(2030, 1, 31, 23, 0)).key == "2030-01"
    assert monthly_period(datetime(2030, 2, 5, 12, 0)).key == "2030-01"
    # New Year's Eve in Paris is already January in UTC+1: still December's period.
    assert monthly_period(datetime(2029, 12, 31, 23, 30)).key == "2029-12"


def test_weekly_periods_start_on_the_chosen_weekday_morning() -> None:
    monday = 0
    assert weekly_period(datetime(2030, 1, 7, 6, 59), monday).key == "2030-W01"
    week = weekly_period(datetime(2030, 1, 7, 7, 0), monday)
    assert (week.key, week.start, week.label) == \
        ("2030-W02", datetime(2030, 1, 7, 7, 0), "semaine du 7 janvier 2030")
    assert weekly_period(datetime(2030, 1, 13, 22, 0), monday).key == "2030-W02"
    assert weekly_period(datetime(2030, 7, 1, 6, 0), monday).start == datetime(2030, 7, 1, 6, 0)


def test_weekly_readers_get_a_letter_each_week_monthly_ones_once_a_month(
        app: Flask, make_user: Callable[..., User], make_sheet: Callable[..., Revision],
        queued: Queued) -> None:
    weekly = make_user("contributor", trusted=True, email="hebdo@example.org")
    monthly = make_user("contributor", trusted=True, email="mensuel@example.org")
    set_letter_period(weekly, "week", 2)
    for person in (weekly, monthly):
        _due_soon(make_sheet(author=person, title=f"Fiche de {person.email}"))
    assert period_of(weekly, NOW).key == "2030-W02"
    assert period_of(monthly, NOW).key == "2030-01"
    for day in (0, 7, 14, 21):  # four Wednesdays: 9, 16, 23 and 30 January
        build_letters(NOW + timedelta(days=day))
    assert len(queued.letters(weekly.email)) == 4
    assert len(queued.letters(monthly.email)) == 1

    set_letter_period(weekly, "month")  # back to monthly mid-month: no second letter in January
    commit()
    build_letters(NOW + timedelta(days=22))
    assert len(queued.letters(weekly.email)) == 4


# --- preferences and unsubscribe ----------------------------------------------------------------

def test_opting_out_of_a_section_removes_it_and_of_all_sends_nothing(
        app: Flask, busy: User, queued: Queued) -> None:
    set_letter_section(busy, "suivis", False)
    set_letter_section(busy, "moderation", False)
    commit()
    build_letters(NOW)
    [letter] = queued.letters(busy.email)
    assert re.findall(r"^== (.+) ==$", letter.body, re.M) == ["À vérifier", "Questions en attente"]

    for key in ("verifier", "questions"):
        set_letter_section(busy, key, False)
    commit()
    assert busy.id not in [u.id for u, _ in build_letters(datetime(2030, 2, 6, 8, 0)).queued]
    assert len(queued.letters(busy.email)) == 1


def test_mon_compte_sets_the_period_weekday_and_sections(
        client: FlaskClient, login: Callable[[User | None], None], busy: User) -> None:
    login(busy)
    page = client.get("/compte").get_data(as_text=True)
    assert "La lettre des fiches" in page and "Pour la modération" in page
    response = client.post("/compte/notifications", data={
        "notif-contributions": "y", "notif-letter_period": "week", "notif-letter_weekday": "4",
        "notif-section_verifier": "y", "notif-section_questions": "y",
        "notif-section_visites": "y"})
    assert response.status_code == 302
    user = db.session.get(User, busy.id)
    assert (user.letter_period, user.letter_weekday, user.letter_sections_off) == \
        ("week", 4, "suivis,moderation")
    bad = client.post("/compte/notifications", data={"notif-letter_period": "chaque-jour"})
    assert bad.status_code == 422


def test_one_post_unsubscribes_from_a_section_without_session_or_csrf(
        app: Flask, client: FlaskClient, login: Callable[[User | None], None], busy: User,
        queued: Queued) -> None:
    app.config["WTF_CSRF_ENABLED"] = True  # as in production
    url = unsubscribe_url(busy, "suivis")
    path = url.removeprefix("http://kb.test")
    page = client.get(path)  # a link scanner's GET changes nothing
    assert page.status_code == 200 and "Ne plus recevoir cette section" in page.get_data(True)
    assert db.session.get(User, busy.id).letter_sections_off == ""

    response = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert "vous ne recevrez plus la section « Vos suivis »" in response.get_data(True)
    assert db.session.get(User, busy.id).letter_sections_off == "suivis"
    build_letters(NOW)
    assert "== Vos suivis ==" not in queued.letters(busy.email)[0].body

    tampered = path[:-3] + ("aaa" if not path.endswith("aaa") else "bbb")
    assert client.post(tampered).status_code == 400
    assert "pas valide" in client.get(tampered).get_data(True)
    # Only this route goes without the CSRF token.
    login(busy)
    assert client.post("/compte/notifications", data={}).status_code == 400


def test_unsubscribing_from_everything_by_the_list_unsubscribe_header(
        app: Flask, client: FlaskClient, busy: User, queued: Queued) -> None:
    build_letters(NOW)
    [letter] = queued.letters(busy.email)
    headers = dict(letter.headers)
    assert headers["List-Id"] == "La lettre des fiches <lettre.kb.test>"
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    target = re.fullmatch(r"<(http://kb\.test/lettre/desabonnement/[\w.-]+)>",
                          headers["List-Unsubscribe"])
    assert target is not None
    message = build_message(sender="kb@kb.test", to=letter.to, subject=letter.subject,
                            message_id="<1@kb.test>", text=letter.body, html=letter.html,
                            headers=letter.headers)  # the headers reach the MIME message
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"] and message["List-Unsubscribe"] == headers["List-Unsubscribe"]

    app.config["WTF_CSRF_ENABLED"] = True
    response = client.post(target.group(1).removeprefix("http://kb.test"),
                           data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert busy.id not in [u.id for u, _ in build_letters(datetime(2030, 2, 6, 8, 0)).queued]


# --- one-click actions ------------------------------------------------------------------------

def test_the_letters_actions_work_without_signing_in(
        app: Flask, client: FlaskClient, busy: User, queued: Queued) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    build_letters(NOW)
    body = queued.letters(busy.email)[0].body
    confirm = re.search(r"Confirmer : http://kb\.test(\S+)", body)
    unfollow = re.search(r"Ne plus suivre \([^)]+\) : http://kb\.test(\S+)", body)
    answer = re.search(r"Répondre : http://kb\.test(\S+)", body)
    assert confirm and unfollow and answer

    assert client.get(confirm.group(1)).status_code == 200
    # The freshness link's own form (its token in the page) confirms the sheet.
    page = client.get(confirm.group(1)).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    data = {"csrf_token": token.group(1)} if token else {}
    assert client.post(confirm.group(1), data=data).status_code == 200

    count = db.session.scalar(select(func.count(Follow.id)).where(Follow.user_id == busy.id))
    assert client.get(unfollow.group(1)).status_code == 200
    assert client.post(unfollow.group(1)).status_code == 200
    assert db.session.scalar(select(func.count(Follow.id)).where(
        Follow.user_id == busy.id)) == count - 1
    assert client.post(unfollow.group(1)).status_code == 200  # twice: already done, no error
    assert client.post(unfollow.group(1)[:-2] + "zz").status_code == 400

    assert "Votre réponse" in client.get(answer.group(1)).get_data(as_text=True)


def test_an_outdated_report_waits_for_the_letter_instead_of_a_mail_per_item(
        app: Flask, make_user: Callable[..., User], make_sheet: Callable[..., Revision],
        queued: Queued) -> None:
    owner = make_user("contributor", trusted=True, email="proprio@example.org")
    sheet = make_sheet(author=owner, title="Épicerie sociale").sheet
    sheet.last_reviewed_at = NOW - timedelta(days=10)  # fresh: only the report brings it
    commit()
    report_sheet(sheet, "outdated", "Les horaires ont changé.", None, "ip:2")
    commit()
    assert [m for m in queued if m.to == owner.email] == []  # no "Fiche à vérifier" mail
    build_letters(NOW)
    [letter] = queued.letters(owner.email)
    assert _items(letter.body, "À vérifier") == ["* Épicerie sociale (à vérifier)"]


def test_two_runs_at_once_queue_one_letter(
        app: Flask, busy: User, queued: Queued, monkeypatch: pytest.MonkeyPatch) -> None:
    """The period is claimed by a unique row in the letter's own transaction: a run that built
    the same letter while another run committed its row queues nothing."""
    import kb.letters.operations as letters

    real_compose = letters.compose

    def other_run_commits_meanwhile(user: User, *args: object) -> object:
        if user.id == busy.id:
            with db.engine.begin() as other:  # another process, its own connection
                other.execute(Letter.__table__.insert().values(
                    user_id=busy.id, period_key="2030-01", built_at=NOW, queued=True,
                    counts={}, sheet_ids=[]))
        return real_compose(user, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(letters, "compose", other_run_commits_meanwhile)
    run = build_letters(NOW)
    assert queued.letters(busy.email) == [] and run.already >= 1
    assert db.session.scalar(select(func.count(Letter.id)).where(Letter.user_id == busy.id)) == 1
