"""The word diff is bounded (no CPU denial of service through /fiches/<slug>/diff), still exact,
still word-level for ordinary edits, and its page is rate-limited. Timings: bench/diff.py."""

from __future__ import annotations

import difflib
import html
import random
import re
from typing import Any

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

import kb.sheets.diff as diff_module
from kb import create_app
from kb.sheets import operations
from kb.sheets.diff import word_diff
from kb.transaction import commit
from tests.test_spam import _run


def sides(marked: str) -> tuple[str, str]:
    """The old and the new text read back from the diff's HTML."""
    old = re.sub(r"</?del>", "", re.sub(r"<ins>.*?</ins>", "", marked, flags=re.S))
    new = re.sub(r"</?ins>", "", re.sub(r"<del>.*?</del>", "", marked, flags=re.S))
    return html.unescape(old), html.unescape(new)


def changes(marked: str) -> list[str]:
    return re.findall(r"<(?:del|ins)>(.*?)</(?:del|ins)>", marked, flags=re.S)


WORDISH = st.lists(st.sampled_from(list("ab c.,\n<&é'") + ["de ", "la ", "mot "]),
                   max_size=80).map("".join)


@settings(max_examples=300, deadline=None)
@given(WORDISH, WORDISH)
def test_the_diff_always_gives_back_both_texts_escaped(old: str, new: str) -> None:
    marked = str(word_diff(old, new))
    assert sides(marked) == (old, new)
    assert "<" not in re.sub(r"</?(?:del|ins)>", "", marked)


def test_ordinary_edits_keep_word_level_marks() -> None:
    assert str(word_diff("Un accueil chaleureux", "Un accueil inconditionnel")) == \
        "Un accueil <del>chaleureux</del><ins>inconditionnel</ins>"
    # Two words changed side by side read as one change, not two around a space.
    assert str(word_diff("le chat mange la souris", "le chien boit la souris")) == \
        "le <del>chat mange</del><ins>chien boit</ins> la souris"


def _prose(rng: random.Random, words: int) -> list[str]:
    vocabulary = [f"mot{n}" for n in range(400)] + ["de", "la", "le", "et", "les", "des"] * 40
    return [rng.choice(vocabulary) for _ in range(words)]


def test_scattered_edits_in_a_20000_character_field_are_marked_word_by_word() -> None:
    rng = random.Random(5)
    words = _prose(rng, 4000)
    old = " ".join(words)
    assert len(old) > 20_000
    edited = list(words)
    for position in (100, 1700, 3900):
        edited[position] = "NOUVEAU"
    marked = str(word_diff(old, " ".join(edited)))
    assert sides(marked) == (old, " ".join(edited))
    assert changes(marked).count("NOUVEAU") == 3
    assert sum(len(c) for c in changes(marked)) < 60


def test_pathological_input_never_reaches_the_quadratic_matcher(monkeypatch: Any) -> None:
    """The old diff (SequenceMatcher over all tokens) took minutes on this pair."""
    sizes: list[int] = []

    class CountingMatcher(difflib.SequenceMatcher):  # type: ignore[type-arg]
        def __init__(self, isjunk: Any, a: Any, b: Any, autojunk: bool = True) -> None:
            sizes.append(len(a) * len(b))
            super().__init__(isjunk, a, b, autojunk)

    monkeypatch.setattr(diff_module.difflib, "SequenceMatcher", CountingMatcher)
    for old, new in (("a b " * 5000, "a c " * 5000), ("x " * 10_000, "x y " * 5000),
                     ("a " * 10_000, "a-" * 10_000)):
        sizes.clear()
        marked = str(word_diff(old, new))
        assert sides(marked) == (old, new)
        assert sum(sizes) <= diff_module._MATCHER_BUDGET
        assert all(size <= diff_module._MATCHER_MAX_PAIRS for size in sizes)


def test_the_diff_page_of_a_huge_repetitive_edit_answers(client, make_sheet, moderator) -> None:
    first = make_sheet(results="a b " * 5000)
    second = operations.edit_sheet(first.sheet, {"results": "a c " * 5000}, moderator,
                                   first.id, "tout changé")
    commit()
    response = client.get(f"/fiches/{first.sheet.slug}/diff?from={first.id}&to={second.id}")
    assert response.status_code == 200
    assert "<del>" in response.get_data(as_text=True)


@pytest.fixture
def limited_app(app_config: dict[str, Any]) -> Flask:
    return create_app({**app_config, "RATELIMIT_ENABLED": True,
                       "KB_RATE_LIMIT_DIFF": "2 per minute"})


def test_the_diff_page_is_rate_limited(limited_app, pg_database, make_user) -> None:
    app = limited_app

    def test(client: Any) -> None:
        author = make_user("moderator")
        first = operations.create_sheet({"title": "Fiche comparée", "results": "avant"}, author)
        commit()
        second = operations.edit_sheet(first.sheet, {"results": "après"}, author, first.id)
        commit()
        url = f"/fiches/{first.sheet.slug}/diff?from={first.id}&to={second.id}"
        assert [client.get(url).status_code for _ in range(2)] == [200, 200]
        response = client.get(url)
        assert response.status_code == 429
        assert "Trop de tentatives" in response.get_data(as_text=True)
        # Other pages are not counted in the diff budget.
        assert client.get(f"/fiches/{first.sheet.slug}").status_code == 200

    _run(app, pg_database, test)
