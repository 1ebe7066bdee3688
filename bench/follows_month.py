"""Follows: the mail count of a simulated month, through the letter (kb/letters).

    .venv/bin/python -m bench.follows_month                 # 1,000 sheets, 200 followers, 300 changes
    .venv/bin/python -m bench.follows_month --followers 500 --changes 1000 --seed 7

A fresh SQLite database gets N published sheets (tags, départements, searchable words from the
seeds' vocabulary), F followers with 1 to 5 follows each (tags, territories, searches; a fifth of
them monthly, the others weekly on Monday), and C sheet changes spread over 30 days (edits of
existing sheets and new sheets). `kb mail letters` runs once a simulated day (cron runs it
hourly; the letter of a period is built once whichever run comes first). Printed: letters
queued, letters per person per period (the goal is never more than one), followers who got
nothing, and what one mail per follow per change (the naive notification baseline, counted in
the same run) would have sent.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kb import create_app, mail
from kb.auth.models import User
from kb.auth.preferences import set_letter_period
from kb.extensions import db
from kb.follows import operations as follows
from kb.follows.models import Follow
from kb.letters.operations import build_letters
from kb.sheets import operations as sheets
from kb.text import slugify
from kb.transaction import commit, mark_changed

TAGS = ["accueil", "numérique", "insertion", "logement", "mobilité", "santé", "jeunesse",
        "emploi", "alimentation", "culture", "aidants", "précarité"]
DEPARTMENTS = ["29", "44", "69", "93", "85", "31", "13", "59", "35", "75"]
WORDS = ["mairie", "médiation", "atelier", "permanence", "bénévoles", "quartier", "insertion",
         "accompagnement", "formation", "numérique", "coopérative", "tiers-lieu"]
START = datetime(2030, 1, 7, 8, 0)  # a Monday, 09:00 in Paris: the weekly letters are due


def _sheet(rng: random.Random, n: int) -> dict[str, Any]:
    words = rng.sample(WORDS, 3)
    return {"title": f"Initiative {n} : {' '.join(words)}", "summary": " ".join(words),
            "context": f"Une expérience de {words[0]} et de {words[1]}.", "actor_type": "association",
            "scale": rng.choice(["commune", "quartier", "departement"]),
            "department": rng.choice(DEPARTMENTS), "city": "",
            "tags": rng.sample(TAGS, rng.randint(1, 3))}


def _dated(revision: Any, when: datetime, new: bool) -> None:
    sheet = revision.sheet
    sheet.updated_at = when
    if new:
        sheet.created_at = when
    mark_changed([sheet])


def run(n_sheets: int, n_followers: int, n_changes: int, seed: int) -> None:
    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="kb-follows-bench-"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'kb.sqlite3'}",
                      "KB_INDEX_DIR": str(tmp / "index"), "SECRET_KEY": "bench",
                      "KB_BASE_URL": "http://kb.bench"})
    sent: list[tuple[str, str]] = []  # (recipient, dedupe key: one per person and period)
    clock = {"now": START}

    def record(message: mail.Mail) -> None:
        if message.to in people:  # the followers' letters (the author gets the moderators')
            sent.append((message.to, message.dedupe_key or ""))

    mail.queue = record  # type: ignore[assignment]  # count, don't deliver
    with app.app_context():
        db.create_all()
        # Confirmed: an unconfirmed author's sheets stay pending, and no follow ever matched.
        author = User(email="auteur@bench.test", display_name="Auteur", role="moderator",
                      email_confirmed_at=START - timedelta(days=90))
        db.session.add(author)
        commit()
        started = time.perf_counter()
        revisions = []
        for n in range(n_sheets):
            revision = sheets.create_sheet(_sheet(rng, n), author)
            _dated(revision, START - timedelta(days=60), new=True)
            revisions.append(revision)
            if n % 200 == 199:
                commit()
        commit()
        build = time.perf_counter() - started

        people: dict[str, str] = {}
        for i in range(n_followers):
            user = User(email=f"suiveur{i}@bench.test", display_name=f"Suiveur {i}",
                        email_confirmed_at=START - timedelta(days=90))
            db.session.add(user)
            db.session.flush()
            period = "month" if i % 5 == 0 else "week"
            set_letter_period(user, period, 0)
            people[user.email] = period
            for _ in range(rng.randint(1, 5)):
                choice = rng.random()
                params = ({"tag": slugify(rng.choice(TAGS))} if choice < 0.4
                          else {"department": rng.choice(DEPARTMENTS)} if choice < 0.7
                          else {"q": rng.choice(WORDS)})
                follows.follow(user, params, now=START - timedelta(days=1))
        commit()
        follow_total = db.session.query(Follow).count()

        # The changes, in time order over 30 days; the letters run every day at 08:00 UTC.
        changes = sorted(START + timedelta(minutes=rng.randint(60, 30 * 24 * 60 - 1))
                         for _ in range(n_changes))
        naive = 0
        follow_rows = [(f.user_id, f.params) for f in db.session.query(Follow)]
        digest_time = 0.0
        for day in range(31):
            clock["now"] = START + timedelta(days=day)
            for when in [c for c in changes if clock["now"] - timedelta(days=1) <= c < clock["now"]]:
                if rng.random() < 0.3:
                    revision = sheets.create_sheet(_sheet(rng, len(revisions)), author)
                    revisions.append(revision)
                    _dated(revision, when, new=True)
                    data = revision.data
                else:
                    base = rng.choice(revisions)
                    sheet = base.sheet
                    edit = sheets.edit_sheet(sheet, {"summary": f"Mise à jour du {when:%d/%m}."},
                                             author, sheet.approved_revision_id)
                    _dated(edit, when, new=False)
                    data = edit.data
                commit()
                naive += sum(1 for _, p in follow_rows if _naive_match(p, data))
            started = time.perf_counter()
            build_letters(clock["now"])
            digest_time += time.perf_counter() - started

    per_period: Counter[tuple[str, str]] = Counter(sent)
    worst = max(per_period.values(), default=0)
    reached = len({to for to, _ in sent})
    print(f"base: {n_sheets} sheets built in {build:.1f} s; {n_followers} followers, "
          f"{follow_total} follows; {n_changes} changes over 30 days; letters run daily")
    print(f"letters queued: {len(sent)} (naive one mail per follow per change: {naive}, "
          f"ratio {len(sent) / naive if naive else 0:.3f})")
    print(f"mails per person per period: max {worst} (goal: never more than 1)")
    print(f"followers who got at least one letter: {reached} / {n_followers}")
    print(f"time in `kb mail letters`: {digest_time:.1f} s for 31 runs "
          f"({digest_time / 31 * 1000:.0f} ms per run)")
    if worst > 1:
        raise SystemExit("FAIL: someone got more than one mail in a period")


def _naive_match(params: dict[str, str], data: dict[str, Any]) -> bool:
    if "tag" in params:
        return params["tag"] in [slugify(t) for t in data.get("tags", [])]
    if "department" in params:
        return str(data.get("department")) == params["department"]
    text = " ".join(str(v) for v in data.values()).lower()
    return params.get("q", "").lower() in text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sheets", type=int, default=1000)
    parser.add_argument("--followers", type=int, default=200)
    parser.add_argument("--changes", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    run(args.sheets, args.followers, args.changes, args.seed)


if __name__ == "__main__":
    main()
