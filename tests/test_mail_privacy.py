"""Every kind of mail the base sends goes to one person, at that person's own address, and
never shows another person's address (issue 20, item 3): each cause is driven, then every
outbox row and every message the SMTP server received is checked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from kb.auth import operations as auth
from kb.auth.models import User
from kb.duplicates.models import DuplicateCandidate
from kb.extensions import db
from kb.follows import operations as follows
from kb.letters.operations import build_letters
from kb.mail.models import OutboxMail
from kb.mail.outbox import single_address
from kb.moderation import operations as moderation
from kb.questions import operations as questions
from kb.sheets import operations
from kb.sheets.models import Revision
from kb.timeutil import utcnow
from kb.transaction import commit
from tests.conftest import PASSWORD
from tests.smtp_server import Inbox
from tests.test_duplicates import BREST, REWORDED

CONTACT = "equipe.accueil@mairie-exemple.fr"
QUESTION = "Comment avez-vous obtenu l'accord de la DGFIP pour l'accueil commun ?"
PURPOSE = "Convaincre notre sous-préfecture d'ouvrir un accueil sans rendez-vous."

# Every kind the base queues today; a new kind must be driven here too.
ALL_KINDS = {
    "account.confirm", "account.exists", "account.nothing_to_confirm", "account.reset",
    "account.reset_unknown", "account.password_changed", "account.email_new",
    "account.email_taken", "account.email_notice",
    "moderation.decision", "question.relay", "question.answer", "question.reminder",
    "question.closed", "letter", "duplicates.merge",
}


def test_every_kind_of_mail_goes_to_one_person_and_shows_no_one_elses_address(
        app: Flask, client: FlaskClient, login: Callable[[User | None], None],
        make_user: Callable[..., User], make_sheet: Callable[..., Revision], moderator: User,
        smtp: Inbox) -> None:
    alice = make_user("contributor", trusted=True, email="alice@example.org", name="Alice A")
    bob = make_user("contributor", trusted=True, email="bob@example.org", name="Bob B")
    carol = make_user("contributor", email="carol@example.org", name="Carol C")
    eve = make_user("contributor", email="eve@example.org", name="Eve E")
    people = {u.email for u in (alice, bob, carol, eve, moderator)} | {CONTACT}

    # Accounts: registration, an address already taken, reset, password and address changes.
    auth.register("nouveau@example.org", PASSWORD, "Nouveau Venu")
    auth.register(alice.email, PASSWORD, "Usurpateur")
    auth.resend_confirmation(bob.email)
    auth.request_password_reset(bob.email)
    auth.request_password_reset("inconnu@example.org")
    auth.set_new_password(bob, "un-autre-mot-de-passe-solide")
    auth.request_email_change(carol, PASSWORD, "carol.nouvelle@example.org")
    auth.request_email_change(eve, PASSWORD, alice.email)
    commit()
    people |= {"nouveau@example.org", "inconnu@example.org", "carol.nouvelle@example.org"}

    # Moderation: a decision each way, an "outdated" report (it waits for the letters).
    sheet = make_sheet(author=alice, contacts=f"Écrire à {CONTACT}.", **BREST)
    approved = operations.create_sheet(_data("Fiche d'Eve publiée"), eve)
    rejected = operations.create_sheet(_data("Fiche d'Eve refusée"), eve)
    commit()
    moderation.approve(approved, moderator)
    moderation.reject(rejected, moderator, "Hors sujet")
    operations.create_sheet(_data("Fiche d'Eve en attente"), eve)
    commit()
    moderation.report_sheet(sheet.sheet, "outdated", "Horaires changés", carol, "cle-carol")
    commit()

    # Questions: relayed to the team (a contributor and the sheet's contact), answered; another
    # reminded then closed.
    asked = questions.ask(sheet.sheet, carol, QUESTION, PURPOSE)
    commit()
    questions.answer(asked, "Par une convention signée avec le préfet.")
    commit()
    questions.ask(sheet.sheet, bob, QUESTION, PURPOSE)
    commit()
    later = utcnow() + timedelta(days=11)
    questions.sweep(later)
    commit()
    questions.sweep(later + timedelta(days=8))
    commit()

    # The letters (follows, sheets to check, pending moderation), a merge by a moderator.
    follows.follow(carol, {"q": "accueil"}, now=utcnow() - timedelta(days=30))
    commit()
    assert build_letters(now=utcnow() + timedelta(days=800)).queued
    make_sheet(author=bob, **REWORDED)
    pair = db.session.scalars(select(DuplicateCandidate)).first()
    assert pair is not None
    login(moderator)
    assert client.post(f"/moderation/doublons/{pair.id}/fusionner", data={
        "survivor": "a" if pair.sheet_a_id == sheet.sheet_id else "b"}).status_code == 302

    # What each address may show besides itself: the same person's other address, and what
    # the person typed (a change of address echoes the address asked for, taken or not).
    own = {"carol@example.org": {"carol.nouvelle@example.org"},
           "carol.nouvelle@example.org": {"carol@example.org"},
           "eve@example.org": {alice.email}}
    received = smtp.messages  # runs the sender
    rows = list(db.session.scalars(select(OutboxMail)))
    assert {r.kind for r in rows} == ALL_KINDS
    assert len(received) == len(rows)
    for row in rows:
        assert single_address(row.recipient) == row.recipient
        text = " ".join([row.subject, row.body_text, row.body_html or "",
                         *(value for _, value in row.headers)])
        others = people - {row.recipient} - own.get(row.recipient, set())
        leaked = [other for other in others if other in text]
        assert leaked == [], (row.kind, row.recipient, leaked)
    for message in received:
        [recipient] = [a.strip() for a in str(message["To"]).split(",")]
        others = people - {recipient} - own.get(recipient, set())
        leaked = [other for other in others if other in message.as_string()]
        assert leaked == [], (message["Subject"], recipient, leaked)
        assert message["Cc"] is None and message["Bcc"] is None


def _data(title: str) -> dict[str, object]:
    from tests.conftest import sheet_data

    return sheet_data(title=title)
