"""Building the letters due now (`kb mail letters`, hourly from cron) and one-click unsubscribe.

For each person whose period has started and who has no letter for it yet: read the sections
they keep, drop repeated sheets, and queue ONE mail (kind "letter", never transactional) in the
same transaction as the row that records it. Nothing to say: the row is recorded, no mail.
Commits once per person, so one failure never holds back the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlparse

from flask import current_app, render_template
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from kb import mail
from kb.auth.models import SYSTEM_EMAIL, User
from kb.auth.preferences import LETTER_SECTIONS, letter_sections, set_letter_section
from kb.errors import LinkError
from kb.extensions import db
from kb.follows.operations import SearchCache
from kb.letters import schedule
from kb.letters.models import Letter
from kb.letters.sections import (
    CAP,
    ModerationWork,
    Section,
    follows_section,
    moderation_section,
    moderation_work,
    note_reminded,
    one_run,
    questions_section,
    verify_section,
    visits_section,
    without_repeats,
)
from kb.questions.models import Question
from kb.questions.operations import waiting_by_person
from kb.timeutil import utcnow
from kb.transaction import commit

log = logging.getLogger(__name__)
LIST_NAME = "La lettre des fiches"
_UNSUBSCRIBE_SALT = "kb-letter-unsubscribe"
ALL = "all"  # the unsubscribe "section" meaning the whole letter


# --- one-click unsubscribe (RFC 8058) -----------------------------------------------------------

def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_UNSUBSCRIBE_SALT)


def unsubscribe_url(user: User, section: str = ALL) -> str:
    """A signed link that needs neither a session nor a CSRF token: the signature says we made
    it for this person and this section. It never expires (old letters must keep working)."""
    token = _serializer().dumps([user.id, section])
    return f"{current_app.config['KB_BASE_URL']}/lettre/desabonnement/{token}"


def read_unsubscribe(token: str) -> tuple[User, str]:
    try:
        user_id, section = _serializer().loads(token)
        user_id = int(user_id)
    except (BadSignature, ValueError, TypeError) as exc:
        raise LinkError("Ce lien de désabonnement n'est pas valide (incomplet ou modifié) : "
                        "copiez-le en entier depuis la lettre, ou choisissez vos courriels "
                        "dans « Mon compte ».", 400) from exc
    if section != ALL and section not in LETTER_SECTIONS:
        raise LinkError("Ce lien de désabonnement n'est pas valide.", 400)
    user = db.session.get(User, user_id)
    if user is None or user.is_deleted:
        raise LinkError("Ce compte n'existe plus : il ne reçoit aucune lettre.", 404)
    return user, section


def unsubscribe(user: User, section: str) -> None:
    for key in LETTER_SECTIONS if section == ALL else (section,):
        set_letter_section(user, key, False)


def section_label(section: str) -> str:
    return "toute la lettre" if section == ALL else f"la section « {LETTER_SECTIONS[section]} »"


# --- building ---------------------------------------------------------------------------------

@dataclass
class LetterRun:
    queued: list[tuple[User, dict[str, int]]] = field(default_factory=list)
    already: int = 0   # people whose letter for the period was built before
    empty: int = 0     # nothing to say this period: no mail


@dataclass
class _Shared:
    """Read once per run, whoever the letter is for."""

    waiting: dict[int, list[Question]]
    cache: SearchCache = field(default_factory=SearchCache)
    work: ModerationWork | None = None


def recipients() -> list[User]:
    """Accounts that may get a letter: never to an address nobody confirmed owning."""
    return list(db.session.scalars(select(User).where(
        User.blocked.is_(False), User.deleted_at.is_(None), User.email != SYSTEM_EMAIL,
        User.email_confirmed_at.is_not(None)).order_by(User.id)))


def period_of(user: User, now: datetime) -> schedule.Period:
    return schedule.period_for(user.letter_period, user.letter_weekday, now)


def _already_built(user: User, period: schedule.Period) -> bool:
    # The key, or any letter since the period began: switching from weekly to monthly in the
    # middle of a month never makes a second letter in that period.
    return db.session.scalar(select(func.count(Letter.id)).where(
        Letter.user_id == user.id,
        (Letter.period_key == period.key) | (Letter.built_at >= period.start))) != 0


def _since(user: User, period: schedule.Period, now: datetime) -> datetime:
    last = db.session.scalar(select(func.max(Letter.built_at)).where(Letter.user_id == user.id))
    if last is not None:
        return last
    return now - timedelta(days=7 if period.weekly else 31)  # a first letter: the last period


def compose(user: User, now: datetime, since: datetime, shared: _Shared | None = None
            ) -> list[Section]:
    """The sections of this person's letter, in letter order, without repeats or empties."""
    shared = shared or _Shared(waiting_by_person())
    wanted = letter_sections(user)
    sections: list[Section] = []
    if "verifier" in wanted:
        sections.append(verify_section(user, now))
    if "suivis" in wanted:
        sections.append(follows_section(user, since, shared.cache))
    if "questions" in wanted:
        sections.append(questions_section(user, shared.waiting))
    if "moderation" in wanted:
        if shared.work is None:
            shared.work = moderation_work()
        sections.append(moderation_section(user, now, shared.work))
    if "visites" in wanted:
        sections.append(visits_section(user, now))
    return without_repeats(sections)


def render_letter(user: User, sections: list[Section], period: schedule.Period) -> mail.Mail:
    base = current_app.config["KB_BASE_URL"]
    unsubscribe_all = unsubscribe_url(user)
    subject = f"{LIST_NAME} — {period.label}"
    context = dict(user=user, sections=sections, period=period, cap=CAP,
                   unsubscribe_all=unsubscribe_all, base_url=base, subject=subject,
                   unsubscribe={s.key: unsubscribe_url(user, s.key) for s in sections},
                   manage=f"{base}/compte#notifications", weekly=period.weekly)
    host = urlparse(base).hostname or "localhost"
    return mail.Mail(
        to=user.email, subject=subject,
        body=render_template("mail/letter.txt", **context),
        html=render_template("mail/letter.html", **context),
        headers=(("List-Id", f"{LIST_NAME} <lettre.{host}>"),
                 ("List-Unsubscribe", f"<{unsubscribe_all}>"),
                 ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")),
        kind="letter", transactional=False, dedupe_key=f"letter:{user.id}:{period.key}")


def build_letters(now: datetime | None = None) -> LetterRun:
    """Queue the letters due now. Idempotent: a second run in the same period adds nothing."""
    now = now or utcnow()
    with one_run():
        return _build(now)


def _build(now: datetime) -> LetterRun:
    run = LetterRun()
    shared = _Shared(waiting_by_person())
    for user in recipients():
        if not letter_sections(user):
            continue
        period = period_of(user, now)
        if _already_built(user, period):
            run.already += 1
            continue
        sections = compose(user, now, _since(user, period, now), shared)
        counts = {s.key: len(s.items) for s in sections}
        sheet_ids = sorted({i.sheet_id for s in sections for i in s.items if i.sheet_id})
        db.session.add(Letter(user_id=user.id, period_key=period.key, built_at=now,
                              queued=bool(sections), counts=counts, sheet_ids=sheet_ids))
        try:
            db.session.flush()
        except IntegrityError:  # another run got there first
            db.session.rollback()
            run.already += 1
            continue
        if sections:
            mail.queue(render_letter(user, sections, period))
            note_reminded([i.sheet_id for s in sections if s.key in ("verifier", "moderation")
                           for i in s.items if i.sheet_id], now)
            run.queued.append((user, counts))
        else:
            run.empty += 1
        commit()
    return run
