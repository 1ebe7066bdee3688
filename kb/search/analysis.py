"""The French analysis chain shared by every backend (no backend import here).

tokenize -> fold accents and case -> drop stop words -> stem. Folding comes first so that a
query typed without accents meets the same terms as the accented text.

The stem is Snowball's French stemmer, once, on the folded word: PostgreSQL's `french_stem`
does the same on unaccented words, so the three engines agree. Folded, Snowball no longer
removes derivational suffixes that carry an accent ("mobilité" keeps "mobilit", apart from
"mobile", "mobilier" and "mobiliser"; "qualité" apart from "quali"); stemming twice, as before,
joined those families. Three spelling rules give back what folding takes from plurals and
participles (measured on tests/data/relevance.json, `python -m bench.relevance`):
"usagers" -> "usager", "partagee" (partagée) -> "partage", "modifie" (modifié) -> "modifier".
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterator
from functools import lru_cache

import snowballstemmer

WORD = re.compile(r"\w+", re.UNICODE)

# Snowball's French list (PostgreSQL's french.stop), folded, plus words it misses ("les").
_STOP_TEXT = """
au aux avec ce ces dans de des du elle en et eux il je la le les leur leurs lui ma mais me meme
mes moi mon ne nos notre nous on ou par pas pour qu que qui sa se ses son sur ta te tes toi ton
tu un une vos votre vous c d j l a m n s t y ete etee etees etes etant etante etants etantes
suis es est sommes etes sont serai seras sera serons serez seront serais serait serions seriez
seraient etais etait etions etiez etaient fus fut fumes futes furent sois soit soyons soyez
soient fusse fusses fussions fussiez fussent ayant ayante ayantes ayants eu eue eues eus ai as
avons avez ont aurai auras aura aurons aurez auront aurais aurait aurions auriez auraient avais
avait avions aviez avaient eut eumes eutes eurent aie aies ait ayons ayez aient eusse eusses
eussions eussiez eussent cette cet ils elles sans sous chez dont
"""
STOP_WORDS: frozenset[str] = frozenset(_STOP_TEXT.split())

MIN_TYPO_LENGTH = 5  # words this long or longer tolerate typos


_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def fold(text: str) -> str:
    """Case- and accent-fold, ligatures spelled out: 'Cœur Éclairé' -> 'coeur eclaire'."""
    text = text.casefold()  # Œ -> œ, Æ -> æ
    if "œ" in text or "æ" in text:  # str.translate with a mapping is slow on long texts
        text = text.replace("œ", "oe").replace("æ", "ae")
    if text.isascii():
        return text
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text))


_stemmer = snowballstemmer.stemmer("french")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Stem of a folded word (see the module docstring)."""
    if len(word) > 3 and word[-1] == "s" and word[-2] not in "su":
        word = word[:-1]  # Snowball reads "-ers" as no plural: "usagers" would miss "usager"
    if word.endswith("ee"):
        word = word[:-1]  # "partagee" (partagée) meets "partage" and "partager"
    if len(word) > 4 and word.endswith("ie") and word[-3] in "cdfp":
        word += "r"  # "modifie" (modifié) meets "modifier"; "sortie", "accueillie" keep theirs
    return str(_stemmer.stemWord(word))


def prefix_stem(prefix: str) -> str:
    """What a folded prefix (`accompagn*`) looks for among stems: the part it shares with its
    own stem, so that "mediations*" finds the stem "mediat" and what follows it."""
    shared = os.path.commonprefix([prefix, stem(prefix)])
    return shared if len(shared) >= 3 else prefix


@lru_cache(maxsize=256)
def folded_words(text: str) -> tuple[str, ...]:
    """words(), cached: indexing a sheet reads each field's words twice (vocabulary, terms)."""
    return tuple(WORD.findall(fold(text)))


def words(text: str) -> list[str]:
    """Folded words, stop words included (vocabulary, phrases, suggestions)."""
    return list(folded_words(text))


def is_stop(word: str) -> bool:
    return word in STOP_WORDS or len(word) < 2


_TERMS: dict[str, str] = {}  # folded word -> its term (_STOP for a stop word)


_STOP = " "  # the term of a stop word: truthy, so that it is looked up once


def _term(word: str) -> str:
    term = _STOP if is_stop(word) else stem(word)
    if len(_TERMS) < 500_000:
        _TERMS[word] = term
    return term


def terms(text: str) -> list[str]:
    """The index terms of a text: folded, stop words removed, stemmed."""
    get = _TERMS.get
    return [term for word in folded_words(text) if (term := get(word) or _term(word)) != _STOP]


def iter_positions(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, folded word) for each word of `text`, offsets in the original text."""
    for match in WORD.finditer(text):
        yield match.start(), match.end(), fold(match.group())


def damerau_levenshtein(a: str, b: str, limit: int = 3) -> int:
    """Optimal string alignment distance, capped at `limit` + 1 (small words only)."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


def max_typos(word: str) -> int:
    """Edits tolerated in a query word: none under 5 letters, 1 up to 8, then 2."""
    if len(word) < MIN_TYPO_LENGTH:
        return 0
    return 1 if len(word) <= 8 else 2
