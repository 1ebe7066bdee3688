"""Pure similarity functions: normalised text, shingles, MinHash bands, the exact score.

Everything works on `fold(plain_text(...))`: accents, case, Markdown and punctuation never make
two sheets look different. A sheet is reduced to
- its title key (folded words) and title character trigrams,
- its body shingles: hashes of overlapping word pairs of every searchable field but the title,
  as a sorted uint32 array (the exact measure works on these, they are stored in the database),
- lookup features: rare title words and MinHash LSH band keys of the body shingles.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from datasketch import MinHash

from kb.sheets.fields import FIELDS, FIELDS_BY_NAME, Kind, clean_value
from kb.text import fold, plain_text

# Bump when the fingerprint recipe changes: stored fingerprints of another version are rebuilt.
VERSION = 2

SHINGLE_WORDS = 2  # word pairs survive rewording better than triples
NUM_PERM = 120
BANDS = 40  # 40 bands of 3 rows: a pair at Jaccard 0.3 collides in a band with p ≈ 0.66
ROWS = NUM_PERM // BANDS

# Above HIGH a writer must confirm "c'est une autre initiative"; above HINT sheets are listed.
HIGH = 0.4
HINT = 0.2
# The scan (`kb duplicates scan`, and each publication) queues pairs from SCAN: below HIGH, so
# that a close pair whose writer was not asked to confirm still reaches moderators. Measured on
# the labelled set (docs/duplicates.md, `python -m bench.duplicates --quality-only`).
SCAN = 0.35

# Lookup features: a title word (typed titles), a pair of title words (sheets whose titles share
# two words, whatever their order), a MinHash band of the body.
TITLE_FEATURE, BAND_FEATURE, PAIR_FEATURE = 0, 1, 2
MAX_TITLE_TERMS = 8

# Words that say nothing about which initiative a title is about.
STOPWORDS = frozenset(re.findall(r"\w+", """
a au aux avec ce ces cette d dans de des du en et l la le les leur leurs ou par pour sur un une
qu que qui se sa son ses aupres chez entre vers sous dun dune
"""))

_WORD = re.compile(r"\w+")
_TEXT_FIELDS = tuple(f for f in FIELDS if f.searchable and f.name != "title"
                     and f.kind in (Kind.SHORT, Kind.LONG, Kind.LIST))
# The fields a fingerprint reads: what the similar-sheets API accepts, by name.
FINGERPRINT_FIELDS = ("title", *(f.name for f in _TEXT_FIELDS))


def normalise(text: str) -> list[str]:
    """Folded words of a Markdown text."""
    return _WORD.findall(fold(plain_text(text)))


def title_words(title: str) -> list[str]:
    return _WORD.findall(fold(title))


def title_key(title: str) -> str:
    return " ".join(title_words(title))


def _h32(value: str) -> int:
    # CRC-32 is fast and stable across processes; MinHash mixes the bits again (fmix).
    return zlib.crc32(value.encode())


def feature_id(kind: int, value: str) -> int:
    """A stable signed 64-bit id for a lookup feature (fits BIGINT on PostgreSQL and SQLite)."""
    digest = hashlib.blake2b(f"{kind}:{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


# Text without any of these is its own plain text: no need to run the Markdown parser on it.
_MARKDOWN = re.compile(r"[\\`*_#>\[\]<&!|~=+-]|^\s*\d+[.)]", re.M)


def body_text(data: Mapping[str, Any]) -> list[str]:
    """Folded words of every searchable field but the title, in declaration order."""
    plain: list[str] = []
    markdown: list[str] = []
    for f in _TEXT_FIELDS:
        value = data.get(f.name)
        if isinstance(value, list):
            value = "\n".join(str(v) for v in value)
        if value:
            (markdown if f.kind is Kind.LONG and _MARKDOWN.search(str(value)) else plain) \
                .append(str(value).strip())
    words = _WORD.findall(fold(" ".join(plain)))
    if markdown:
        # One document (fields as paragraphs): one parse per sheet instead of one per field.
        words += normalise("\n\n".join(markdown))
    return words


def shingles(words: list[str]) -> np.ndarray:
    """Sorted unique uint32 hashes of the word n-grams (single words for very short texts)."""
    n = SHINGLE_WORDS if len(words) >= SHINGLE_WORDS else 1
    if n == 2:
        # CRC-32 continues over concatenated data: crc32(b, crc32(a + " ")) is the CRC of
        # "a b", computed without building (and encoding) every pair.
        encoded = {w: w.encode() for w in set(words)}
        prefix = {w: zlib.crc32(b + b" ") for w, b in encoded.items()}
        hashes = [zlib.crc32(encoded[b], prefix[a]) for a, b in zip(words, words[1:], strict=False)]
        return np.unique(np.array(hashes, dtype=np.uint32))
    grams = {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)} if words else set()
    return np.unique(np.fromiter((_h32(g) for g in grams), dtype=np.uint32, count=len(grams)))


def trigrams(key: str) -> frozenset[str]:
    padded = f"  {key} "
    return frozenset(padded[i:i + 3] for i in range(len(padded) - 2)) if key else frozenset()


@lru_cache(maxsize=1)
def _permutations() -> Any:
    return MinHash(num_perm=NUM_PERM, seed=7, scheme="affine32").permutations


def band_keys(body: np.ndarray) -> list[str]:
    """MinHash LSH bands of the body shingles (empty body: no band)."""
    return band_keys_batch([body])[0]


_FMIX32 = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35),
           np.uint32(16))
BATCH_SHINGLES = 2_000  # shingles hashed at once: 120 x 2,000 x 4 bytes (1 MB) stays in cache


def _fmix32(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's finalizer, as datasketch's affine32 scheme applies it (wrapping uint32)."""
    s1, m1, s2, m2, s3 = _FMIX32
    values = values ^ (values >> s1)
    values = values * m1
    values = values ^ (values >> s2)
    values = values * m2
    return values ^ (values >> s3)


def band_keys_batch(bodies: list[np.ndarray]) -> list[list[str]]:
    """band_keys() of many bodies at once: one matrix product per batch of shingles, then
    one minimum per sheet (numpy's reduceat), instead of a MinHash object per sheet. The
    values are datasketch's MinHash(scheme="affine32", hashfunc=int) ones."""
    a, b = (p.reshape(-1, 1) for p in _permutations())
    keys: list[list[str]] = [[] for _ in bodies]
    eligible = [n for n, body in enumerate(bodies) if len(body) >= 4]
    start = 0
    while start < len(eligible):
        chunk: list[int] = []
        size = 0
        while start < len(eligible) and (not chunk or size < BATCH_SHINGLES):
            chunk.append(eligible[start])
            size += len(bodies[eligible[start]])
            start += 1
        arrays = [bodies[n].astype(np.uint32, copy=False) for n in chunk]
        offsets = np.cumsum([0] + [len(x) for x in arrays[:-1]])
        # One row per permutation, one column per shingle; then each sheet's minimum per row.
        permuted = a * _fmix32(np.concatenate(arrays)) + b
        minimums = np.minimum.reduceat(permuted, offsets, axis=1).T
        for n, values in zip(chunk, minimums, strict=True):
            raw = values.tobytes().hex()  # 8 hex digits per value, ROWS values per band
            width = 8 * ROWS
            keys[n] = [f"{band}:{raw[band * width:(band + 1) * width]}" for band in range(BANDS)]
    return keys


_RECENT: OrderedDict[tuple[str, ...], Fingerprint] = OrderedDict()
_RECENT_MAX = 2_048


@dataclass
class Fingerprint:
    title: str  # the title key
    body: np.ndarray  # sorted uint32 shingle hashes
    grams: frozenset[str] = field(default=frozenset())

    def __post_init__(self) -> None:
        if not self.grams:
            self.grams = trigrams(self.title)

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Fingerprint:
        # An import fingerprints each sheet twice (the duplicate check, then the index refresh
        # after commit): keep the recent ones. Fingerprints are never mutated.
        key = (str(data.get("title") or ""), *(repr(data.get(f.name)) for f in _TEXT_FIELDS))
        found = _RECENT.get(key)
        if found is None:
            found = cls(title_key(key[0]), shingles(body_text(data)))
            _RECENT[key] = found
            if len(_RECENT) > _RECENT_MAX:
                _RECENT.popitem(last=False)
        return found

    @classmethod
    def load(cls, title: str, body: bytes) -> Fingerprint:
        return cls(title, np.frombuffer(body, dtype=np.uint32))

    def dump(self) -> bytes:
        return self.body.astype(np.uint32).tobytes()

    def title_terms(self) -> list[str]:
        terms = sorted({w for w in self.title.split() if w not in STOPWORDS and len(w) > 1})
        # Long titles: the longest words are the most telling ones.
        return sorted(sorted(terms, key=lambda w: (-len(w), w))[:MAX_TITLE_TERMS])

    def features(self, bands: list[str] | None = None) -> list[tuple[int, int]]:
        """(feature id, kind) pairs stored for lookups (`bands`: band_keys(), if known)."""
        terms = self.title_terms()
        out = [(feature_id(TITLE_FEATURE, w), TITLE_FEATURE) for w in terms]
        out += [(feature_id(PAIR_FEATURE, f"{a} {b}"), PAIR_FEATURE)
                for i, a in enumerate(terms) for b in terms[i + 1:]]
        out += [(feature_id(BAND_FEATURE, b), BAND_FEATURE)
                for b in (band_keys(self.body) if bands is None else bands)]
        return out


def draft_data(values: Mapping[str, Any]) -> dict[str, Any]:
    """Sheet data as a revision would store it, from values being typed (form or API): each
    field cleaned like `validate()` does (lists split, spaces collapsed), kept as typed when
    it would not validate. Unknown names are left out."""
    data: dict[str, Any] = {}
    for name, value in values.items():
        f = FIELDS_BY_NAME.get(name)
        if f is None:
            continue
        try:
            data[name] = clean_value(f, value)
        except ValueError:
            data[name] = value
    return data


def fingerprint(values: Mapping[str, Any]) -> Fingerprint:
    """THE fingerprint of a sheet, a form being typed or an API query: the score a writer sees
    while typing, on the confirmation step, in the moderators' queue and on the review page is
    `score()` of two of these, so it is one number on one scale (0 to 1, shown as a %).
    Stored revisions are already clean: the lookup index calls `Fingerprint.of` directly."""
    return Fingerprint.of(draft_data(values))


def percent(value: float) -> str:
    """A score as people read it everywhere: '90 %' (French spacing)."""
    return f"{round(value * 100)}\u00a0%"


def title_similarity(a: Fingerprint, b: Fingerprint) -> float:
    if not a.grams or not b.grams:
        return 0.0
    if a.title == b.title:
        return 1.0
    return len(a.grams & b.grams) / len(a.grams | b.grams)


def body_similarity(a: Fingerprint, b: Fingerprint) -> tuple[float, float]:
    """(Jaccard, containment of the smaller in the larger) of the body shingles."""
    if not len(a.body) or not len(b.body):
        return 0.0, 0.0
    common = len(np.intersect1d(a.body, b.body, assume_unique=True))
    union = len(a.body) + len(b.body) - common
    return common / union, common / min(len(a.body), len(b.body))


def score(a: Fingerprint, b: Fingerprint) -> float:
    """Similarity in [0, 1] from exact measures on the normalised text.

    The body counts most; containment catches partial copies, Jaccard keeps two sheets that
    merely share template sentences apart. A short body (a form being typed) weighs less and
    the title takes over.
    """
    t = title_similarity(a, b)
    jaccard, containment = body_similarity(a, b)
    smaller = min(len(a.body), len(b.body))
    if smaller == 0:
        return round(t, 4)
    body = 0.5 * jaccard + 0.5 * containment
    weight = 0.8 * min(1.0, smaller / 40)  # a few typed lines: mostly the title decides
    return round(min(1.0, (1 - weight) * t + weight * body), 4)
