"""Asking an initiative's team a precise question: relay, answer by a signed link, reminder,
polite closure, publication with both consents after moderation. Nothing here commits."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, render_template
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select

from kb import mail
from kb.auth.models import User
from kb.auth.permissions import Capability, check
from kb.auth.preferences import wants_contribution_mail
from kb.errors import Conflict, Invalid, NotFound, PermissionDenied, TooManyRequests
from kb.extensions import db
from kb.moderation.standing import counts_as_contributor
from kb.questions.models import ContactOptOut, Publication, Question, QuestionStatus
from kb.sheets.models import Sheet
from kb.structures.team import sheet_team
from kb.structures.team import teams as sheet_teams
from kb.timeutil import utcnow
from kb.transaction import mark_changed
from kb.urls import base_url

QUESTION_MAX = 2000
PURPOSE_MAX = 1000
ANSWER_MAX = 5000
_ANSWER_SALT = "kb-question-answer"
_OPT_OUT_SALT = "kb-question-contact-opt-out"
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


NOBODY_REACHABLE = ("Personne ne peut être joint pour cette fiche pour l'instant : "
                    "signalez-la aux modérateurs si elle semble abandonnée.")


# --- who may ask, who is asked ----------------------------------------------------------------

def may_ask(user: Any) -> bool:
    """A signed-in account whose word counts: confirmed address, not blocked nor deleted
    (questions of unconfirmed accounts are not relayed)."""
    return counts_as_contributor(user)


def _address_hash(address: str) -> str:
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, address.strip().lower().encode(), hashlib.sha256).hexdigest()


def contact_addresses(sheet: Sheet) -> list[str]:
    """E-mail addresses written in the approved sheet's contacts, minus those that opted out."""
    revision = sheet.approved_revision
    if revision is None:
        return []
    found = dict.fromkeys(a.lower() for a in EMAIL.findall(str(revision.data.get("contacts", ""))))
    if not found:
        return []
    opted_out = set(db.session.scalars(select(ContactOptOut.address_hash).where(
        ContactOptOut.address_hash.in_([_address_hash(a) for a in found]))))
    return [a for a in found if _address_hash(a) not in opted_out]


@dataclass
class Recipients:
    contributors: list[User] = field(default_factory=list)
    contacts: list[str] = field(default_factory=list)  # the sheet's own contact addresses

    def __bool__(self) -> bool:
        return bool(self.contributors or self.contacts)


def team_of(sheet: Sheet, asker_id: int | None = None) -> Recipients:
    """Who a question about this sheet reaches (never the asker)."""
    # Contributors who turned off optional mail ("Mon compte") are not asked.
    people = [u for u in sheet_team(sheet)  # contributors and structure members
              if u.id != asker_id and wants_contribution_mail(u)]
    known = {u.email.lower() for u in people}
    return Recipients(people, [a for a in contact_addresses(sheet) if a not in known])


def recipients(question: Question) -> Recipients:
    return team_of(question.sheet, question.asker_id)


def reachable(sheet: Sheet, asker: Any = None) -> bool:
    """Whether someone would receive a question about this sheet: the sheet page offers
    "Poser une question" only then, and "Signaler un contact introuvable" otherwise."""
    if not sheet.is_published:
        return False
    # The sheet's own contact addresses answer first (one query): every uncached sheet page
    # asks, and the whole team is read only when they are missing. The same answer as
    # bool(team_of(...)): its contacts are these addresses minus the team's.
    if contact_addresses(sheet):
        return True
    asker_id = asker.id if getattr(asker, "is_authenticated", False) else None
    return bool(team_of(sheet, asker_id))


# --- links ----------------------------------------------------------------------------------

def _serializer(salt: str) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=salt)


def answer_url(question: Question) -> str:
    token = _serializer(_ANSWER_SALT).dumps(question.nonce)
    return f"{base_url()}/questions/repondre/{token}"


def question_for_token(token: str) -> Question:
    try:
        nonce = _serializer(_ANSWER_SALT).loads(token)
    except BadSignature as exc:
        raise NotFound("Ce lien n'est pas valide.") from exc
    question = db.session.scalar(select(Question).where(Question.nonce == str(nonce)))
    if question is None:
        raise NotFound("Cette question n'existe plus.")
    return question


def opt_out_url(address: str) -> str:
    token = _serializer(_OPT_OUT_SALT).dumps(address.lower())
    return f"{base_url()}/questions/ne-plus-recevoir/{token}"


def opt_out_contact(token: str) -> str:
    """Stop relaying questions to the address in `token`; returns the address."""
    try:
        address = str(_serializer(_OPT_OUT_SALT).loads(token))
    except BadSignature as exc:
        raise NotFound("Ce lien n'est pas valide.") from exc
    if db.session.get(ContactOptOut, _address_hash(address)) is None:
        db.session.add(ContactOptOut(address_hash=_address_hash(address)))
    return address


# --- asking ---------------------------------------------------------------------------------

def _clean(text: str, label: str, minimum: int, maximum: int) -> str:
    text = (text or "").strip()
    if len(text) < minimum:
        raise Invalid(f"{label} : {minimum} caractères au moins, pour que l'équipe "
                      "comprenne ce que vous cherchez.")
    if len(text) > maximum:
        raise Invalid(f"{label} : {maximum} caractères au plus ({len(text)} saisis).")
    return text


def ask(sheet: Sheet, asker: User, question: str, purpose: str, consents: bool = False,
        now: datetime | None = None) -> Question:
    """Record a question and queue it to the team. Raises a kb.errors error."""
    now = now or utcnow()
    if not may_ask(asker):
        raise PermissionDenied("Confirmez d'abord votre adresse e-mail pour poser une question.")
    if not sheet.is_published:
        raise NotFound("Cette fiche n'existe pas.")
    text = _clean(question, "Votre question", 15, QUESTION_MAX)
    goal = _clean(purpose, "Ce que vous cherchez à débloquer", 10, PURPOSE_MAX)
    if db.session.scalar(select(Question.id).where(
            Question.sheet_id == sheet.id, Question.asker_id == asker.id,
            Question.status == QuestionStatus.OPEN.value).limit(1)) is not None:
        raise Conflict("Vous avez déjà une question en attente de réponse pour cette "
                       "fiche : retrouvez-la dans « Mes questions ».")
    per_day = int(current_app.config["KB_QUESTIONS_PER_DAY"])
    asked_today = db.session.scalar(select(func.count(Question.id)).where(
        Question.asker_id == asker.id, Question.created_at > now - timedelta(days=1))) or 0
    if asked_today >= per_day:
        raise TooManyRequests(f"Vous avez posé {per_day} questions en 24 heures : c'est le "
                              "maximum. Réessayez demain.")
    row = Question(sheet=sheet, asker=asker, asker_id=asker.id, question=text, purpose=goal,
                   created_at=now, nonce=secrets.token_urlsafe(24),
                   asker_consents=bool(consents))
    team = recipients(row)
    if not team:
        raise Conflict(NOBODY_REACHABLE)
    db.session.add(row)
    _relay(row, team, "mail/question_relay.txt", "Une question sur votre initiative",
           "question.relay")
    return row


def _relay(question: Question, team: Recipients, template: str, subject: str, kind: str) -> None:
    """One mail to each person of the team: no address of anyone is shown to anyone. The
    question itself is transactional (sent at once); the reminder is not."""
    link = answer_url(question)
    title = question.sheet.title
    now = kind == "question.relay"
    for user in team.contributors:
        mail.queue(mail.Mail(user.email, f"{subject} : {title}", render_template(
            template, question=question, link=link, contact=False, opt_out=None),
            kind=kind, transactional=now))
    for address in team.contacts:
        mail.queue(mail.Mail(address, f"{subject} : {title}", render_template(
            template, question=question, link=link, contact=True, opt_out=opt_out_url(address)),
            kind=kind, transactional=now))


# --- answering ------------------------------------------------------------------------------

def answer(question: Question, text: str, team_consents: bool = False,
           now: datetime | None = None) -> None:
    now = now or utcnow()
    if question.status != QuestionStatus.OPEN:
        raise Conflict("Cette question a déjà reçu une réponse ou a été close.")
    question.answer = _clean(text, "Votre réponse", 2, ANSWER_MAX)
    question.answered_at = now
    question.status = QuestionStatus.ANSWERED.value
    question.team_consents = bool(team_consents)
    _update_publication(question)
    # An answer is a sign of life: the team is there and knows its initiative.
    sheet = question.sheet
    sheet.last_reviewed_at = max(sheet.last_reviewed_at, now)
    mark_changed([sheet])
    if question.asker is not None:
        mail.queue(mail.Mail(question.asker.email, f"Réponse à votre question : {sheet.title}",
                             render_template("mail/question_answered.txt", question=question),
                             kind="question.answer", transactional=True))


def set_asker_consent(question: Question, user: User, consents: bool) -> None:
    if question.asker_id != user.id:
        raise NotFound("Cette question n'est pas la vôtre.")
    question.asker_consents = bool(consents)
    if not consents and question.publication == Publication.PUBLISHED:
        question.publication = Publication.PRIVATE.value  # consent withdrawn: unpublish at once
        mark_changed([question.sheet])
    _update_publication(question)


def _update_publication(question: Question) -> None:
    both = question.asker_consents and question.team_consents
    if both and question.status == QuestionStatus.ANSWERED \
            and question.publication == Publication.PRIVATE:
        question.publication = Publication.PENDING.value
    elif not both and question.publication == Publication.PENDING:
        question.publication = Publication.PRIVATE.value


def decide_publication(question: Question, moderator: User, publish: bool,
                       now: datetime | None = None) -> None:
    check(moderator, Capability.REVIEW)
    if question.publication != Publication.PENDING:
        raise Conflict("Cette question n'attend pas de publication.")
    question.publication = (Publication.PUBLISHED if publish else Publication.REFUSED).value
    question.published_at = (now or utcnow()) if publish else None
    question.reported_at = None
    mark_changed([question.sheet])  # the sheet's search text includes published Q&A


def report(question: Question, reason: str, now: datetime | None = None) -> None:
    """A reader (published Q&A) or the team (answer page) flags a question: a published one
    goes back to the moderators before anyone sees it again; an open one is closed."""
    question.reported_at = now or utcnow()
    question.report_reason = (reason or "").strip()[:2000]
    if question.publication == Publication.PUBLISHED:
        question.publication = Publication.PENDING.value
        mark_changed([question.sheet])
    if question.status == QuestionStatus.OPEN:
        _close(question, "reported", question.reported_at)


# --- reminders and closure ------------------------------------------------------------------

@dataclass
class SweepRun:
    reminded: list[Question] = field(default_factory=list)
    closed: list[Question] = field(default_factory=list)


def _close(question: Question, reason: str, now: datetime) -> None:
    question.status = QuestionStatus.CLOSED.value
    question.closed_at = now
    question.close_reason = reason
    if question.asker is not None:
        mail.queue(mail.Mail(question.asker.email,
                             f"Votre question sur « {question.sheet.title} »",
                             render_template("mail/question_closed.txt", question=question),
                             kind="question.closed"))


def sweep(now: datetime | None = None) -> SweepRun:
    """Open questions unanswered after KB_QUESTION_REMIND_DAYS get one reminder to the team;
    KB_QUESTION_CLOSE_DAYS after that reminder they are closed and the asker is told.
    Idempotent: a second run the same day does nothing more."""
    now = now or utcnow()
    config = current_app.config
    remind_before = now - timedelta(days=int(config["KB_QUESTION_REMIND_DAYS"]))
    close_before = now - timedelta(days=int(config["KB_QUESTION_CLOSE_DAYS"]))
    run = SweepRun()
    open_questions = db.session.scalars(select(Question).where(
        Question.status == QuestionStatus.OPEN.value).order_by(Question.id))
    for question in open_questions:
        if question.reminded_at is None and question.created_at <= remind_before:
            question.reminded_at = now
            _relay(question, recipients(question), "mail/question_reminder.txt",
                   "Rappel : une question attend votre réponse", "question.reminder")
            run.reminded.append(question)
        elif question.reminded_at is not None and question.reminded_at <= close_before:
            _close(question, "unanswered", now)
            run.closed.append(question)
    return run


# --- reading --------------------------------------------------------------------------------

def published_questions(sheet: Sheet) -> list[Question]:
    return list(db.session.scalars(select(Question).where(
        Question.sheet_id == sheet.id, Question.publication == Publication.PUBLISHED.value)
        .order_by(Question.published_at.desc())))


def published_text(sheet_ids: list[int], reader: Any = None) -> dict[int, str]:
    """Published Q&A as plain text per sheet: readers find a sheet by them (search index)."""
    texts: dict[int, list[str]] = {}
    if sheet_ids:
        for sheet_id, question, answer_text in (reader or db.session).execute(
                select(Question.sheet_id, Question.question, Question.answer).where(
                    Question.sheet_id.in_(sheet_ids),
                    Question.publication == Publication.PUBLISHED.value)):
            texts.setdefault(sheet_id, []).extend((question, answer_text))
    return {k: "\n".join(v) for k, v in texts.items()}


def waiting_by_person() -> dict[int, list[Question]]:
    """Per account, the open questions its team can answer: on sheets it is a reachable
    contributor of, asked by someone else; oldest first. The "Questions en attente" section of
    the letter (kb/letters), read once per letters run."""
    open_questions = list(db.session.scalars(select(Question).where(
        Question.status == QuestionStatus.OPEN.value).order_by(Question.created_at, Question.id)))
    teams = sheet_teams({q.sheet_id for q in open_questions})
    waiting: dict[int, list[Question]] = {}
    for question in open_questions:
        for member in teams.get(question.sheet_id, []):
            if member.id != question.asker_id:
                waiting.setdefault(member.id, []).append(question)
    return waiting


def questions_of(user: User) -> list[Question]:
    return list(db.session.scalars(select(Question).where(Question.asker_id == user.id)
                                   .order_by(Question.created_at.desc())))


def pending_publication() -> list[Question]:
    return list(db.session.scalars(select(Question).where(
        Question.publication == Publication.PENDING.value).order_by(Question.id)))


@dataclass
class Stats:
    asked: int
    answered: int
    median_hours: float | None


def stats(since: datetime | None = None) -> Stats:
    query = select(Question.created_at, Question.answered_at)
    if since is not None:
        query = query.where(Question.created_at >= since)
    rows = db.session.execute(query).all()
    delays = [(a - c).total_seconds() / 3600 for c, a in rows if a is not None]
    return Stats(len(rows), len(delays), round(statistics.median(delays), 1) if delays else None)
