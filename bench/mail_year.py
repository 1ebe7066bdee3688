"""A simulated year of "La lettre des fiches": does the base stay true when people answer rarely?

    .venv/bin/python -m bench.mail_year                          # 1,000 sheets, p = 0.3 and 0.6
    .venv/bin/python -m bench.mail_year --sheets 300 --probabilities 0.3 --seed 2

A fresh SQLite database per answer probability p gets 200 contributors (trusted: their sheets
publish at once), 3 moderators, 50 followers (readers with standing) and 1,000 published sheets,
each created by a contributor (its owner); 30 % also edited by a second contributor. Review
intervals: 70 % 12 months, 15 % 6, 15 % 24; each sheet was last reviewed at a random time within
its interval (the base starts fresh). A simulated clock then runs 365 days:

- every day: approved edits (300 a year) and questions answered by the team (200 asked a year,
  each answered with probability p within a week) are signs of life; followers read sheets and
  answer "toujours juste ?" (2 a month each, with probability p; 9 in 10 say "Oui");
- the first Wednesday of each month, everyone's letter is built from
  kb.freshness.letter_items_for_owner (+ letter_items_for_moderator for moderators); a letter
  with items is one mail; note_reminded() is told of its sheets; each recipient answers the
  letter with probability p and then clicks every item's first action through the signed link
  (kb.freshness.operations.use_action): owners "Confirmer", moderators "Confirmer" (7 in 10:
  they checked the initiative is alive) or "Archiver" (3 in 10).

Printed as tables: fresh % at the start and at year end (archived sheets left out), sheets
archived, letters and other mails per person per month (mean, max) by kind, most letters one
person got in one month. Goal: >= 90 % fresh at p = 0.3, never two letters in one period.

The lead plugs the real letters engine in `build_letter` (one function: who gets what this
period) and the outbox counts in `mail_counts` (one function: (recipient, kind, time) rows in,
mean and max per person per month by kind out); the simulation loop is `simulate`.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from kb import create_app, mail
from kb.auth.models import User
from kb.extensions import db
from kb.freshness import operations as freshness
from kb.freshness import readers
from kb.freshness.letters import FreshnessItem, TokenError
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
    archived: int = 0
    mails: list[tuple[str, str, datetime]] = field(default_factory=list)  # (to, kind, when)
    seconds: float = 0.0


def first_wednesdays(start: datetime, days: int) -> list[datetime]:
    out, day = [], start
    while day < start + timedelta(days=days):
        if day.weekday() == 2 and day.day <= 7:
            out.append(day.replace(hour=7))
        day += timedelta(days=1)
    return out


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


def build_base(rng: random.Random, n_sheets: int, n_contributors: int,
               n_followers: int) -> tuple[list[User], list[User], list[User]]:
    contributors = [_person(f"contrib{i}@bench.test", f"Contributeur {i}", trusted=True)
                    for i in range(n_contributors)]
    moderators = [_person(f"modo{i}@bench.test", f"Modo {i}", role="moderator") for i in range(3)]
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


def build_letter(user: User, now: datetime) -> list[FreshnessItem]:
    """This person's freshness items this period (the letters engine's two sections)."""
    return freshness.letter_items_for_owner(user, now) + \
        freshness.letter_items_for_moderator(user, now)


def _click(item: FreshnessItem, label: str, now: datetime) -> None:
    url = dict(item.actions).get(label)
    if url is None:
        return
    try:
        freshness.use_action(url.rsplit("/", 1)[1], None, now)
    except (TokenError, ValueError):  # done since by someone else
        db.session.rollback()
        return
    commit()


def simulate(p: float, seed: int, n_sheets: int, n_contributors: int, n_followers: int,
             letter: Callable[[User, datetime], list[FreshnessItem]] = build_letter,
             escalation: tuple[int, int] | None = None) -> Year:
    """One year at answer probability `p`; returns what happened (mails as rows)."""
    rng = random.Random(seed)
    year = Year(p)
    # In memory when the system has it: the year commits thousands of times.
    shm = Path("/dev/shm")
    tmp = Path(tempfile.mkdtemp(prefix="kb-mail-year-", dir=shm if shm.is_dir() else None))
    app = _app(tmp, escalation)
    clock = {"now": START}

    def record(message: mail.Mail) -> None:  # the other mails the domains send (reports...)
        kind = "report.outdated" if message.subject.startswith("Fiche à vérifier") else "other"
        year.mails.append((message.to, kind, clock["now"]))

    mail.send = record  # type: ignore[assignment]  # count, don't deliver
    with app.app_context():
        db.create_all()
        started = time.perf_counter()
        contributors, moderators, followers = build_base(rng, n_sheets, n_contributors,
                                                         n_followers)
        people = contributors + moderators
        ids = db.session.scalars(select(Sheet.id)).all()
        year.fresh_start = fresh_share(START)[0]
        letter_days = set(first_wednesdays(START, DAYS))
        questions: list[tuple[datetime, int]] = []  # (answer time, sheet id)
        for day in range(DAYS):
            now = clock["now"] = START + timedelta(days=day)
            for _ in range(_poisson(rng, 300 / DAYS)):  # an approved edit
                _sign_of_life(rng.choice(ids), now)
            for _ in range(_poisson(rng, 200 / DAYS)):  # a question asked to the team
                sheet_id = rng.choice(ids)
                owner = db.session.get(Sheet, sheet_id)
                year.mails.append((f"team-of-{sheet_id}", "question.relay", now))
                if owner is not None and rng.random() < p:
                    questions.append((now + timedelta(days=rng.randint(1, 7)), sheet_id))
            for when, sheet_id in [q for q in questions if q[0] <= now]:
                questions.remove((when, sheet_id))
                year.mails.append((f"asker-of-{sheet_id}", "question.answer", now))
                _sign_of_life(sheet_id, now)
            for reader in followers:
                if rng.random() < 2 / 30 and rng.random() < p:
                    _reader_answers(rng, reader, rng.choice(ids), now)
            commit()
            for letter_time in sorted(t for t in letter_days if t.date() == now.date()):
                clock["now"] = letter_time
                for person in people:
                    items = letter(person, letter_time)
                    if not items:
                        continue
                    year.mails.append((person.email, "letter", letter_time))
                    freshness.note_reminded([i.sheet_id for i in items], letter_time)
                    commit()
                    if rng.random() >= p:
                        continue
                    for item in items:
                        archive = "Archiver" in dict(item.actions) and rng.random() < 0.3
                        _click(item, "Archiver" if archive else "Confirmer", letter_time)
        end = START + timedelta(days=DAYS)
        year.fresh_end, year.published_end = fresh_share(end)
        year.archived = db.session.scalar(select(func.count(Sheet.id)).where(
            Sheet.state == SheetState.ARCHIVED.value)) or 0
        year.seconds = time.perf_counter() - started
        db.session.remove()
        db.engine.dispose()
    shutil.rmtree(tmp, ignore_errors=True)
    return year


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


def _reader_answers(rng: random.Random, reader: User, sheet_id: int, now: datetime) -> None:
    sheet = db.session.get(Sheet, sheet_id)
    if sheet is None or not readers.may_answer(reader, sheet) \
            or readers.answer_of(reader, sheet) is not None:
        return
    readers.answer(sheet, reader, rng.random() < 0.9, now=now)


def mail_counts(rows: list[tuple[str, str, datetime]]) -> dict[str, tuple[float, int]]:
    """Mails per person per month by kind: kind -> (mean over people who got one, max)."""
    per: Counter[tuple[str, str, str]] = Counter(
        (kind, to, f"{when:%Y-%m}") for to, kind, when in rows)
    by_kind: dict[str, list[int]] = defaultdict(list)
    for (kind, _, _), n in per.items():
        by_kind[kind].append(n)
    return {kind: (sum(ns) / len(ns), max(ns)) for kind, ns in sorted(by_kind.items())}


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
    parser.add_argument("--probabilities", type=float, nargs="+", default=[0.3, 0.6])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--escalation", type=int, nargs=2, metavar=("OTHERS", "MODERATORS"),
                        help="unanswered letters before the other contributors, then the "
                             "moderators, are asked (default: the application's, 2 and 4)")
    args = parser.parse_args()
    escalation = (args.escalation[0], args.escalation[1]) if args.escalation else None
    years = [simulate(p, args.seed, args.sheets, args.contributors, args.followers,
                      escalation=escalation)
             for p in args.probabilities]
    print(f"{args.sheets} sheets, {args.contributors} contributors, 3 moderators, "
          f"{args.followers} followers; {DAYS} simulated days, monthly letters; escalation "
          f"after {escalation or '2, 4'} unanswered letters\n")
    print(_table(["p", "fresh at start", "fresh at year end", "published", "archived", "goal",
                  "time (s)"],
                 [[y.p, f"{y.fresh_start:.1%}", f"{y.fresh_end:.1%}", y.published_end,
                   y.archived, "ok" if y.p > 0.3 or y.fresh_end >= 0.9 else "MISSED",
                   f"{y.seconds:.0f}"] for y in years]))
    print()
    rows = []
    for y in years:
        for kind, (mean, top) in mail_counts(y.mails).items():
            rows.append([y.p, kind, f"{mean:.2f}", top])
    print(_table(["p", "kind", "mean / person / month (who got one)", "max"], rows))
    worst = max((mail_counts([r for r in y.mails if r[1] == "letter"]).get("letter", (0, 0))[1]
                 for y in years), default=0)
    print(f"\nmost letters one person got in one month: {worst} (goal: 1)")


if __name__ == "__main__":
    main()
