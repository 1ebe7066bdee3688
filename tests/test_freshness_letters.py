"""Freshness in "La lettre des fiches": reminders before the due date, escalation to the other
contributors then the moderators, signed one-click actions, readers' answers, archiving, and
the published update rate (/statistiques). docs/freshness.md says the same in prose."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from kb.auth.models import User
from kb.auth.preferences import set_letter_section
from kb.extensions import db
from kb.freshness import operations as freshness
from kb.freshness.letters import DUE, LATE, SOON, action_url
from kb.freshness.models import ReviewEvent
from kb.letters.operations import build_letters
from kb.moderation import operations as moderation
from kb.moderation.models import AuditEntry, Report
from kb.sheets import operations
from kb.sheets.models import Sheet
from kb.timeutil import utcnow
from kb.transaction import commit
from tests.letter_helpers import Queued, queued_fixture  # noqa: F401  (fixture "queued")

DAY = timedelta(days=1)


def owned(make_sheet, owner: User, moderator: User, **fields) -> Sheet:
    revision = make_sheet(author=owner, **fields)
    moderation.approve(revision, moderator)
    commit()
    return revision.sheet


def add_contributor(sheet: Sheet, user: User, moderator: User, city: str = "Quimper") -> None:
    edit = operations.edit_sheet(sheet, {"city": city}, user, sheet.approved_revision_id)
    moderation.approve(edit, moderator)
    commit()


def due_in(sheet: Sheet, days: float) -> Sheet:
    """Set the last review so that the sheet falls due `days` from now (negative: overdue)."""
    sheet.last_reviewed_at = utcnow() + timedelta(days=days) - (sheet.review_due_at
                                                                - sheet.last_reviewed_at)
    commit()
    return sheet


def items(user: User, now=None) -> dict[str, str]:
    return {i.title: i.state for i in freshness.letter_items_for_owner(user, now or utcnow())}


def moderator_items(user: User, now=None) -> dict[str, str]:
    return {i.title: i.state for i in freshness.letter_items_for_moderator(user, now or utcnow())}


def letters_sent(sheet: Sheet, count: int, start=None) -> None:
    """`count` monthly letters listed the sheet (the letters engine calls note_reminded)."""
    start = start or utcnow()
    for n in range(count):
        freshness.note_reminded([sheet.id], start + n * 31 * DAY)
    commit()


@pytest.fixture
def team(make_user, make_sheet, contributor, moderator):
    """A sheet owned by Claire, also edited by Olivier; moderator Marc."""
    other = make_user(email="olivier@example.org", name="Olivier")
    sheet = owned(make_sheet, contributor, moderator, title="Accueil à Brest")
    add_contributor(sheet, other, moderator)
    return sheet, contributor, other, moderator


# --- reminded before the due date -----------------------------------------------------------

def test_a_sheet_due_in_20_days_is_in_its_owners_letter_as_coming_soon_only(team):
    sheet, owner, other, moderator = team
    due_in(sheet, 40)
    assert items(owner) == {}  # more than 30 days ahead: not yet
    due_in(sheet, 20)
    assert items(owner) == {"Accueil à Brest": SOON}
    assert items(other) == {} and moderator_items(moderator) == {}


def test_once_due_it_is_to_check_then_late_in_each_later_letter(team):
    sheet, owner, _, _ = team
    due_in(sheet, -3)
    assert items(owner) == {"Accueil à Brest": DUE}
    letters_sent(sheet, 1)
    assert items(owner) == {"Accueil à Brest": LATE}


def due_at(sheet: Sheet, when: datetime) -> None:
    sheet.last_reviewed_at = when - (sheet.review_due_at - sheet.last_reviewed_at)
    commit()


def test_a_sheet_due_before_the_next_monthly_letter_is_announced_in_this_one(team, queued: Queued):
    """A monthly period lasts 28 or 35 days: "30 days ahead" alone would let a sheet due 31 to
    35 days after a letter get its first mail once overdue."""
    sheet, owner, other, moderator = team
    january = datetime(2030, 1, 2, 10, 0)  # first Wednesday; the next letter: 6 February
    due_at(sheet, january + timedelta(days=33))
    build_letters(now=january)
    (letter,) = queued.letters(owner.email)
    assert f"{sheet.title} ({SOON})" in letter.body
    assert queued.letters(other.email) == []  # the other contributors: only once overdue


def test_thirty_days_ahead_still_holds_when_the_next_letter_comes_sooner(team, queued: Queued):
    sheet, owner, other, moderator = team
    february = datetime(2030, 2, 6, 10, 0)  # the next letter: 6 March, 28 days later
    due_at(sheet, february + timedelta(days=33))
    build_letters(now=february)
    assert queued.letters(owner.email) == []  # announced on 6 March, 5 days before it is due


def test_letters_before_the_due_date_do_not_count_towards_escalation(team):
    sheet, owner, other, _ = team
    due_in(sheet, 20)
    freshness.note_reminded([sheet.id], utcnow())
    freshness.note_reminded([sheet.id], utcnow() + 10 * DAY)
    commit()
    later = utcnow() + 21 * DAY  # just due
    assert items(owner, later) == {"Accueil à Brest": DUE} and items(other, later) == {}


# --- escalation -----------------------------------------------------------------------------

def test_overdue_after_one_letter_it_goes_to_the_other_contributors_then_the_moderators(team):
    sheet, owner, other, moderator = team
    due_in(sheet, -5)
    assert items(other) == {} and moderator_items(moderator) == {}  # the owner is asked first
    letters_sent(sheet, 1)
    assert items(other) == {"Accueil à Brest": LATE}
    assert items(owner) == {"Accueil à Brest": LATE}  # the owner still has it
    assert moderator_items(moderator) == {}
    letters_sent(sheet, 1, start=utcnow() + 31 * DAY)
    assert moderator_items(moderator) == {}
    letters_sent(sheet, 1, start=utcnow() + 62 * DAY)
    [item] = freshness.letter_items_for_moderator(moderator, utcnow())
    assert item.state == LATE and item.url == f"http://kb.test/fiches/{sheet.slug}"
    assert [label for label, _ in item.actions] == ["Confirmer", "Archiver", "Relancer"]
    assert all(url.startswith("http://kb.test/fraicheur/action/") for _, url in item.actions)
    # Not a moderator: nothing in that section.
    assert freshness.letter_items_for_moderator(other, utcnow()) == []


def test_the_escalation_thresholds_are_settings(app, team):
    sheet, _, other, moderator = team
    app.config.update(KB_FRESHNESS_TO_CONTRIBUTORS=2, KB_FRESHNESS_TO_MODERATORS=3)
    due_in(sheet, -5)
    letters_sent(sheet, 1)
    assert items(other) == {} and moderator_items(moderator) == {}
    letters_sent(sheet, 1, start=utcnow() + 31 * DAY)
    assert items(other) == {"Accueil à Brest": LATE} and moderator_items(moderator) == {}
    letters_sent(sheet, 1, start=utcnow() + 62 * DAY)
    assert moderator_items(moderator) == {"Accueil à Brest": LATE}


def test_one_run_of_letters_counts_once_even_when_it_lists_the_sheet_to_several_people(team):
    sheet, _, other, moderator = team
    due_in(sheet, -5)
    now = utcnow()
    for _ in range(3):  # owner, another contributor, a moderator: the same run
        freshness.note_reminded([sheet.id], now)
    commit()
    # One letter counted (the other contributors are asked), not three (the moderators).
    assert items(other) == {"Accueil à Brest": LATE} and moderator_items(moderator) == {}


def test_a_sign_of_life_restarts_the_count(client, team):
    sheet, owner, other, moderator = team
    due_in(sheet, -5)
    letters_sent(sheet, 4)
    assert moderator_items(moderator) and items(other)
    freshness.confirm_fresh(sheet, owner, via="test")
    commit()
    assert moderator_items(moderator) == {} and items(other) == {} and items(owner) == {}
    due_in(sheet, -1)  # due again, a new review date: nobody was reminded of it yet
    assert items(owner) == {"Accueil à Brest": DUE} and items(other) == {}


def test_a_sheet_nobody_can_be_asked_about_goes_to_the_moderators_when_due(make_sheet, moderator):
    due_in(make_sheet(author=moderator, title="Importée").sheet, -2)  # written by a moderator
    moderator.reminder_period_days = 0  # who opted out of reminders
    commit()
    assert moderator_items(moderator) == {"Importée": LATE}


@pytest.fixture
def escalated_nine(make_user, make_sheet, contributor, moderator):
    """Three moderators, nine overdue sheets whose owner left four letters unanswered."""
    moderators = [moderator] + [make_user("moderator", name=f"Modo {n}") for n in (2, 3)]
    sheets = []
    for n in range(9):
        sheet = due_in(owned(make_sheet, contributor, moderator, title=f"Fiche {n}"), -5 - n)
        letters_sent(sheet, 4)
        sheets.append(sheet)
    return moderators, {s.title for s in sheets}


def test_the_escalated_sheets_are_shared_among_the_moderators_each_to_one(escalated_nine):
    """Listed to all, the section's cap of 5 let three moderators handle 5 sheets a month
    between them; shared, each handles his own."""
    moderators, titles = escalated_nine
    shares = [moderator_items(m) for m in moderators]
    assert sum(len(share) for share in shares) == 9  # disjoint...
    assert set().union(*shares) == titles  # ...and nothing left out
    assert all(state == LATE for share in shares for state in share.values())
    assert shares == [moderator_items(m) for m in moderators]  # the same from letter to letter


def test_an_escalated_sheet_goes_to_the_moderators_of_its_territory(make_user, make_sheet,
                                                                    contributor, moderator):
    """A moderator whose account names a commune moderates its département; one who names
    none, every territory; a territory nobody covers falls to them all."""
    moderator.commune_code = "29019"  # Brest: the Finistère
    nantes = make_user("moderator", name="Modo Nantes")
    nantes.commune_code = "44109"
    sheets = {}
    for title, city, department in (("Fiche du 29", "Brest", "29"), ("Fiche du 44", "Nantes", "44"),
                                    ("Fiche du 13", "Marseille", "13")):
        sheet = due_in(owned(make_sheet, contributor, moderator, title=title, city=city,
                             department=department), -5)
        letters_sent(sheet, 4)
        sheets[title] = sheet
    commit()
    assert set(moderator_items(moderator)) >= {"Fiche du 29"}
    assert set(moderator_items(nantes)) >= {"Fiche du 44"}
    assert "Fiche du 44" not in moderator_items(moderator)
    assert "Fiche du 29" not in moderator_items(nantes)
    shares = set(moderator_items(moderator)) | set(moderator_items(nantes))
    assert shares == {"Fiche du 29", "Fiche du 44", "Fiche du 13"}  # the 13 reaches someone


@pytest.mark.parametrize("leaves", ["blocked", "opted out"])
def test_a_moderator_who_gets_no_moderation_section_has_his_share_go_to_the_others(
        escalated_nine, leaves):
    moderators, titles = escalated_nine
    before = [moderator_items(m) for m in moderators]
    gone, *others = moderators
    if leaves == "blocked":
        gone.blocked = True
    else:
        set_letter_section(gone, "moderation", False)
    commit()
    after = [moderator_items(m) for m in others]
    assert moderator_items(gone) == {}
    assert sum(len(share) for share in after) == 9 and set().union(*after) == titles
    for old, new in zip(before[1:], after, strict=True):
        assert old.keys() <= new.keys()  # the others keep theirs: only his sheets move


def test_overdue_sheets_come_first_in_the_moderators_letter_before_a_full_queue(
        make_user, make_sheet, moderator, queued: Queued):
    """The section shows 5 items: the overdue sheets, done in one click from the letter, are
    not hidden behind proposals, reports and duplicates that have their own pages."""
    newcomer = make_user(email="nouvelle@example.org", name="Nina")
    for n in range(6):
        make_sheet(author=newcomer, title=f"Proposition {n}")  # waits in the moderation queue
    due_in(make_sheet(author=moderator, title="Importée").sheet, -2)
    moderator.reminder_period_days = 0  # nobody can be asked: the moderators get it when due
    commit()
    build_letters(now=utcnow())
    (letter,) = queued.letters(moderator.email)
    shown = letter.body.split("== Pour la modération ==")[1]
    assert shown.index("Importée") < shown.index("Proposition 0")
    assert "Archiver : " in shown and "et 2 autres" in shown


# --- signed one-click actions ---------------------------------------------------------------

def path(url: str) -> str:
    return url.removeprefix("http://kb.test")


def test_the_confirm_link_works_without_signing_in_once_only_for_its_addressee(
        client, login, team, make_user):
    sheet, owner, other, _ = team
    due_in(sheet, -5)
    [item] = freshness.letter_items_for_owner(owner, utcnow())
    [(label, url)] = item.actions
    assert label == "Confirmer"
    login(other)  # signed in as someone else: refused
    page = client.get(path(url))
    assert page.status_code == 403 and "une autre personne" in page.get_data(as_text=True)
    assert client.post(path(url)).status_code == 403
    assert not db.session.get(Sheet, sheet.id).fresh
    login(None)  # not signed in: the link is enough
    assert "Confirmer" in client.get(path(url)).get_data(as_text=True)  # GET changes nothing
    assert not db.session.get(Sheet, sheet.id).fresh
    assert client.post(path(url)).status_code == 200
    assert db.session.get(Sheet, sheet.id).fresh
    assert client.post(path(url)).status_code == 410  # spent: the sheet was confirmed since
    entry = db.session.scalars(select(AuditEntry).where(
        AuditEntry.sheet_id == sheet.id, AuditEntry.action == "confirm_fresh")).one()
    assert entry.actor_id == owner.id


def test_an_expired_or_forged_action_link_is_refused(client, team):
    sheet, owner, _, _ = team
    due_in(sheet, -5)
    old = action_url(sheet, owner, "confirmer", utcnow() - 60 * DAY)  # lifetime: 45 days
    response = client.post(path(old))
    assert response.status_code == 410 and "expiré" in response.get_data(as_text=True)
    good = action_url(sheet, owner, "confirmer", utcnow())
    assert client.get(path(good)[:-3] + "abc").status_code == 404
    assert not db.session.get(Sheet, sheet.id).fresh


def test_moderators_archive_or_relaunch_from_their_letter(client, team):
    sheet, owner, other, moderator = team
    due_in(sheet, -5)
    letters_sent(sheet, 4)
    actions = dict(freshness.letter_items_for_moderator(moderator, utcnow())[0].actions)
    # Relancer: the escalation starts again, the owner's next letter says "à vérifier".
    assert client.post(path(actions["Relancer"])).status_code == 200
    assert moderator_items(moderator) == {} and items(other) == {}
    assert items(owner) == {"Accueil à Brest": DUE}
    assert client.post(path(actions["Relancer"])).status_code == 410  # already done
    letters_sent(sheet, 4, start=utcnow() + DAY)
    actions = dict(freshness.letter_items_for_moderator(moderator, utcnow())[0].actions)
    # The owner's own link cannot archive: archiving is the moderators'.
    assert client.post(path(actions["Archiver"])).status_code == 200
    assert db.session.get(Sheet, sheet.id).state == "archived"
    journal = [e.action for e in db.session.scalars(select(AuditEntry).where(
        AuditEntry.sheet_id == sheet.id))]
    assert "freshness_relaunch" in journal and "archive" in journal


def test_an_owners_link_cannot_archive(client, team):
    sheet, owner, _, _ = team
    due_in(sheet, -5)
    url = action_url(sheet, owner, "archiver", utcnow())
    assert client.post(path(url)).status_code == 403
    assert db.session.get(Sheet, sheet.id).state == "active"


# --- archiving ------------------------------------------------------------------------------

def test_a_sheet_archived_from_the_letter_leaves_search_listings_and_the_api_keeps_its_page_and_comes_back(
        client, login, make_sheet, moderator):
    # Written by the only moderator: the sheet is his share.
    sheet = due_in(make_sheet(author=moderator, title="Ressourcerie de Morlaix").sheet, -200)
    make_sheet(author=moderator, title="Autre initiative")
    for url in ("/recherche?q=Ressourcerie", "/fiches"):
        assert "Ressourcerie de Morlaix" in client.get(url).get_data(as_text=True)
    letters_sent(sheet, 4)  # nobody answered four letters: the moderators get it
    actions = dict(freshness.letter_items_for_moderator(moderator, utcnow())[0].actions)
    assert client.post(path(actions["Archiver"])).status_code == 200  # one click, no sign-in
    assert "Ressourcerie de Morlaix" not in client.get("/recherche?q=Ressourcerie").get_data(
        as_text=True)
    assert "Ressourcerie de Morlaix" not in client.get("/fiches").get_data(as_text=True)
    assert sheet.slug not in {o["slug"] for o in client.get("/api/v1/sheets").json["items"]}
    page = client.get(f"/fiches/{sheet.slug}")
    assert page.status_code == 200 and "Cette fiche est archivée" in page.get_data(as_text=True)
    login(moderator)
    assert client.post(f"/moderation/fiches/{sheet.slug}/desarchiver").status_code == 302
    assert "Ressourcerie de Morlaix" in client.get("/recherche?q=Ressourcerie").get_data(
        as_text=True)
    assert "Ressourcerie de Morlaix" in client.get("/fiches").get_data(as_text=True)
    assert sheet.slug in {o["slug"] for o in client.get("/api/v1/sheets").json["items"]}
    assert "Cette fiche est archivée" not in client.get(f"/fiches/{sheet.slug}").get_data(
        as_text=True)


# --- readers: "Cette fiche vous semble-t-elle toujours juste ?" -----------------------------

QUESTION = "Cette fiche vous semble-t-elle toujours juste ?"


@pytest.fixture
def readers(make_user):
    people = [make_user(email=f"lecteur{n}@example.org", name=f"Lecteur {n}") for n in range(4)]
    for person in people:
        person.created_at = utcnow() - 30 * DAY  # standing: an account older than a few days
    commit()
    return people


def say(client, login, reader, sheet, answer, comment=""):
    login(reader)
    return client.post(f"/fiches/{sheet.slug}/toujours-juste",
                       data={"answer": answer, "comment": comment})


def test_readers_with_standing_are_asked_on_the_page_others_are_not(
        client, login, team, readers, make_user):
    sheet, owner, _, _ = team
    assert QUESTION not in client.get(f"/fiches/{sheet.slug}").get_data(as_text=True)
    login(make_user())  # a brand-new account has no standing
    assert QUESTION not in client.get(f"/fiches/{sheet.slug}").get_data(as_text=True)
    login(owner)  # contributors confirm for real instead
    assert QUESTION not in client.get(f"/fiches/{sheet.slug}").get_data(as_text=True)
    login(readers[0])
    assert QUESTION in client.get(f"/fiches/{sheet.slug}").get_data(as_text=True)
    assert say(client, login, make_user(), sheet, "oui").status_code == 403


def test_one_oui_does_nothing_and_the_same_reader_counts_once(client, login, team, readers):
    sheet, *_ = team
    due_in(sheet, -10)
    before = db.session.get(Sheet, sheet.id).last_reviewed_at
    assert say(client, login, readers[0], sheet, "oui").status_code == 302
    assert say(client, login, readers[0], sheet, "oui").status_code == 409  # once per cycle
    assert say(client, login, readers[1], sheet, "oui").status_code == 302
    sheet = db.session.get(Sheet, sheet.id)
    assert sheet.last_reviewed_at == before and not sheet.fresh
    page = client.get(f"/fiches/{sheet.slug}").get_data(as_text=True)
    assert "Vous avez répondu « Oui »" in page


def test_three_distinct_readers_oui_extend_the_review_date_once_per_cycle(
        client, login, team, readers):
    sheet, *_ = team
    due_in(sheet, -10)
    before = sheet.last_reviewed_at
    for reader in readers[:3]:
        assert say(client, login, reader, sheet, "oui").status_code == 302
    sheet = db.session.get(Sheet, sheet.id)
    assert sheet.last_reviewed_at == before + timedelta(days=90)  # 10 days late → fresh
    assert sheet.fresh
    say(client, login, readers[3], sheet, "oui")  # a fourth "Oui": same cycle, no second move
    assert db.session.get(Sheet, sheet.id).last_reviewed_at == before + timedelta(days=90)
    for reader in readers[:3]:  # nor can the first three answer again in this cycle
        assert say(client, login, reader, sheet, "oui").status_code == 409
    entry = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "readers_extended")).one()
    assert "90 jours" in entry.reason
    # Readers' extension is not a confirmation: /statistiques does not count it as one.
    kinds = db.session.scalars(select(ReviewEvent.kind).order_by(ReviewEvent.id)).all()
    assert kinds[-1] == "readers" and kinds.count("readers") == 1


def test_a_non_reaches_the_contributors_and_moderators_as_an_outdated_report(
        client, login, team, readers):
    sheet, *_ = team
    response = say(client, login, readers[0], sheet, "non", "Le lieu a fermé en mars.")
    assert response.status_code == 302
    report = db.session.scalars(select(Report)).one()
    assert report.reason == "outdated" and report.comment == "Le lieu a fermé en mars."
    assert report.reporter_id == readers[0].id
    assert say(client, login, readers[1], sheet, "peut-être").status_code == 400


# --- /statistiques --------------------------------------------------------------------------

def test_statistics_page_shows_the_update_rate_of_a_known_base(client, make_sheet, moderator):
    now = utcnow()
    sheets = [make_sheet(title=f"Fiche {n}").sheet for n in range(8)]
    # 5 fresh, 3 overdue by 10, 20 and 40 days: median 20.
    for sheet, days in zip(sheets[5:], (-10, -20, -40), strict=True):
        due_in(sheet, days)
    # Review dates that fell in the last year: one confirmed 5 days late (on time), one 50
    # days late (late), one 10 days early (on time); the sheet 40 days overdue is late too.
    for sheet, due_ago, confirmed_after in ((sheets[0], 100, 5), (sheets[1], 200, 50),
                                            (sheets[2], 60, -10)):
        db.session.add(ReviewEvent(sheet_id=sheet.id, due_before=now - due_ago * DAY,
                                   at=now - (due_ago - confirmed_after) * DAY, kind="confirmation"))
    commit()
    page = client.get("/statistiques")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-stat="fresh">62,5\u00a0%<' in html  # 5 / 8
    assert "(5 sur 8)" in html
    assert 'data-stat="on-time">50,0\u00a0%<' in html  # 2 / 4
    assert "(2 sur 4, 12 derniers mois)" in html
    assert 'data-stat="overdue">20<' in html
    assert "3 fiches en retard" in html
    assert 'data-stat="mails"' in html
    assert '<a href="/statistiques">Statistiques</a>' in client.get("/").get_data(as_text=True)


def test_the_dashboard_shows_the_same_figures(client, login, make_sheet, moderator):
    sheet = make_sheet(title="Seule fiche").sheet
    due_in(sheet, -4)
    login(moderator)
    html = client.get("/moderation/tableau-de-bord").get_data(as_text=True)
    assert 'data-stat="fresh">0,0\u00a0%<' in html and 'data-stat="overdue">4<' in html


def test_every_sign_of_life_is_recorded_for_the_statistics(team, moderator):
    sheet, owner, other, _ = team
    due_in(sheet, -3)
    freshness.confirm_fresh(sheet, owner, via="test")
    commit()
    due_in(sheet, -3)
    add_contributor(sheet, other, moderator, city="Morlaix")  # an approved edit
    kinds = db.session.scalars(select(ReviewEvent.kind).order_by(ReviewEvent.id)).all()
    assert kinds[-2:] == ["confirmation", "sign"]


def test_statistics_number_formatting_is_french(app):
    from kb.freshness.views import percent_fr
    from kb.wording import french_number

    assert percent_fr(0.9134) == "91,3\u00a0%"
    assert percent_fr(None) == "—"
    assert french_number(1234.5) == "1\u202f234,5"
    assert re.fullmatch(r"0,00", french_number(0.0, 2))
