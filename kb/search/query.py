"""Reader queries, parsed once for every backend. Never raises: any string gives a query.

Syntax (close to web search engines): words are all required; "quoted phrases"; `OR` (or `|`)
between two words, phrases or brackets accepts either; `-word`, `-"phrase"`, `-(...)` or
`NOT word` excludes; `(brackets)` group; `word*` is a prefix (3 letters at least). Everything
else (`:`, `AND`, control characters, a lone `*`) is read as plain text.

Backends receive an AND of ORs (`groups`) plus a list of excluded alternatives: brackets are
distributed into that form (`(a b) OR c` is `(a OR c) (b OR c)`), and an exclusion anywhere
excludes each of its words or phrases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kb.search.analysis import is_stop, words

MAX_QUERY_LENGTH = 500
MAX_GROUPS = 16
MAX_ALTERNATIVES = 16  # per group, after distributing brackets
MAX_WORD_LENGTH = 40
MIN_PREFIX = 3
MAX_DEPTH = 8
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TOKEN = re.compile(r'(-?)"([^"]*)(?:"|$)|(-?\()|(\))|([^\s()"]+)')
_OR = ("OR", "|", "||", "OU")
_AND = ("AND", "ET", "&", "&&", "+")
_NOT = ("NOT", "SAUF")


@dataclass
class Term:
    word: str  # folded
    corrections: list[str] = field(default_factory=list)  # close words of the index (typos)
    prefix: bool = False  # `word*`: any indexed word starting like this


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
        """Whole words looked for (prefixes left out: they are not words to correct)."""
        return [alt for group in self.groups for alt in group
                if isinstance(alt, Term) and not alt.prefix]

    def prefixes(self) -> list[str]:
        return [alt.word for group in self.groups for alt in group
                if isinstance(alt, Term) and alt.prefix]

    def positive_words(self) -> list[str]:
        """Every folded word the reader looks for (for highlighting and suggestions)."""
        found: list[str] = []
        for group in self.groups:
            for alt in group:
                if isinstance(alt, Phrase):
                    found.extend(alt.words)
                elif not alt.prefix:
                    found.extend([alt.word, *alt.corrections])
        return found


def clean(raw: str | None) -> str:
    text = _CONTROL.sub(" ", raw or "")
    return " ".join(text.split())[:MAX_QUERY_LENGTH]


# -- expressions: a small tree, then the AND of ORs the backends take ---------------------------

@dataclass
class _All:
    parts: list[_Expr]


@dataclass
class _Any:
    parts: list[_Expr]


@dataclass
class _Not:
    part: _Expr


_Expr = _All | _Any | _Not | Term | Phrase


def _chunk(text: str) -> list[Alternative]:
    """The words of one unquoted chunk, stop words dropped; `word*` makes a prefix."""
    pieces = text.split("*")
    found: list[Alternative] = []
    for n, piece in enumerate(pieces):
        piece_words = [w[:MAX_WORD_LENGTH] for w in words(piece)]
        starred = n < len(pieces) - 1 and piece_words and re.search(r"\w$", piece)
        for k, word in enumerate(piece_words):
            if starred and k == len(piece_words) - 1 and len(word) >= MIN_PREFIX \
                    and word.isalnum():
                found.append(Term(word, prefix=True))
            elif not is_stop(word):
                found.append(Term(word))
    return found


def _phrase(text: str) -> list[Alternative]:
    phrase_words = [w[:MAX_WORD_LENGTH] for w in words(text)]
    if len([w for w in phrase_words if not is_stop(w)]) > 1:
        return [Phrase(phrase_words)]
    return [Term(w) for w in phrase_words if not is_stop(w)]


class _Parser:
    def __init__(self, text: str):
        self.tokens = [m for m in _TOKEN.finditer(text)]
        self.position = 0

    def sequence(self, depth: int = 0) -> _All:
        """Items up to a closing bracket (or the end): an implicit AND, OR binding tighter."""
        items: list[_Expr] = []
        pending_or = pending_not = False
        while self.position < len(self.tokens):
            token = self.tokens[self.position]
            self.position += 1
            if token.group(4) is not None:  # ")"
                if depth:
                    break
                continue  # a stray closing bracket is just punctuation
            item: _Expr | None
            negate = pending_not
            if token.group(3) is not None:  # "(" or "-("
                negate = negate or token.group(3).startswith("-")
                inner = self.sequence(depth + 1) if depth < MAX_DEPTH else _All([])
                item = inner if inner.parts else None
            elif token.group(2) is not None:  # "phrase" or -"phrase"
                negate = negate or token.group(1) == "-"
                alternatives = _phrase(token.group(2) or "")
                item = _All(list(alternatives)) if alternatives else None
            else:
                chunk = token.group(5)
                if chunk in _OR:
                    pending_or = bool(items)
                    continue
                if chunk in _AND:
                    continue
                if chunk in _NOT:
                    pending_not = True
                    continue
                if chunk.startswith("-") and len(chunk) > 1:
                    negate, chunk = True, chunk[1:]
                alternatives = _chunk(chunk)
                item = _All(list(alternatives)) if alternatives else None
            pending_not = False
            if item is None:
                continue
            if negate:
                items.append(_Not(item))
                pending_or = False
            elif pending_or and items and not isinstance(items[-1], _Not):
                # OR joins the last word before it and the first word after it ("a b OR c" is
                # a AND (b OR c)); a bracket or a phrase is one whole side.
                before, left = _split(items.pop(), last=True)
                after, right = _split(item, last=False)
                items.extend([*before, _Any([left, right]), *after])
                pending_or = False
            else:
                items.append(item)
        return _All(items)


def _is_chunk(expr: _Expr) -> bool:
    """An unbracketed chunk of several words (each of its words is a side of an OR)."""
    return isinstance(expr, _All) and len(expr.parts) > 1 and \
        all(isinstance(p, Term | Phrase) for p in expr.parts)


def _split(expr: _Expr, last: bool) -> tuple[list[_Expr], _Expr]:
    """(the rest, the side of an OR): a chunk's last (or first) word, else the whole."""
    if not _is_chunk(expr):
        return [], expr
    assert isinstance(expr, _All)
    if last:
        return [_All(expr.parts[:-1])], expr.parts[-1]
    return [_All(expr.parts[1:])], expr.parts[0]


def _cnf(expr: _Expr) -> list[list[Alternative]]:
    """The expression as an AND of ORs, exclusions left out."""
    if isinstance(expr, Term | Phrase):
        return [[expr]]
    if isinstance(expr, _Not):
        return []
    if isinstance(expr, _All):
        return [group for part in expr.parts for group in _cnf(part)][:MAX_GROUPS]
    # OR of ANDs: one group per combination (bounded), each the union of one group per side.
    result: list[list[Alternative]] = [[]]
    for part in expr.parts:
        groups = _cnf(part)
        if not groups:
            continue
        result = [(left + right)[:MAX_ALTERNATIVES] for left in result for right in groups
                  ][:MAX_GROUPS]
    return [group for group in result if group]


def _excluded(expr: _Expr, negated: bool = False) -> list[Alternative]:
    if isinstance(expr, Term | Phrase):
        return [expr] if negated else []
    if isinstance(expr, _Not):
        return _excluded(expr.part, True)
    return [alt for part in expr.parts for alt in _excluded(part, negated)]


def parse(raw: str | None) -> ParsedQuery:
    text = clean(raw)
    tree = _Parser(text).sequence()
    query = ParsedQuery(text=text)
    seen: set[str] = set()
    for group in _cnf(tree):
        key = repr(group)
        if key not in seen:  # "a a" or distributed brackets may repeat a group
            seen.add(key)
            query.groups.append(group)
    query.groups = query.groups[:MAX_GROUPS]
    query.excluded = _excluded(tree)[:MAX_GROUPS]
    return query
