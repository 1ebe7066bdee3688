"""Reader queries, parsed once for every backend. Never raises: any string gives a query.

Syntax (close to web search engines): words are all required; "quoted phrases"; `OR` (or `|`)
between two words or phrases accepts either; `-word`, `-"phrase"` or `NOT word` excludes.
Everything else (parentheses, `*`, `:`, `AND`, control characters) is read as plain text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kb.search.analysis import is_stop, words

MAX_QUERY_LENGTH = 500
MAX_GROUPS = 16
MAX_WORD_LENGTH = 40
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CHUNK = re.compile(r'(-?)"([^"]*)(?:"|$)|(\S+)')


@dataclass
class Term:
    word: str  # folded
    corrections: list[str] = field(default_factory=list)  # close words of the index (typos)


@dataclass
class Phrase:
    words: list[str]  # folded, stop words kept


Alternative = Term | Phrase


@dataclass
class ParsedQuery:
    groups: list[list[Alternative]] = field(default_factory=list)  # AND of ORs
    excluded: list[Alternative] = field(default_factory=list)
    text: str = ""  # the cleaned query, as shown back to the reader

    @property
    def is_empty(self) -> bool:
        return not self.groups and not self.excluded

    def terms(self) -> list[Term]:
        return [alt for group in self.groups for alt in group if isinstance(alt, Term)]

    def positive_words(self) -> list[str]:
        """Every folded word the reader looks for (for highlighting and suggestions)."""
        found: list[str] = []
        for group in self.groups:
            for alt in group:
                found.extend([alt.word, *alt.corrections] if isinstance(alt, Term) else alt.words)
        return found


def clean(raw: str | None) -> str:
    text = _CONTROL.sub(" ", raw or "")
    return " ".join(text.split())[:MAX_QUERY_LENGTH]


def _alternative(chunk_words: list[str], phrase: bool) -> list[Alternative]:
    chunk_words = [w[:MAX_WORD_LENGTH] for w in chunk_words]
    if phrase:
        if len([w for w in chunk_words if not is_stop(w)]) > 1:
            return [Phrase(chunk_words)]
        chunk_words = [w for w in chunk_words if not is_stop(w)]
    return [Term(w) for w in chunk_words if not is_stop(w)]


def parse(raw: str | None) -> ParsedQuery:
    text = clean(raw)
    query = ParsedQuery(text=text)
    pending_or = pending_not = False
    for match in _CHUNK.finditer(text):
        negate = pending_not
        if match.group(3) is not None:
            chunk = match.group(3)
            if chunk in ("OR", "|", "||", "OU"):
                pending_or = bool(query.groups)
                continue
            if chunk in ("AND", "ET", "&", "&&", "+"):
                continue
            if chunk in ("NOT", "SAUF"):
                pending_not = True
                continue
            if chunk.startswith("-") and len(chunk) > 1:
                negate, chunk = True, chunk[1:]
            alternatives = _alternative(words(chunk), phrase=False)
        else:
            negate = negate or match.group(1) == "-"
            alternatives = _alternative(words(match.group(2)), phrase=True)
        pending_not = False
        if not alternatives:
            continue
        if negate:
            query.excluded.extend(alternatives)
            pending_or = False
        elif pending_or and query.groups:
            query.groups[-1].extend(alternatives[:1])
            query.groups.extend([alt] for alt in alternatives[1:])
            pending_or = False
        else:
            query.groups.extend([alt] for alt in alternatives)
    query.groups = query.groups[:MAX_GROUPS]
    query.excluded = query.excluded[:MAX_GROUPS]
    return query
