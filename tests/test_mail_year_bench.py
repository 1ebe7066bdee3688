"""The year simulation (bench/mail_year.py) on a tiny base: what it counts is what the real
letters engine and the real outbox did, and the outbox's promises hold over 90 days."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.mail_year import Year, letter_items, mail_counts, simulate


@pytest.fixture(scope="module")
def year() -> Year:
    # Everyone answers: letters lead to clicks, questions get answers, all kinds of mail occur.
    return simulate(1.0, seed=3, n_sheets=30, n_contributors=20, n_followers=8, days=90,
                    weekly_share=0.3)


def test_the_real_engine_sent_letters_and_people_followed_their_links(year: Year) -> None:
    assert year.letters_built > 0
    assert Counter(kind for _, kind, _ in year.mails)["letter"] == year.letters_built
    assert year.clicks > 0  # sheets confirmed and questions answered from the letters' links


def test_no_mail_is_lost_and_the_sender_sends_them_all(year: Year) -> None:
    assert year.queued == len(year.mails) > 0
    assert year.lost == 0
    assert year.sent == len(year.mails)


def test_never_two_letters_in_one_period_for_one_person(year: Year) -> None:
    assert sum(year.letters.values()) == year.letters_built
    assert max(year.letters.values()) == 1


def test_counts_by_kind_add_up_to_the_outbox_rows(year: Year) -> None:
    months = 90 / 365 * 12
    counts = mail_counts(year.mails, year.people, months)
    by_kind = Counter(kind for _, kind, _ in year.mails)
    assert set(counts) == set(by_kind)
    for kind, (mean, _, top) in counts.items():
        assert round(mean * year.people * months) == by_kind[kind]
        assert 1 <= top <= by_kind[kind]
    assert {"question.relay", "question.answer"} <= year.transactional


def test_a_letter_is_read_as_a_person_reads_it() -> None:
    body = ("Bonjour,\n\n== À vérifier ==\n\n* Initiative 1 (bientôt)\n  http://kb/fiches/i-1\n"
            "  - Confirmer : http://kb/fraicheur/action/abc\n\n* Initiative 2 (en retard)\n"
            "  http://kb/fiches/i-2\n  - Confirmer : http://kb/fraicheur/action/def\n"
            "  - Archiver : http://kb/fraicheur/action/ghi\n"
            "Ne plus recevoir cette section : http://kb/lettre/desabonnement/x\n")
    assert letter_items(body) == [
        [("Confirmer", "http://kb/fraicheur/action/abc")],
        [("Confirmer", "http://kb/fraicheur/action/def"),
         ("Archiver", "http://kb/fraicheur/action/ghi")]]
