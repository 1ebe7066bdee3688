"""Follows (saved searches), and what changed for them: the "Vos suivis" section of the letter
(kb/letters), one per person per period, whatever the number of follows."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select

from kb.auth.models import User
from kb.errors import Invalid, KbError, NotFound
from kb.extensions import db
from kb.follows.models import Follow, FollowKind
from kb.sheets.filters import PARAMS as FILTER_PARAMS
from kb.sheets.filters import FilterError, parse_filters
from kb.sheets.models import Sheet, published_sheets
from kb.territories.register import territories_with_code
from kb.timeutil import utcnow
from kb.urls import base_url

log = logging.getLogger(__name__)
# The parameters of /recherche that a follow keeps (the others: page, sort… are presentation):
# the words, and the declared filters (kb/sheets/filters.py).
PARAMS = ("q", *FILTER_PARAMS)
# The filter parameter of each kind of territory (kb/territories).
TERRITORY_PARAMS = {"commune": "commune", "epci": "epci", "departement": "department",
                    "region": "region"}
MAX_FOLLOWS = 50
_UNSUBSCRIBE_SALT = "kb-follows-unsubscribe"
_UNFOLLOW_SALT = "kb-follows-unfollow"


# --- what a follow is ---------------------------------------------------------------------------

def canonical(params: dict[str, Any]) -> dict[str, str]:
    """The words and the filters, normalised as every listing reads them (Invalid if a
    filter cannot match anything)."""
    try:
        filters = parse_filters(params)
    except FilterError as exc:
        raise Invalid(exc.message) from None
    words = " ".join(str(params.get("q") or "").split())[:200]
    return {**({"q": words} if words else {}), **filters.active()}


def _kind(params: dict[str, str]) -> FollowKind:
    if set(params) == {"tag"}:
        return FollowKind.TAG
    if len(params) == 1 and set(params) <= set(TERRITORY_PARAMS.values()):
        return FollowKind.TERRITORY
    return FollowKind.SEARCH


def label(params: dict[str, str]) -> str:
    """What the person follows, in words: « accueil », mot-clé : numérique, Finistère (29)."""
    filters = parse_filters(params)
    parts = [f"« {params['q']} »"] if params.get("q") else []
    parts += [f"{title.lower()} : {value}" if param == "tag" else value
              for param, title, value in filters.labels()]
    return ", ".join(parts)


def territory_params(ref: str) -> dict[str, str]:
    """Search parameters for a territory given to the API: its code, or `<code>-<nom>` as in
    its page's address (53-bretagne, 53-mayenne: a région and a département share 53)."""
    code, _, _ = ref.strip().partition("-")
    found = territories_with_code(code)
    if len(found) > 1:
        found = [t for t in found if t.slug == ref.strip().lower()]
    if not found:
        raise Invalid(f"Territoire inconnu : « {ref} » (attendu : un code officiel, par "
                      "exemple 29, ou l'adresse de sa page, 53-bretagne).")
    if len(found) > 1:
        raise Invalid(f"Le code {code} désigne plusieurs territoires : précisez, par exemple "
                      f"« {found[0].slug} ».")
    return {TERRITORY_PARAMS[found[0].kind]: found[0].code}


def follow(user: User, params: dict[str, Any], now: datetime | None = None) -> Follow:
    """Follow a search; following the same one twice returns the existing follow."""
    clean = canonical(params)
    if not clean:
        raise Invalid("Rien à suivre : choisissez un mot-clé, un territoire ou une recherche.")
    return _add(user, _kind(clean), clean, urlencode(sorted(clean.items())), label(clean), now)


def _add(user: User, kind: FollowKind, params: dict[str, Any], key: str, text: str,
         now: datetime | None) -> Follow:
    existing = db.session.scalar(select(Follow).where(Follow.user_id == user.id, Follow.key == key))
    if existing is not None:
        return existing
    count = db.session.scalar(select(func.count(Follow.id)).where(Follow.user_id == user.id)) or 0
    if count >= MAX_FOLLOWS:
        raise Invalid(f"Vous suivez déjà {MAX_FOLLOWS} recherches : retirez-en une d'abord.")
    row = Follow(user_id=user.id, kind=kind.value, params=params, key=key, label=text[:300],
                 created_at=now or utcnow())
    db.session.add(row)
    return row


def _sheet_key(sheet: Sheet) -> str:
    return f"sheet={sheet.id}"  # never a search's key: searches have no "sheet" parameter


def follow_sheet(user: User, sheet: Sheet, now: datetime | None = None) -> Follow:
    """Follow one sheet: the letter tells when its published text changes. Twice: the same."""
    return _add(user, FollowKind.SHEET, {"sheet": sheet.id}, _sheet_key(sheet),
                sheet.title or sheet.slug, now)


def sheet_follow(user: User, sheet: Sheet) -> Follow | None:
    """This person's follow of this sheet, if any."""
    return db.session.scalar(select(Follow).where(Follow.user_id == user.id,
                                                  Follow.key == _sheet_key(sheet)))


def followed_sheets(follows: list[Follow]) -> dict[int, Sheet]:
    """Follow id -> the sheet of each sheet follow (for their links)."""
    ids = {f.id: f.params.get("sheet") for f in follows if f.kind == FollowKind.SHEET}
    sheets = {s.id: s for s in db.session.scalars(select(Sheet).where(Sheet.id.in_(
        [i for i in ids.values() if isinstance(i, int)])))} if ids else {}
    return {follow_id: sheets[i] for follow_id, i in ids.items() if i in sheets}


def unfollow(user: User, follow_id: int) -> None:
    row = db.session.get(Follow, follow_id)
    if row is None or row.user_id != user.id:
        raise NotFound("Ce suivi n'existe pas.")
    db.session.delete(row)


def follows_of(user: User) -> list[Follow]:
    return list(db.session.scalars(select(Follow).where(Follow.user_id == user.id)
                                   .order_by(Follow.created_at)))


# --- one-click links in the letter --------------------------------------------------------------

def _serializer(salt: str = _UNSUBSCRIBE_SALT) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=salt)


def user_for_unsubscribe(token: str) -> User:
    """The person behind an unsubscribe link of the former follows digest (mails already sent
    keep working: it now turns off the letter's "Vos suivis" section)."""
    try:
        user_id = int(_serializer().loads(token))
    except (BadSignature, ValueError, TypeError) as exc:
        raise NotFound("Ce lien n'est pas valide.") from exc
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("Ce lien n'est plus valide.")
    return user


def unfollow_url(row: Follow) -> str:
    """A signed "Ne plus suivre" link for the letter: works without signing in."""
    token = _serializer(_UNFOLLOW_SALT).dumps([row.user_id, row.id])
    return f"{base_url()}/suivis/ne-plus-suivre/{token}"


def follow_for_unfollow(token: str) -> Follow | None:
    """The follow behind a signed link; None when it was removed already. NotFound or KbError when the
    link was not ours."""
    try:
        user_id, follow_id = _serializer(_UNFOLLOW_SALT).loads(token)
        user_id, follow_id = int(user_id), int(follow_id)
    except (BadSignature, ValueError, TypeError) as exc:
        raise KbError("Ce lien n'est pas valide.") from exc
    row = db.session.get(Follow, follow_id)
    return row if row is not None and row.user_id == user_id else None


# --- what the letter lists --------------------------------------------------------------------

def _matching(row: Follow, since: datetime) -> list[tuple[int, datetime]]:
    """Published sheets matching a follow, updated since `since`, newest first: the same
    search as /recherche with these parameters, sorted by update date; for a sheet follow,
    the sheet if it is published and was updated since."""
    from kb.search.service import search_sheets

    if row.kind == FollowKind.SHEET:
        sheet = db.session.scalar(published_sheets().where(Sheet.id == row.params.get("sheet")))
        return [(sheet.id, sheet.updated_at)] if sheet is not None \
            and sheet.updated_at >= since else []
    params: dict[str, str] = row.params

    found: list[tuple[int, datetime]] = []
    page = 1
    while True:
        result = search_sheets(params.get("q", ""), params, "updated", page, 100)
        slugs = [item["slug"] for item in result["items"]]
        if not slugs:
            return found
        rows = {s.slug: s for s in db.session.scalars(select(Sheet).where(Sheet.slug.in_(slugs)))}
        for slug in slugs:
            sheet = rows.get(slug)
            if sheet is None:
                continue
            if sheet.updated_at < since:  # times have whole seconds: same second counts
                return found
            found.append((sheet.id, sheet.updated_at))
        if page >= result["pages"]:
            return found
        page += 1


@dataclass
class Update:
    follow: Follow
    sheet: Sheet
    new: bool  # created after `since`, not only updated


@dataclass
class SearchCache:
    """One search per distinct follow per letters run: results since an earlier date serve
    later dates."""

    results: dict[str, tuple[datetime, list[tuple[int, datetime]]]] = field(default_factory=dict)


def updates_for(user: User, since: datetime, cache: SearchCache | None = None) -> list[Update]:
    """Sheets new or updated since `since` (or since the follow was made) for each follow of
    this person, each sheet once (under its first follow), newest first per follow. A pure
    read: the letters engine (kb/letters) decides when and whether to mail it."""
    cache = cache or SearchCache()
    found: list[Update] = []
    listed: set[int] = set()
    for row in follows_of(user):
        start = max(row.created_at, since)
        cached = cache.results.get(row.key)
        if cached is None or cached[0] > start:
            cached = cache.results[row.key] = (start, _matching(row, start))
        for sheet_id, updated in cached[1]:
            if updated >= start and sheet_id not in listed:
                listed.add(sheet_id)
                sheet = db.session.get(Sheet, sheet_id)
                if sheet is not None:
                    found.append(Update(row, sheet, sheet.created_at > start))
    return found
