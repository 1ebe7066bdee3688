"""The one entry point for searching and for keeping the index in step with the database.

Views, the API, the CLI and other domains (embeds) call `search_sheets()`; the after-commit
listener calls `index_changed()`; `kb index ...` calls rebuild/update/check/optimize.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select

from kb.extensions import db
from kb.search.analysis import WORD, fold, max_typos, stem
from kb.search.backend import (
    FACETS,
    SORTS,
    BackendResult,
    Document,
    Filters,
    IndexBusy,
    SearchBackend,
    SearchUnavailable,
)
from kb.search.documents import (
    all_documents,
    all_documents_in_background,
    load_documents,
    published_stamps,
)
from kb.search.query import Alternative, ParsedQuery, Phrase, parse
from kb.sheets.filters import facet_labels, parse_filters
from kb.sheets.models import Revision, Sheet
from kb.territories.register import register
from kb.timeutil import utcnow
from kb.transaction import bump_listing
from kb.urls import base_url
from kb.wording import plural

log = logging.getLogger(__name__)

MAX_PER_PAGE = 100
MAX_PAGE = 500
SUGGEST_BELOW = 3  # a query finding fewer sheets than this gets a "Vouliez-vous dire" suggestion
BATCH = 500
UNAVAILABLE_MESSAGE = ("La recherche est momentanément indisponible : son index est en cours de "
                       "reconstruction. Réessayez dans quelques minutes.")
STOP_WORDS_ONLY_MESSAGE = ("Votre recherche ne contient que des mots trop courants. "
                           "Précisez-la, par exemple « accueil en mairie ».")
NO_WORD_MESSAGE = ("Votre recherche « {text} » ne contient ni lettre ni chiffre : voici toutes les "
                   "fiches. Tapez un mot, par exemple « accueil ».")
RELAXED_MESSAGE = ("Aucune fiche ne contient tous ces mots : voici celles qui en contiennent "
                   "une partie.")
# A word that no sheet contains is named, so that "11 fiches" for « accueil Lille » is never
# read as 11 sheets in Lille.
UNMATCHED_MESSAGE = "Aucune fiche ne contient {missing} : {found} {verb} {kept}."
UNMATCHED_RELAXED_MESSAGE = ("Aucune fiche ne contient {missing}, ni tous les autres mots : "
                             "voici celles qui en contiennent une partie.")


def get_backend(app: Flask | None = None) -> SearchBackend:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    backend: SearchBackend | None = app.extensions.get("kb_search")
    if backend is None:
        name = app.config.get("KB_SEARCH_BACKEND", "sqlite")
        if name == "sqlite":
            from kb.search.sqlite_backend import SqliteBackend

            backend = SqliteBackend()
        elif name == "postgres":
            from kb.search.postgres_backend import PostgresBackend

            backend = PostgresBackend()
        elif name == "whoosh":
            from kb.search.whoosh_backend import WhooshBackend

            backend = WhooshBackend(app.config["KB_INDEX_DIR"],
                                    float(app.config.get("KB_SEARCH_LOCK_TIMEOUT", 10)))
        else:
            raise ValueError(f"KB_SEARCH_BACKEND inconnu : {name} (sqlite, whoosh ou postgres)")
        app.extensions["kb_search"] = backend
    return backend


# -- searching ------------------------------------------------------------------------------

def _as_filters(filters: Filters | dict[str, Any] | None) -> Filters:
    """Filters as parsed by kb.sheets.filters (a dict of parameters raises FilterError)."""
    if isinstance(filters, Filters):
        return filters
    return parse_filters(filters or {})


def _correct_typos(backend: SearchBackend, parsed: ParsedQuery) -> None:
    """Words of 5+ letters that no sheet contains also look for the closest indexed words."""
    terms = [t for t in parsed.terms() if max_typos(t.word)]
    if not terms:
        return
    known = backend.known_words([t.word for t in terms])
    for term in terms:
        if term.word not in known:
            similar = backend.similar_words(term.word, max_typos(term.word))
            if any(stem(w) == stem(term.word) for w in similar):
                continue  # "mobiliser" where sheets say "mobilisé": a form, not a typo
            term.corrections = similar[:3]


def _inflection(typed: str, other: str) -> bool:
    """"conduite" for "conduire", "enfant" for "enfants": another form of the word typed, not
    a correction of it (a typo rarely sits in the last two letters only)."""
    if stem(typed) == stem(other):
        return True
    common = len(os.path.commonprefix([typed, other]))
    return common >= 4 and max(len(typed), len(other)) - common <= 2


def _suggestion(backend: SearchBackend, parsed: ParsedQuery, filters: Filters,
                total: int, as_typed: int) -> str | None:
    """A better spelling, offered only when the words as typed find no sheet (`as_typed`), the
    suggestion finds some, at least as many as were shown, and changes more than an ending."""
    if as_typed:
        return None  # the query has results worth showing: no second guess
    replacements: dict[str, str] = {}
    candidates = [t for t in parsed.terms() if len(t.word) >= 4]
    known = backend.known_words([t.word for t in candidates]) if candidates else set()
    for term in candidates:
        if term.corrections:
            replacements[term.word] = term.corrections[0]
        elif term.word not in known:
            similar = backend.similar_words(term.word, max(1, max_typos(term.word)))
            if similar:
                replacements[term.word] = similar[0]
    replacements = {typed: other for typed, other in replacements.items()
                    if not _inflection(typed, other)}
    if not replacements:
        return None
    suggestion = re.sub(r"\w+", lambda m: replacements.get(fold(m.group()), m.group()),
                        parsed.text)
    if fold(suggestion) == fold(parsed.text):
        return None
    better = backend.search(parse(suggestion), filters, "relevance", 0, 1)
    if better.total < max(total, 1):
        return None
    # Corrections come from the index, folded; words typed without accents are folded too.
    bare = set(replacements.values()) | {w for w in WORD.findall(suggestion) if w == fold(w)}
    return _with_accents(suggestion, bare, better.hits[0].sheet_id) if better.hits else suggestion


def _with_accents(suggestion: str, corrected: set[str], sheet_id: int) -> str:
    """The index knows folded words only ("mediation"): write these words of the suggestion as
    the sheet it finds spells them ("médiation"), in lower case as the reader typed them."""
    revision = db.session.scalar(select(Revision).join(
        Sheet, Sheet.approved_revision_id == Revision.id).where(Sheet.id == sheet_id))
    if revision is None:
        return suggestion
    spelled: dict[str, str] = {}
    for value in revision.data.values():
        if isinstance(value, list):  # texts, or records (indicators): their values' words
            value = " ".join(" ".join(map(str, v.values())) if isinstance(v, dict) else str(v)
                             for v in value)
        for token in WORD.findall(str(value)):
            key = fold(token)
            if key in corrected:
                spelled.setdefault(key, token.lower())  # the reader typed it in lower case
    return re.sub(r"\w+", lambda m: spelled.get(m.group(), m.group())
                  if m.group() in corrected else m.group(), suggestion)


def _facets(result: BackendResult) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, str]]]:
    """Counts per facet parameter, most frequent first, and labels from the declaration."""
    counts: dict[str, dict[str, int]] = {}
    labels: dict[str, dict[str, str]] = {}
    for name in FACETS:
        found = result.facets.get(name, [])
        labels[name] = facet_labels(name, [f.value for f in found])
        ranked = sorted(found, key=lambda f: (-f.count, fold(labels[name].get(f.value, f.value))))
        counts[name] = {f.value: f.count for f in ranked}
    return counts, labels


def _typed(text: str, alt: Alternative) -> str:
    """An alternative as the reader typed it ("Lille", not the folded "lille")."""
    if isinstance(alt, Phrase):
        for quoted in re.findall(r'"([^"]*)', text):
            spelled = WORD.findall(quoted)
            if [fold(w) for w in spelled] == alt.words:
                return " ".join(spelled)
        return " ".join(alt.words)
    word = next((w for w in WORD.findall(text) if fold(w) == alt.word), alt.word)
    return word + "*" if alt.prefix else word


def _typed_group(parsed: ParsedQuery, group: list[Alternative]) -> str:
    """A group of alternatives as typed (the API's `unmatched_terms`): `Quimper OR Lille`."""
    return " OR ".join(_typed(parsed.text, alt) for alt in group)


def _named(parsed: ParsedQuery, groups: list[list[Alternative]], joiner: str) -> str:
    """Groups for a sentence: « accueil » et « design »; « Quimper » ou « Lille » in a group."""
    names = [" ou ".join(f"« {_typed(parsed.text, alt)} »" for alt in group) for group in groups]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" {joiner} " + names[-1]


def _relaxed(backend: SearchBackend, parsed: ParsedQuery, filters: Filters, sort: str,
             offset: int, limit: int, response: dict[str, Any]) -> BackendResult:
    """No sheet has every word: name the words no sheet has, and show the sheets with all the
    other words, else those with some of them (each query says which)."""
    def alone(group: list[Alternative]) -> int:
        only = ParsedQuery(groups=[group], excluded=parsed.excluded, text=parsed.text)
        return backend.search(only, filters, "updated", 0, 1).total

    unmatched = [group for group in parsed.groups if not alone(group)]
    kept = [group for group in parsed.groups if group not in unmatched]
    response["unmatched_terms"] = [_typed_group(parsed, group) for group in unmatched]
    if not kept:
        return BackendResult(hits=[], total=0)
    if unmatched:
        rest = ParsedQuery(groups=kept, excluded=parsed.excluded, text=parsed.text)
        result = backend.search(rest, filters, sort, offset, limit)
        missing = _named(parsed, unmatched, "ni")
        if result.total:
            response["message"] = UNMATCHED_MESSAGE.format(
                missing=missing, found=plural(result.total, "fiche"),
                verb="contient" if result.total < 2 else "contiennent",
                kept=_named(parsed, kept, "et"))
            return result
        response["message"] = UNMATCHED_RELAXED_MESSAGE.format(missing=missing)
        return backend.search(rest, filters, sort, offset, limit, match_all=False)
    response["message"] = RELAXED_MESSAGE
    return backend.search(parsed, filters, sort, offset, limit, match_all=False)


TERRITORY_PARAMS = ("commune", "epci", "department", "region")  # narrowest first


def _region_of(filters: Filters) -> str | None:
    """The région of the narrowest territory filter."""
    reg = register()
    if filters.get("commune"):
        commune = reg.commune(filters.get("commune"))
        return commune.region if commune else None
    if filters.get("epci"):
        epci = reg.epci(filters.get("epci"))
        department = reg.department(reg.epci_department(epci)) if epci else None
        return department.region if department else None
    if filters.get("department"):
        found = reg.department(filters.get("department"))
        return found.region if found else None
    return filters.get("region") or None


def _elsewhere(backend: SearchBackend, parsed: ParsedQuery, filters: Filters,
               response: dict[str, Any]) -> list[dict[str, Any]]:
    """No sheet has every word here: the same search in the région, then in all of France
    (when a territory filter is on), and the query without the words no sheet contains, each
    with its count, so that "0 fiches" is never a dead end."""
    offers: list[dict[str, Any]] = []
    if any(filters.get(p) for p in TERRITORY_PARAMS):
        nowhere = filters
        for param in TERRITORY_PARAMS:
            nowhere = nowhere.with_value(param, None)
        region = _region_of(filters)
        scopes: list[tuple[str, Filters]] = []
        if region and region in register().regions and any(
                filters.get(p) for p in TERRITORY_PARAMS[:3]):
            scopes.append((f"en {register().regions[region].name}",
                           nowhere.with_value("region", region)))
        scopes.append(("dans toute la France", nowhere))
        for scope, wider in scopes:
            offers.append({"scope": scope, "q": parsed.text, "filters": wider.active(),
                           "total": backend.search(parsed, wider, "relevance", 0, 1).total})
    unmatched = [group for group in parsed.groups
                 if _typed_group(parsed, group) in response["unmatched_terms"]]
    kept = [group for group in parsed.groups if group not in unmatched]
    if unmatched and kept:
        rest = ParsedQuery(groups=kept, excluded=parsed.excluded, text=parsed.text)
        words = " ".join([*(_typed_group(parsed, g) for g in kept),
                          *(f"-{_typed(parsed.text, alt)}" for alt in parsed.excluded)])
        offers.append({"scope": "sans " + _named(parsed, unmatched, "ni"), "q": words,
                       "filters": filters.active(),
                       "total": backend.search(rest, filters, "relevance", 0, 1).total})
    return offers


def search_sheets(q: str | None = "", filters: Filters | dict[str, Any] | None = None,
                  sort: str = "relevance", page: int = 1, per_page: int = 20) -> dict[str, Any]:
    """Search published sheets. Never raises for any query string; filters given as a dict
    of parameters are parsed by kb.sheets.filters and may raise FilterError (a 400).

    Returns {"items": [{"slug", "title", "url", "score", "snippet", "fresh"}], "total", "facets":
    {name: {value: count}}, "facet_labels", "suggestion", "page", "per_page", "pages", "sort",
    "query", "message", "unavailable", "unmatched_terms", "elsewhere", "total_is_estimate"}.
    `snippet` is HTML-safe text with <mark>. `unmatched_terms`: the words (or groups `a OR b`)
    of the query that no sheet contains, as typed, when not every word is found. `elsewhere`:
    when no sheet has every word as typed, the same search in wider territories and the query
    without its unmatched words: [{"scope", "q", "filters", "total"}]. `total_is_estimate`:
    more sheets match than the exact bound (KB_SEARCH_EXACT_COUNT): `total` and the facet
    counts are estimates ("environ").
    """
    parsed = parse(q)
    active = _as_filters(filters)
    per_page = min(max(int(per_page or 20), 1), MAX_PER_PAGE)
    page = min(max(int(page or 1), 1), MAX_PAGE)
    sort = sort if sort in SORTS else "relevance"
    if sort == "relevance" and not parsed.groups:
        sort = "updated"  # nothing to rank on: newest first
    response: dict[str, Any] = {
        "items": [], "total": 0, "facets": {name: {} for name in FACETS},
        "facet_labels": {name: {} for name in FACETS}, "suggestion": None, "page": page,
        "per_page": per_page, "pages": 1, "sort": sort, "query": parsed.text,
        "filters": active.active(), "message": None, "unavailable": False,
        "unmatched_terms": [], "elsewhere": [], "total_is_estimate": False,
    }
    if parsed.is_empty and parsed.text and any(c.isalnum() for c in parsed.text):
        response["message"] = STOP_WORDS_ONLY_MESSAGE
        return response
    if parsed.is_empty and parsed.text:
        # "?!;:" is no query at all: list everything, and say so rather than "15 fiches pour
        # « ?!;: »".
        response["query"] = ""
        response["message"] = NO_WORD_MESSAGE.format(text=parsed.text[:40])
    backend = get_backend()
    try:
        _correct_typos(backend, parsed)
        offset = (page - 1) * per_page
        result = backend.search(parsed, active, sort, offset, per_page)
        # What the words as typed find: corrected typos and partial matches do not count.
        as_typed = 0 if any(t.corrections for t in parsed.terms()) else result.total
        if result.total == 0 and len(parsed.groups) == 1:
            response["unmatched_terms"] = [_typed_group(parsed, parsed.groups[0])]
        elif result.total == 0 and parsed.groups:
            result = _relaxed(backend, parsed, active, sort, offset, per_page, response)
        if result.total < SUGGEST_BELOW and parsed.groups:
            response["suggestion"] = _suggestion(backend, parsed, active, result.total, as_typed)
        if parsed.groups and (not result.total or response["message"]):
            # Nothing, or only sheets with some of the words (a corrected typo is no dead end).
            response["elsewhere"] = _elsewhere(backend, parsed, active, response)
    except (SearchUnavailable, IndexBusy) as exc:
        log.warning("search unavailable: %s", exc)
        response.update(unavailable=True, message=UNAVAILABLE_MESSAGE)
        return response
    base = base_url()
    fresh = _freshness([h.slug for h in result.hits])
    response["items"] = [{"slug": h.slug, "title": h.title, "url": f"{base}/fiches/{h.slug}",
                          "score": h.score, "snippet": h.snippet, "fresh": fresh.get(h.slug, True)}
                         for h in result.hits]
    response["total"] = result.total
    # More matches than KB_SEARCH_EXACT_COUNT: the total and the facet counts are estimates.
    response["total_is_estimate"] = result.estimated
    response["pages"] = max(1, -(-result.total // per_page))
    if result.estimated:
        response["pages"] = min(response["pages"], MAX_PAGE)
    response["facets"], response["facet_labels"] = _facets(result)
    # What the answer shows follows from the sheets with any of its words (kb.cache keeps it
    # across publishes that touch none of them): not when the vocabulary chose something (a
    # corrected typo, a suggestion looked for, another search offered) or counts are estimates.
    response["narrowable"] = bool(parsed.groups) and result.total >= SUGGEST_BELOW \
        and not result.estimated and not response["elsewhere"] and not response["message"] \
        and not any(t.corrections for t in parsed.terms())
    return response


NARROW_BOUND = 5000  # past this many sheets with a word of the query, a search is not narrowed


def words_members(q: str) -> set[int] | None:
    """The sheets whose indexed text has any word of `q` (none past NARROW_BOUND), when the
    engine's index is `narrowable`: written in the data's own transaction (SQLite), or
    followed by one more move of the listing version once written (PostgreSQL: a search
    checked in between reads what a fresh one would, the older index, until then)."""
    backend = get_backend()
    if not getattr(backend, "narrowable", False):
        return None
    try:
        return backend.matching(parse(q), None, NARROW_BOUND)
    except (SearchUnavailable, IndexBusy):
        return None  # the search says so; nothing to keep


def words_admit(q: str, sheet_ids: set[int]) -> bool:
    """Whether any of these sheets has a word of `q` now (True when the engine cannot say)."""
    backend = get_backend()
    found = backend.matching(parse(q), sheet_ids, len(sheet_ids)) \
        if getattr(backend, "narrowable", False) else None
    return found is None or bool(found)


def _freshness(slugs: list[str]) -> dict[str, bool]:
    """Review status read from the database: it changes with time, not with the index.
    Three columns, not whole sheets: this runs on every search."""
    if not slugs:
        return {}
    rows = db.session.execute(select(Sheet.slug, Sheet.last_reviewed_at,
                                     Sheet.review_interval_months).where(Sheet.slug.in_(slugs)))
    now = utcnow()
    due = Sheet.review_due_at.fget  # type: ignore[attr-defined]  # the model's rule, on rows
    return {row.slug: now < due(row) for row in rows}


# -- keeping the index in step --------------------------------------------------------------

def index_changed(app: Flask, sheet_ids: Iterable[int]) -> None:
    """After-commit listener: index these sheets in one writer commit. Never raises."""
    ids = sorted(set(sheet_ids))
    try:
        backend = get_backend(app)
        if not backend.exists():
            update_index()  # first write, or a lost index: built, and the listing moved
            return
        if getattr(backend, "inline", False):
            return  # written in the commit itself
        backend.index(load_documents, ids)
        bump_listing(ids)  # searches cached from the index before this write are over
    except Exception:  # noqa: BLE001 - the commit stands; `kb index update` repairs the drift
        log.exception("search index not updated for sheets %s; run `kb index update`", ids[:20])


@dataclass
class Drift:
    missing: list[int] = field(default_factory=list)  # published, not in the index
    stale: list[int] = field(default_factory=list)  # indexed from another revision or state
    extra: list[int] = field(default_factory=list)  # in the index, no longer published

    @property
    def total(self) -> int:
        return len(self.missing) + len(self.stale) + len(self.extra)


def check_index(thorough: bool = False) -> Drift:
    """Compare the database and the index. Raises SearchUnavailable when there is no index,
    or (`thorough`) when the engine finds its own index inconsistent."""
    backend = get_backend()
    integrity = getattr(backend, "integrity", None)
    if thorough and integrity is not None:
        integrity()
    wanted = published_stamps()
    have = backend.stamps()
    return Drift(
        missing=sorted(i for i in wanted if i not in have),
        stale=sorted(i for i, s in wanted.items() if i in have and have[i] != s),
        extra=sorted(i for i in have if i not in wanted),
    )


Progress = Callable[[int], None]


def update_index(progress: Progress | None = None) -> Drift:
    """Reconcile: index what is missing or stale, delete what is no longer published."""
    backend = get_backend()
    backend.ensure_schema()
    if not backend.exists():
        rebuild_index(progress)
        return Drift()
    drift = check_index()
    ids = drift.missing + drift.stale + drift.extra
    for start in range(0, len(ids), BATCH):
        chunk = ids[start:start + BATCH]
        backend.index(load_documents, chunk)
        if progress:
            progress(len(chunk))
    if ids:
        bump_listing(ids)  # searches cached from the index before the repair are over
    return drift


def _counted(documents: Iterator[Document], progress: Progress | None) -> Iterator[Document]:
    for doc in documents:
        yield doc
        if progress:
            progress(1)


def rebuild_index(progress: Progress | None = None, background: bool = False) -> int:
    """Build a fresh index from the database, swap it in, then catch writes made meanwhile.

    `background` builds the documents in a forked process (CLI only: never in a web worker).
    """
    backend = get_backend()
    backend.ensure_schema()
    documents = all_documents_in_background() if background else all_documents()
    count = backend.rebuild(_counted(documents, progress))
    drift = check_index()
    ids = drift.missing + drift.stale + drift.extra
    for start in range(0, len(ids), BATCH):
        backend.index(load_documents, ids[start:start + BATCH])
    bump_listing([])  # a new index: every cached search is over
    return count


def optimize_index() -> None:
    get_backend().optimize()
