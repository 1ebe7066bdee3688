"""Follows (saved searches) and the digest: one mail per person per period, whatever the number
of follows, none when nothing changed."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from flask import current_app, render_template
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from kb import mail
from kb.auth.models import User
from kb.extensions import db
from kb.follows.models import DigestPeriod, Follow, FollowDigest, FollowKind, FollowSettings
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


class FollowError(Exception):
    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.message = message
        self.status = status


# --- what a follow is ---------------------------------------------------------------------------

def canonical(params: dict[str, Any]) -> dict[str, str]:
    """The words and the filters, normalised as every listing reads them (FollowError if a
    filter cannot match anything)."""
    try:
        filters = parse_filters(params)
    except FilterError as exc:
        raise FollowError(exc.message) from None
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
        raise FollowError(f"Territoire inconnu : « {ref} » (attendu : un code officiel, par "
                          "exemple 29, ou l'adresse de sa page, 53-bretagne).")
    if len(found) > 1:
        raise FollowError(f"Le code {code} désigne plusieurs territoires : précisez, par exemple "
                          f"« {found[0].slug} ».")
    return {TERRITORY_PARAMS[found[0].kind]: found[0].code}


def follow(user: User, params: dict[str, Any], now: datetime | None = None) -> Follow:
    """Follow a search; following the same one twice returns the existing follow."""
    clean = canonical(params)
    if not clean:
        raise FollowError("Rien à suivre : choisissez un mot-clé, un territoire ou une recherche.")
    return _add(user, _kind(clean), clean, urlencode(sorted(clean.items())), label(clean), now)


def _add(user: User, kind: FollowKind, params: dict[str, Any], key: str, text: str,
         now: datetime | None) -> Follow:
    existing = db.session.scalar(select(Follow).where(Follow.user_id == user.id, Follow.key == key))
    if existing is not None:
        return existing
    count = db.session.scalar(select(func.count(Follow.id)).where(Follow.user_id == user.id)) or 0
    if count >= MAX_FOLLOWS:
        raise FollowError(f"Vous suivez déjà {MAX_FOLLOWS} recherches : retirez-en une d'abord.")
    row = Follow(user_id=user.id, kind=kind.value, params=params, key=key, label=text[:300],
                 created_at=now or utcnow())
    db.session.add(row)
    return row


def _sheet_key(sheet: Sheet) -> str:
    return f"sheet={sheet.id}"  # never a search's key: searches have no "sheet" parameter


def follow_sheet(user: User, sheet: Sheet, now: datetime | None = None) -> Follow:
    """Follow one sheet: the digest tells when its published text changes. Twice: the same."""
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
        raise FollowError("Ce suivi n'existe pas.", 404)
    db.session.delete(row)


def follows_of(user: User) -> list[Follow]:
    return list(db.session.scalars(select(Follow).where(Follow.user_id == user.id)
                                   .order_by(Follow.created_at)))


def settings_for(user: User) -> FollowSettings:
    row = db.session.get(FollowSettings, user.id)
    if row is None:
        row = FollowSettings(user_id=user.id, period=DigestPeriod.WEEK.value)
        db.session.add(row)
    return row


def set_period(user: User, period: str) -> None:
    if period not in {p.value for p in DigestPeriod}:
        raise FollowError("Fréquence inconnue.")
    settings_for(user).period = period


# --- unsubscribe (RFC 8058 one-click) ---------------------------------------------------------

def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_UNSUBSCRIBE_SALT)


def unsubscribe_url(user: User) -> str:
    return f"{base_url()}/suivis/desabonner/{_serializer().dumps(user.id)}"


def user_for_unsubscribe(token: str) -> User:
    try:
        user_id = int(_serializer().loads(token))
    except (BadSignature, ValueError, TypeError) as exc:
        raise FollowError("Ce lien n'est pas valide.", 404) from exc
    user = db.session.get(User, user_id)
    if user is None:
        raise FollowError("Ce lien n'est plus valide.", 404)
    return user


# --- the digest -------------------------------------------------------------------------------

def period_key(period: str, now: datetime) -> str:
    if period == DigestPeriod.MONTH:
        return f"{now.year}-{now.month:02d}"
    year, week, _ = now.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class DigestRun:
    sent: list[tuple[User, int]] = field(default_factory=list)  # (person, sheets listed)
    already: int = 0  # people who had their digest this period
    nothing_new: int = 0
    failed: list[tuple[User, str]] = field(default_factory=list)


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


def send_digests(now: datetime | None = None) -> DigestRun:
    """Send each follower at most one digest for the current period. Idempotent."""
    now = now or utcnow()
    run = DigestRun()
    by_user: dict[int, list[Follow]] = defaultdict(list)
    for row in db.session.scalars(select(Follow).order_by(Follow.user_id, Follow.id)):
        by_user[row.user_id].append(row)
    # One search per distinct follow per run: results since an earlier date serve later dates.
    cache: dict[str, tuple[datetime, list[tuple[int, datetime]]]] = {}
    for user_id, follows in by_user.items():
        user = db.session.get(User, user_id)
        settings = db.session.get(FollowSettings, user_id)
        period = settings.period if settings else DigestPeriod.WEEK.value
        if user is None or user.blocked or period == DigestPeriod.OFF:
            continue
        key = period_key(period, now)
        sent = db.session.scalars(select(FollowDigest).where(FollowDigest.user_id == user_id)
                                  .order_by(FollowDigest.sent_at.desc())).first()
        if sent is not None and sent.period_key == key:
            run.already += 1
            continue
        sections = []
        listed: set[int] = set()
        for row in follows:
            since = max(row.created_at, sent.sent_at) if sent else row.created_at
            if row.key not in cache or cache[row.key][0] > since:
                cache[row.key] = (since, _matching(row, since))
            ids = [sheet_id for sheet_id, updated in cache[row.key][1]
                   if updated >= since and sheet_id not in listed]
            if ids:
                listed.update(ids)
                sections.append((row, [db.session.get(Sheet, i) for i in ids], since))
        if not sections:
            run.nothing_new += 1
            continue
        if _claim_and_send(user, key, period, sorted(listed), sections, now, run):
            run.sent.append((user, len(listed)))
    return run


def _claim_and_send(user: User, key: str, period: str, sheet_ids: list[int], sections: list[Any],
                    now: datetime, run: DigestRun) -> bool:
    # Claim the period (unique key) in the transaction that queues the mail: two runs at once
    # never queue two mails, and a queued mail is sent by the outbox (kb.mail), retries included.
    claim = FollowDigest(user_id=user.id, period_key=key, sent_at=now, sheet_ids=sheet_ids)
    db.session.add(claim)
    unsubscribe = unsubscribe_url(user)
    body = render_template("mail/follows_digest.txt", user=user, sections=sections,
                           unsubscribe=unsubscribe, period=period,
                           manage=f"{base_url()}/mes-suivis")
    count = len(sheet_ids)
    subject = (f"Vos suivis : {count} fiche nouvelle ou mise à jour" if count == 1
               else f"Vos suivis : {count} fiches nouvelles ou mises à jour")
    headers = (("List-Unsubscribe", f"<{unsubscribe}>"),
               ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    mail.queue(mail.Mail(user.email, subject, body, headers=headers, kind="follows.digest"))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        run.already += 1
        return False
    return True
