"""Highlighted extracts: escaped text with <mark> around the words that matched."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from markupsafe import Markup, escape

from kb.search.analysis import fold, stem

SNIPPET_CHARS = 260
# Start/stop markers for engines that highlight themselves (ts_headline): control characters
# never survive the field validation, so they cannot come from a sheet.
START, STOP = "\x02", "\x03"
_COMBINING = re.compile(r"[\u0300-\u036f]")


def _aligned_fold(text: str) -> str | None:
    """Folded text with the same offsets as `text`, or None when folding moves characters."""
    folded = _COMBINING.sub("", unicodedata.normalize("NFKD", text)).lower()
    return folded if len(folded) == len(text) else None


def _matches(text: str, stems: set[str], prefixes: tuple[str, ...] = ()
             ) -> list[tuple[int, int, str]]:
    """(start, end, key) of the words of `text` whose stem is one of `stems` or which start
    with one of `prefixes` (folded)."""
    if not stems and not prefixes:
        return []

    def key(word: str) -> str | None:
        s = stem(word)
        if s in stems:
            return s
        return next((p for p in prefixes if word.startswith(p)), None)

    folded = _aligned_fold(text)
    if folded is None:  # rare (ligatures, ß...): fold word by word
        return [(m.start(), m.end(), k) for m in re.finditer(r"\w+", text)
                if (k := key(fold(m.group()))) is not None]
    starts = sorted({*stems, *prefixes}, key=len, reverse=True)
    pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, starts)) + r")\w*")
    return [(m.start(), m.end(), k) for m in pattern.finditer(folded)
            if (k := key(m.group())) is not None]


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
    matches = _matches(text, stems, tuple(p for p in prefixes if p))[:200]
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


def from_markers(text: str) -> Markup:
    """Text highlighted with START/STOP markers -> escaped HTML with <mark>."""
    escaped = str(escape(text))
    return Markup(escaped.replace(START, "<mark>").replace(STOP, "</mark>"))
