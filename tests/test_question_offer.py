"""Issue 20, item 4: "Poser une question" is offered only where someone can be reached;
elsewhere the sheet offers "Signaler un contact introuvable", before anything is written."""

from __future__ import annotations

from collections.abc import Callable
from html import unescape
from typing import Any

from flask.testing import FlaskClient

from kb.auth.models import SYSTEM_EMAIL, User
from kb.extensions import db
from kb.moderation.models import Report
from kb.sheets.models import Revision

ASK = "Poser une question à l'équipe"
UNREACHABLE = "Signaler un contact introuvable"


def _page(client: FlaskClient, url: str) -> str:
    return unescape(client.get(url).get_data(as_text=True))


def _orphan(make_user: Callable[..., User], make_sheet: Callable[..., Revision]) -> Revision:
    """An imported sheet: written by the import account, no contact address."""
    importer = make_user("moderator", email=SYSTEM_EMAIL, name="Import")
    return make_sheet(author=importer, contacts="Youen Grall, Département du Finistère")


def test_a_sheet_with_a_contact_address_offers_the_question(client: FlaskClient,
                                                            make_user: Any,
                                                            make_sheet: Any) -> None:
    importer = make_user("moderator", email=SYSTEM_EMAIL, name="Import")
    slug = make_sheet(author=importer, contacts="Écrire à accueil@mairie.example.org").sheet.slug
    page = _page(client, f"/fiches/{slug}")
    assert f'href="/fiches/{slug}/questions/nouvelle">{ASK}</a>' in page
    assert UNREACHABLE not in page


def test_a_contact_address_answers_without_reading_the_team(client: FlaskClient, make_user: Any,
                                                            make_sheet: Any) -> None:
    """Every uncached sheet page asks whether someone can be reached: the sheet's own address
    answers, the team (contributors, structure members) is not read."""
    from sqlalchemy import event

    author = make_user("contributor", trusted=True)
    slug = make_sheet(author=author, contacts="Écrire à accueil@mairie.example.org").sheet.slug
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        page = _page(client, f"/fiches/{slug}")
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    assert ASK in page
    assert not [s for s in statements if "structure_members" in s]


def test_a_sheet_with_a_reachable_contributor_offers_the_question(client: FlaskClient,
                                                                  make_user: Any,
                                                                  make_sheet: Any) -> None:
    author = make_user("contributor", trusted=True, email="porteuse@example.org")
    slug = make_sheet(author=author, contacts="").sheet.slug
    page = _page(client, f"/fiches/{slug}")
    assert ASK in page and UNREACHABLE not in page


def test_a_sheet_nobody_can_be_reached_for_offers_a_report_instead(
        client: FlaskClient, login: Any, make_user: Any, make_sheet: Any) -> None:
    slug = _orphan(make_user, make_sheet).sheet.slug
    page = _page(client, f"/fiches/{slug}")
    assert ASK not in page
    link = f"/fiches/{slug}/signaler?motif=contact-introuvable"
    assert f'href="{link}">{UNREACHABLE}</a>' in page

    form = _page(client, link)  # the report form, already filled
    assert '<input checked id="reason-0" name="reason" required type="radio" value="outdated">' in form
    assert "Contact introuvable : personne ne peut être joint pour cette fiche" in form
    sent = client.post(link, data={"reason": "outdated",
                                   "comment": "Contact introuvable : personne ne peut être joint."})
    assert sent.status_code == 302
    [report] = db.session.scalars(db.select(Report)).all()
    assert report.reason == "outdated" and report.comment.startswith("Contact introuvable")


def test_the_question_page_says_so_before_anything_is_written(
        client: FlaskClient, login: Any, make_user: Any, make_sheet: Any) -> None:
    slug = _orphan(make_user, make_sheet).sheet.slug
    login(make_user("contributor", email="asker@example.org"))
    page = _page(client, f"/fiches/{slug}/questions/nouvelle")
    assert "Personne ne peut être joint pour cette fiche pour l'instant" in page
    assert 'name="question"' not in page and UNREACHABLE in page
    # A question sent anyway (a page opened earlier) is refused with its text kept.
    question = "Comment avez-vous convaincu la sous-préfecture d'ouvrir le samedi ?"
    refused = client.post(f"/fiches/{slug}/questions/nouvelle",
                          data={"question": question, "purpose": "Ouvrir notre accueil le samedi."})
    assert refused.status_code == 422
    assert question in unescape(refused.get_data(as_text=True))
