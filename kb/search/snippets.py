"""Highlighted extracts: escaped text with <mark> around the words that matched."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from markupsafe import Markup, escape

from kb.search.analysis import fold, stem

SNIPPET_CHARS = 260


# Each folded letter as the letters it stands for in the original text: the pattern runs on the
# text itself (case-insensitive), which saves folding every extract.
_LETTERS = {"a": "aàâäáãå", "c": "cç", "e": "eéèêë", "i": "iîïíì", "o": "oôöóòõ", "u": "uùûüú",
            "y": "yÿý", "n": "nñ"}
_LIGATURES_FOLDED = {"oe": "œ", "ae": "æ", "ss": "ß"}


def _letters(key: str) -> str:
    out, i = [], 0
    while i < len(key):
        pair = key[i:i + 2]
        if pair in _LIGATURES_FOLDED:
            ligature = _LIGATURES_FOLDED[pair]
            out.append(f"(?:{_letters(pair[0])}{_letters(pair[1])}|[{ligature}{ligature.upper()}])")
            i += 2
            continue
        letters = _LETTERS.get(key[i], key[i])
        letters += letters.upper()
        out.append(f"[{re.escape(letters)}]" if len(letters) > 1 else re.escape(letters))
        i += 1
    return "".join(out)


@lru_cache(maxsize=512)
def _pattern(starts: tuple[str, ...]) -> re.Pattern[str]:
    # No leading \b and no IGNORECASE: both keep the regex engine from skipping ahead to the
    # first letter, ten times slower. Word starts are checked on the matches instead.
    return re.compile("(?:" + "|".join(_letters(s) for s in starts) + r")\w*")


@lru_cache(maxsize=100_000)
def _folded_stem(word: str) -> tuple[str, str]:
    folded = fold(word)
    return folded, stem(folded)


def _matches(text: str, stems: set[str], prefixes: tuple[str, ...] = ()
             ) -> list[tuple[int, int, str]]:
    """(start, end, key) of the words of `text` whose stem is one of `stems` or which start
    with one of `prefixes` (folded)."""
    if not stems and not prefixes:
        return []

    def key(word: str) -> str | None:
        folded, s = _folded_stem(word)
        if s in stems:
            return s
        return next((p for p in prefixes if folded.startswith(p)), None)

    starts = tuple(sorted({*stems, *prefixes}, key=lambda k: (-len(k), k)))
    found = []
    for match in _pattern(starts).finditer(text):
        begin = match.start()
        if begin and (text[begin - 1].isalnum() or text[begin - 1] == "_"):
            continue  # inside a word
        k = key(match.group())
        if k is not None:
            found.append((match.start(), match.end(), k))
            if len(found) >= 200:
                break
    return found


def _distinct_in_window(matches: list[tuple[int, int, str]], i: int, size: int) -> int:
    """How many different query words an extract starting at match i would show."""
    limit = matches[i][0] + size - 40
    keys = set()
    for begin, _, key in matches[i:]:
        if begin >= limit:
            break
        keys.add(key)
    return len(keys)


def highlight(text: str, query_words: Iterable[str], size: int = SNIPPET_CHARS,
              prefixes: Iterable[str] = ()) -> Markup:
    """The extract of `text` that shows most of the query's words (and words starting with
    one of `prefixes`), matches marked."""
    stems = {stem(w) for w in query_words if w}
    matches = _matches(text, stems, tuple(p for p in prefixes if p))
    start = 0
    if matches:
        best = max(range(len(matches)), key=lambda i: (_distinct_in_window(matches, i, size), -i))
        start = max(0, matches[best][0] - 40)
        if start:
            space = text.find(" ", start)
            start = space + 1 if 0 <= space < matches[best][0] else start
    end = min(len(text), start + size)
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start else end
    out: list[str] = ["… " if start else ""]
    cursor = start
    for begin, finish, _ in matches:
        if begin < start or finish > end:
            continue
        out += [str(escape(text[cursor:begin])), "<mark>", str(escape(text[begin:finish])),
                "</mark>"]
        cursor = finish
    out.append(str(escape(text[cursor:end])))
    if end < len(text):
        out.append(" …")
    return Markup("".join(out))


# Start/stop markers for engines that highlight themselves (ts_headline): control characters
# never survive the field validation, so they cannot come from a sheet.
START, STOP = "\x02", "\x03"


def from_markers(text: str) -> Markup:
    """Text highlighted with START/STOP markers -> escaped HTML with <mark>."""
    escaped = str(escape(text))
    return Markup(escaped.replace(START, "<mark>").replace(STOP, "</mark>"))
