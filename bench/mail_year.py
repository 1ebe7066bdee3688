"""A simulated year of "La lettre des fiches": does the base stay true when people answer rarely?

    .venv/bin/python -m bench.mail_year                          # 1,000 sheets, p = 0.3 and 0.6
    .venv/bin/python -m bench.mail_year --sheets 100 --contributors 20 --days 90   # a quick check

A fresh SQLite database per answer probability p gets 200 contributors (trusted: their sheets
publish at once; 10 % chose a weekly letter on a random weekday, the others the monthly one),
3 moderators, 50 readers with standing and 1,000 published sheets, each created by a
contributor (its owner); 30 % also edited by a second contributor. Review intervals: 70 % 12
months, 15 % 6, 15 % 24; each sheet was last reviewed at a random time within its interval (the
base starts fresh). Every kb module's `utcnow` reads a simulated clock, which runs 365 days:

- every day: approved edits (300 a year; the review date moves as publish() moves it);
  questions asked by readers through kb.questions.ask (200 a year; the team answers with
  probability p within a week through kb.questions.answer, a sign of life); the questions
  sweep (reminders, closing); readers answer "toujours juste ?" (2 a month each, with
  probability p; 9 in 10 say "Oui");
- then the real letters engine, `kb.letters.operations.build_letters(now=noon)`: its schedule
  decides who gets a letter (monthly on the first Wednesday, weekly on the chosen day). Each
  letter queued in the outbox is read with probability p, as a person reads it: the text body's
  one-click links (at most 5 items a section) are followed through the operations their views
  call: "Confirmer" (a moderator "Archiver" 3 in 10 of the sheets escalated to them), a
  reported sheet's "Toujours juste : confirmer", a waiting question's "Répondre".

Mails are the `outbox` rows (recipient, kind, created_at): mails per person per month by kind
(mean over every account, mean over those who got one, max), letters per person and period
(the recipient's own period), and mails lost = mails queued by committed transactions (counted
where kb.mail.queue is called) that are not in the outbox. At the end `kb mail send` runs once
without KB_MAIL_URL (the log transport): every row must be sent. Goal: >= 90 % fresh at p = 0.3,
counting archived sheets as not fresh; never two letters in one period; 0 lost.
"""


from __future__ import annotations

import argparse
import logging
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from kb import create_app, mail, timeutil
from kb.auth.models import User
from kb.errors import KbError
from kb.extensions import db
from kb.freshness import operations as freshness
from kb.freshness import readers
from kb.letters import schedule
from kb.letters.operations import build_letters
from kb.mail import sender
from kb.mail.models import MailState, OutboxMail
from kb.questions import operations as questions
from kb.questions.models import Question, QuestionStatus
from kb.sheets import operations as sheets
from kb.sheets.models import Sheet, SheetState
from kb.transaction import commit

START = datetime(2031, 1, 1, 8, 0)
ACCOUNTS_SINCE = datetime(2020, 1, 1)
DAYS = 365
TAGS = ["accueil", "numérique", "insertion", "logement", "mobilité", "santé", "jeunesse"]
DEPARTMENTS = ["29", "44", "69", "93", "85", "31", "13", "59", "35", "75"]


@dataclass
class Year:
    p: float
    fresh_start: float = 0.0
    fresh_end: float = 0.0
    published_end: int = 0
    sheets: int = 0
    archived: int = 0
    people: int = 0
    mails: list[tuple[str, str, datetime]] = field(default_factory=list)  # outbox rows
    letters: Counter[tuple[str, str]] = field(default_factory=Counter)  # (to, period): n
    transactional: set[str] = field(default_factory=set)  # kinds sent right after commit
    letters_built: int = 0
    clicks: int = 0
    queued: int = 0  # mails queued by committed transactions
    lost: int = 0    # of those, not in the outbox
    sent: int = 0
    sent_by_pass: int = 0
    seconds: float = 0.0

    @property
    def fresh_all(self) -> float:
        """Fresh among every sheet of the base, archived ones counted as not fresh."""
        return self.fresh_end * self.published_end / self.sheets if self.sheets else 0.0


def _app(tmp: Path, escalation: tuple[int, int] | None) -> Flask:
    config: dict[str, Any] = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'kb.sqlite3'}",
                              "KB_INDEX_DIR": str(tmp / "index"), "SECRET_KEY": "bench",
                              "KB_BASE_URL": "http://kb.bench"}
    if escalation:
        config["KB_FRESHNESS_TO_CONTRIBUTORS"], config["KB_FRESHNESS_TO_MODERATORS"] = escalation
    return create_app(config)


def _person(email: str, name: str, role: str = "contributor", trusted: bool = False) -> User:
    # Accounts from before today's real date: standing (kb/moderation/standing.py) reads the
    # real clock, and these readers must have it.
    user = User(email=email, display_name=name, role=role, trusted=trusted,
                created_at=ACCOUNTS_SINCE, email_confirmed_at=ACCOUNTS_SINCE)
    db.session.add(user)
    return user


def build_base(rng: random.Random, n_sheets: int, n_contributors: int, n_followers: int,
               n_moderators: int = 3) -> tuple[list[User], list[User], list[User]]:
    contributors = [_person(f"contrib{i}@bench.test", f"Contributeur {i}", trusted=True)
                    for i in range(n_contributors)]
    moderators = [_person(f"modo{i}@bench.test", f"Modo {i}", role="moderator") for i in range(n_moderators)]
    followers = [_person(f"lecteur{i}@bench.test", f"Lecteur {i}") for i in range(n_followers)]
    commit()
    for n in range(n_sheets):
        owner = rng.choice(contributors)
        revision = sheets.create_sheet({
            "title": f"Initiative {n}", "summary": f"Une initiative de {owner.display_name}.",
            "actor_type": "association", "scale": "commune", "city": "",
            "department": rng.choice(DEPARTMENTS), "tags": rng.sample(TAGS, 2)}, owner)
        sheet = revision.sheet
        if rng.random() < 0.3:
            other = rng.choice([c for c in contributors if c.id != owner.id])
            sheets.edit_sheet(sheet, {"summary": f"Complétée par {other.display_name}."}, other,
                              revision.id)
        sheet.review_interval_months = rng.choices([12, 6, 24], weights=[70, 15, 15])[0]
        span = sheet.review_due_at - sheet.last_reviewed_at
        sheet.last_reviewed_at = START - span * rng.random()
        if n % 200 == 199:
            commit()
    commit()
    return contributors, moderators, followers


def fresh_share(now: datetime) -> tuple[float, int]:
    published = db.session.scalars(select(Sheet).where(
        Sheet.state == SheetState.ACTIVE.value, Sheet.approved_revision_id.is_not(None))).all()
    fresh = sum(1 for s in published if s.review_due_at > now)
    return (fresh / len(published) if published else 0.0), len(published)


# --- the clock ---------------------------------------------------------------------------------

@contextmanager
def simulated_clock(clock: dict[str, datetime]) -> Iterator[None]:
    """Every kb module's `utcnow` reads the simulated clock (the outbox's created_at, questions,
    tokens...): the bench injects time, as the tests do, instead of sleeping a year."""
    real = timeutil.utcnow

    def fake() -> datetime:
        return clock["now"]

    patched = [m for name, m in list(sys.modules.items())
               if (name == "kb" or name.startswith("kb.")) and getattr(m, "utcnow", None) is real]
    for module in patched:
        module.utcnow = fake  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module in patched:
            module.utcnow = real  # type: ignore[attr-defined]


# --- counting what is queued ------------------------------------------------------------------

@contextmanager
def counted_queue() -> Iterator[list[str]]:
    """The Message-IDs of the mails queued by transactions that committed (a rolled-back change
    queues nothing), whoever queued them: kb.mail.queue is the only way in."""
    real = mail.queue
    pending: list[str] = []
    committed: list[str] = []

    def queue(message: mail.Mail) -> OutboxMail | None:
        row = real(message)
        if row is not None:
            pending.append(row.message_id)
        return row

    def after_commit(_: Session) -> None:
        committed.extend(pending)
        pending.clear()

    def after_rollback(*_: Any) -> None:
        pending.clear()

    mail.queue = queue  # type: ignore[assignment]
    event.listen(Session, "after_commit", after_commit)
    event.listen(Session, "after_rollback", after_rollback)
    try:
        yield committed
    finally:
        mail.queue = real  # type: ignore[assignment]
        event.remove(Session, "after_commit", after_commit)
        event.remove(Session, "after_rollback", after_rollback)


# --- a person reading a letter ------------------------------------------------------------------

ACTION_LINE = re.compile(r"^\s+- (?P<label>.+?) : (?P<url>https?://\S+)$")


def letter_items(body: str) -> list[list[tuple[str, str]]]:
    """The one-click actions of each item of a letter's text body, as a person sees them (at
    most CAP items a section: the rest is behind "et N autres")."""
    items: list[list[tuple[str, str]]] = []
    for line in body.splitlines():
        if line.startswith("* "):
            items.append([])
        elif items and (match := ACTION_LINE.match(line)):
            items[-1].append((match["label"], match["url"]))
    return items


def _do(action: Callable[[], object]) -> bool:
    """One click: the operation the link's view calls, committed; False when the link no
    longer works (done since by someone else, expired...)."""
    try:
        action()
    except (KbError, PermissionError, ValueError):
        db.session.rollback()
        return False
    commit()
    return True


def answer_letter(rng: random.Random, body: str, now: datetime) -> int:
    """Follow the letter's links: confirm each sheet listed (a moderator archives 3 in 10 of
    the sheets escalated to them), answer each waiting question. Returns clicks that worked."""
    done = 0
    for actions in letter_items(body):
        links = dict(actions)
        token = ""
        if "Archiver" in links and rng.random() < 0.3:
            token = links["Archiver"].rsplit("/", 1)[1]
            done += _do(lambda t=token: freshness.use_action(t, None, now))
        elif "Confirmer" in links:
            token = links["Confirmer"].rsplit("/", 1)[1]
            done += _do(lambda t=token: freshness.use_action(t, None, now))
        elif "Toujours juste : confirmer" in links:  # a sheet a reader reported outdated
            token = links["Toujours juste : confirmer"].rsplit("/", 1)[1]
            done += _do(lambda t=token: freshness.use_token(t))
        elif "Répondre" in links:
            token = links["Répondre"].rsplit("/", 1)[1]
            done += _do(lambda t=token: questions.answer(
                questions.question_for_token(t), "Oui, toujours ; écrivez-nous.", now=now))
    return done


# --- the year -----------------------------------------------------------------------------------

def simulate(p: float, seed: int, n_sheets: int, n_contributors: int, n_followers: int,
             escalation: tuple[int, int] | None = None, days: int = DAYS,
             weekly_share: float = 0.1, n_moderators: int = 3) -> Year:
    """One year at answer probability `p` through the real letters engine and the real outbox;
    returns what happened (the outbox rows, and the letters per period)."""
    rng = random.Random(seed)
    year = Year(p)
    # In memory when the system has it: the year commits thousands of times.
    shm = Path("/dev/shm")
    tmp = Path(tempfile.mkdtemp(prefix="kb-mail-year-", dir=shm if shm.is_dir() else None))
    app = _app(tmp, escalation)
    clock = {"now": START}
    quiet = logging.getLogger("kb")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # the log transport would print every mail, and more
    try:
        with app.app_context(), simulated_clock(clock), counted_queue() as committed:
            db.create_all()
            started = time.perf_counter()
            contributors, _, followers = build_base(rng, n_sheets, n_contributors,
                                                    n_followers, n_moderators)
            for person in contributors:  # some people chose a weekly letter ("Mon compte")
                if rng.random() < weekly_share:
                    person.letter_period, person.letter_weekday = "week", rng.randrange(5)
            commit()
            ids = db.session.scalars(select(Sheet.id)).all()
            year.fresh_start = fresh_share(START)[0]
            answers: list[tuple[datetime, int]] = []  # (when the team answers, question id)
            seen = 0  # outbox rows already read
            for day in range(days):
                now = clock["now"] = START + timedelta(days=day)
                for _ in range(_poisson(rng, 300 / DAYS)):  # an approved edit
                    _sign_of_life(rng.choice(ids), now)
                for _ in range(_poisson(rng, 200 / DAYS)):  # a reader asks the team
                    asker, sheet_id, answered = rng.choice(followers), rng.choice(ids), rng.random()
                    question = _ask(asker, sheet_id, now)
                    if question is not None and answered < p:
                        answers.append((now + timedelta(days=rng.randint(1, 7)), question))
                for when, question_id in [a for a in answers if a[0] <= now]:
                    answers.remove((when, question_id))
                    _answer(question_id, now)
                for reader in followers:
                    if rng.random() < 2 / 30 and rng.random() < p:
                        _reader_answers(reader, rng.choice(ids), rng.random() < 0.9, now)
                commit()
                questions.sweep(now)  # cron: reminders, then closing, of unanswered questions
                commit()
                # cron: `kb mail letters` (hourly; once a day is enough here: a period starts
                # at 8:00 Paris time and this runs at noon UTC)
                clock["now"] = now + timedelta(hours=12)
                built = build_letters(now=clock["now"])
                year.letters_built += len(built.queued)
                for row in db.session.scalars(select(OutboxMail).where(
                        OutboxMail.id > seen, OutboxMail.kind == "letter")
                        .order_by(OutboxMail.id)):
                    # Whether this person reads this letter does not hang on what earlier
                    # letters said: two versions of the product compare on the same people.
                    person = random.Random(f"{seed}:{row.recipient}:{row.created_at:%Y-%m-%d}")
                    if person.random() < p:
                        year.clicks += answer_letter(person, row.body_text, clock["now"])
                seen = db.session.scalar(select(func.max(OutboxMail.id))) or 0
            end = clock["now"] = START + timedelta(days=days)
            year.fresh_end, year.published_end = fresh_share(end)
            year.archived = db.session.scalar(select(func.count(Sheet.id)).where(
                Sheet.state == SheetState.ARCHIVED.value)) or 0
            year.sheets = db.session.scalar(select(func.count(Sheet.id))) or 0
            year.mails = [(r.recipient, r.kind, r.created_at) for r in db.session.execute(
                select(OutboxMail.recipient, OutboxMail.kind, OutboxMail.created_at))]
            year.transactional = set(db.session.scalars(select(OutboxMail.kind).where(
                OutboxMail.transactional.is_(True)).distinct()))
            year.letters = letters_per_period(year.mails)
            stored = set(db.session.scalars(select(OutboxMail.message_id)))
            year.queued, year.lost = len(committed), sum(1 for m in committed if m not in stored)
            year.people = db.session.scalar(select(func.count(User.id))) or 0
            # `kb mail send` once, without KB_MAIL_URL: the log transport "sends" them all.
            year.sent_by_pass = sender.send_due(end).sent
            year.sent = _count_sent()
            year.seconds = time.perf_counter() - started
            db.session.remove()
            db.engine.dispose()
    finally:
        quiet.setLevel(level)
        shutil.rmtree(tmp, ignore_errors=True)
    return year


def _count_sent() -> int:
    return db.session.scalar(select(func.count(OutboxMail.id)).where(
        OutboxMail.state == MailState.SENT.value)) or 0


def _ask(asker: User, sheet_id: int, now: datetime) -> int | None:
    sheet = db.session.get(Sheet, sheet_id)
    if sheet is None or not sheet.is_published:
        return None
    try:
        question = questions.ask(sheet, asker, "Accueillez-vous encore du public cette année ?",
                                 "Orienter une personne vers vous", now=now)
    except KbError:
        db.session.rollback()
        return None
    commit()
    return question.id


def _answer(question_id: int, now: datetime) -> None:
    question = db.session.get(Question, question_id)
    if question is not None and question.status == QuestionStatus.OPEN.value:
        _do(lambda: questions.answer(question, "Oui, toujours ; écrivez-nous.", now=now))


def _poisson(rng: random.Random, mean: float) -> int:
    count, total = 0, rng.expovariate(1.0)
    while total < mean:
        count += 1
        total += rng.expovariate(1.0)
    return count


def _sign_of_life(sheet_id: int, now: datetime) -> None:
    sheet = db.session.get(Sheet, sheet_id)
    if sheet is not None and sheet.state == SheetState.ACTIVE.value and now > sheet.last_reviewed_at:
        sheet.last_reviewed_at = now  # what publish() and questions.answer() do


def _reader_answers(reader: User, sheet_id: int, yes: bool, now: datetime) -> None:
    sheet = db.session.get(Sheet, sheet_id)
    if sheet is None or not readers.may_answer(reader, sheet) \
            or readers.answer_of(reader, sheet) is not None:
        return
    readers.answer(sheet, reader, yes, now=now)


def letters_per_period(rows: list[tuple[str, str, datetime]]) -> Counter[tuple[str, str]]:
    """Letter rows of the outbox per (recipient, the period its time falls in, by the
    recipient's own choice of period)."""
    choice = {u.email: (u.letter_period, u.letter_weekday) for u in db.session.scalars(select(User))}
    return Counter((to, schedule.period_for(*choice[to], when).key)
                   for to, kind, when in rows if kind == "letter")


def mail_counts(rows: list[tuple[str, str, datetime]], people: int, months: float
                ) -> dict[str, tuple[float, float, int]]:
    """Mails per person per month by kind: kind -> (mean over every account, mean over the
    person-months that had one, max in one calendar month)."""
    per: Counter[tuple[str, str, str]] = Counter(
        (kind, to, f"{when:%Y-%m}") for to, kind, when in rows)
    by_kind: dict[str, list[int]] = defaultdict(list)
    for (kind, _, _), n in per.items():
        by_kind[kind].append(n)
    return {kind: (sum(ns) / (people * months), sum(ns) / len(ns), max(ns))
            for kind, ns in sorted(by_kind.items())}


def _table(header: list[str], rows: list[list[Any]]) -> str:
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sheets", type=int, default=1000)
    parser.add_argument("--contributors", type=int, default=200)
    parser.add_argument("--followers", type=int, default=50)
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--weekly", type=float, default=0.1,
                        help="share of contributors who chose a weekly letter (default 0.1)")
    parser.add_argument("--probabilities", type=float, nargs="+", default=[0.3, 0.6])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--escalation", type=int, nargs=2, metavar=("OTHERS", "MODERATORS"),
                        help="unanswered letters before the other contributors, then the "
                             "moderators, are asked (default: the application's, 2 and 4)")
    args = parser.parse_args()
    escalation = (args.escalation[0], args.escalation[1]) if args.escalation else None
    years = [simulate(p, args.seed, args.sheets, args.contributors, args.followers,
                      escalation=escalation, days=args.days, weekly_share=args.weekly)
             for p in args.probabilities]
    months = args.days / 365 * 12
    print(f"{args.sheets} sheets, {args.contributors} contributors ({args.weekly:.0%} weekly "
          f"letters), 3 moderators, {args.followers} readers; {args.days} simulated days; "
          f"escalation after {escalation or '2, 4'} unanswered letters; seed {args.seed}\n")
    print(_table(["p", "fresh at start", "fresh at end (published)", "fresh at end (all)",
                  "archived", "goal >= 90 %", "time (s)"],
                 [[y.p, f"{y.fresh_start:.1%}", f"{y.fresh_end:.1%}", f"{y.fresh_all:.1%}",
                   y.archived, "ok" if y.fresh_all >= 0.9 else "missed",
                   f"{y.seconds:.0f}"] for y in years]))
    print()
    rows = []
    for y in years:
        for kind, (mean, mean_got, top) in mail_counts(y.mails, y.people, months).items():
            rows.append([y.p, kind, f"{mean:.2f}", f"{mean_got:.2f}", top])
        other = [r for r in y.mails if r[1] not in y.transactional]
        mean, mean_got, top = mail_counts([(to, "", w) for to, _, w in other],
                                          y.people, months).get("", (0.0, 0.0, 0))
        rows.append([y.p, "all non-transactional", f"{mean:.2f}", f"{mean_got:.2f}", top])
    print(_table(["p", "kind", "mean / person / month", "mean (who got one)", "max"], rows))
    print()
    print(_table(["p", "letters", "most letters one person got in one period (goal 1)",
                  "one-click actions done", "queued", "in the outbox", "lost (goal 0)",
                  "sent by `kb mail send` (log)", "sent in all"],
                 [[y.p, y.letters_built, max(y.letters.values(), default=0), y.clicks, y.queued,
                   len(y.mails), y.lost, y.sent_by_pass, f"{y.sent}/{len(y.mails)}"]
                  for y in years]))


if __name__ == "__main__":
    main()
