"""Cached answers for anonymous readers, keyed on the publication versions (issue 27).

A GET/HEAD with no session cookie, remember cookie nor bearer token, on a route of `CACHED`,
is answered from the store, before Flask (`Front`), when an entry exists for its key (the
endpoint, the host, the path, the normalised query, today's date, and a sheet's version) and
was rendered at the version it depends on (kb/transaction.py bumps them in the commit that
changes what readers see), or is a narrowed listing that no change since concerns
(`narrow_to`). Signed-in requests never read nor write the store and are marked `private`.

The store is cachelib's: Redis when KB_REDIS_URL is set, otherwise a bounded file cache that
the workers of one machine share (KB_CACHE_DIR, at most KB_CACHE_THRESHOLD entries). A store
that fails (Redis down) is skipped for a few seconds: readers get fresh answers, never a 500.
"""

from __future__ import annotations

import hashlib
import logging
import time
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cachelib import BaseCache, FileSystemCache, NullCache, RedisCache, SimpleCache
from flask import Config, Flask, Request, current_app, g, request, session
from sqlalchemy import DateTime, Engine, Integer, text
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from kb.embed.http import is_stateless
from kb.errors import REQUEST_ID, request_id_from
from kb.extensions import db
from kb.search.service import words_admit
from kb.sheets.queries import tag_admits, tagged_ids
from kb.timeutil import utcnow
from kb.transaction import EVERY_SHEET, Version

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from sqlalchemy import Connection

log = logging.getLogger(__name__)

SHEET_PAGE, LISTING_PAGE = "sheet", "listing"
# One declaration: the routes whose anonymous answers are cached, and what they depend on.
# "sheet": the sheet named by the route's `slug` (its version); "listing": every published
# sheet (the listing version). A route not listed here is never cached.
CACHED: dict[str, str] = {
    "sheets.show": SHEET_PAGE,
    "embed.sheet": SHEET_PAGE,
    "api.get_sheet": SHEET_PAGE,
    "questions.api_list": SHEET_PAGE,
    "sheets.home": LISTING_PAGE,
    "sheets.index": LISTING_PAGE,
    "sheets.tag_page": LISTING_PAGE,
    "sheets.scale_page": LISTING_PAGE,
    "sheets.thematique": LISTING_PAGE,
    "search.results": LISTING_PAGE,
    "search.api_search": LISTING_PAGE,
    "api.list_sheets": LISTING_PAGE,
    "api.list_tags": LISTING_PAGE,
    "embed.sheet_list": LISTING_PAGE,
    "embed.oembed": LISTING_PAGE,
    "opendata.index": LISTING_PAGE,
    "opendata.feed_new": LISTING_PAGE,
    "opendata.feed_changes": LISTING_PAGE,
    "opendata.feed_tag": LISTING_PAGE,
    "opendata.feed_scale": LISTING_PAGE,
    "opendata.feed_filtered": LISTING_PAGE,
    "territories.index": LISTING_PAGE,
    "territories.page": LISTING_PAGE,
    "visits.index": LISTING_PAGE,
    "visits.api_list": LISTING_PAGE,
    "visits.api_slot": LISTING_PAGE,
}
# Headers set per answer (here, by later hooks, or by the server), never stored.
NOT_STORED = {"set-cookie", "date", "content-length", "etag", "last-modified", "cache-control",
              "vary", "retry-after", "x-cache"}
RETRY_AFTER_FAILURE = 5.0  # seconds a failing store is left alone
_PENDING = "kb_cache_key"
_STORE = "kb.cache"


@dataclass
class Store:
    cache: BaseCache
    failed_at: float = 0.0

    def call(self, method: str, *args: Any) -> Any:
        """The store's answer, or None when it fails (logged, then skipped for a while)."""
        if time.monotonic() - self.failed_at < RETRY_AFTER_FAILURE:
            return None
        try:
            return getattr(self.cache, method)(*args)
        except Exception:  # noqa: BLE001  (redis errors, a full disk: serve uncached)
            self.failed_at = time.monotonic()
            log.warning("page cache unavailable: answers are served uncached", exc_info=True)
            return None


class BoundedFileCache(FileSystemCache):
    """cachelib's file cache, which prunes down to LOW_WATER of its bound once it passes it.
    cachelib's own prune removes a single entry when the cache is full, after reading every
    file; a full cache then paid that scan on every new entry (`python -m bench.page_cache`).
    Here a scan frees room for many entries."""

    LOW_WATER = 0.8

    def _prune(self) -> None:
        if not self._over_threshold():
            return
        bound = self._threshold
        self._threshold = max(1, int(bound * self.LOW_WATER))
        try:
            super()._prune()  # expired entries first, then the oldest, down to the low water
        finally:
            self._threshold = bound


def make_store(app: Flask) -> Store:
    config = app.config
    kind = config.get("KB_CACHE") or ("none" if config.get("TESTING") else
                                      "redis" if config.get("KB_REDIS_URL") else "filesystem")
    timeout = int(config.get("KB_CACHE_TIMEOUT", 300))
    cache: BaseCache
    if kind == "redis":
        import redis

        client = redis.Redis.from_url(config["KB_REDIS_URL"], socket_timeout=0.25,
                                      socket_connect_timeout=0.25)
        cache = RedisCache(host=client, default_timeout=timeout, key_prefix="kb-page:")
    elif kind == "filesystem":
        folder = config.get("KB_CACHE_DIR") or str(Path(app.instance_path) / "page-cache")
        cache = BoundedFileCache(folder, threshold=int(config.get("KB_CACHE_THRESHOLD", 5000)),
                                 default_timeout=timeout)
    elif kind == "simple":  # one process only: tests
        cache = SimpleCache(threshold=int(config.get("KB_CACHE_THRESHOLD", 5000)),
                            default_timeout=timeout)
    else:
        cache = NullCache()
    return Store(cache)


def signed_in() -> bool:
    """A request that may belong to someone: a session or remember cookie, or a token."""
    return _signed_in(current_app, request.headers.get("Authorization"), request.cookies)


def _signed_in(app: Flask, authorization: str | None, cookies: Mapping[str, str]) -> bool:
    return bool(authorization
                or app.config.get("SESSION_COOKIE_NAME", "session") in cookies
                or app.config.get("REMEMBER_COOKIE_NAME", "remember_token") in cookies)


# Plain SQL, typed once: an answer from the cache costs this one query, not an ORM round.
_SHEET_VERSION = text(
    "SELECT s.id, v.version, v.changed_at FROM sheets s LEFT JOIN publication_versions v "
    "ON v.scope = 'sheet' AND v.ref = s.id WHERE s.slug = :slug"
).columns(id=Integer, version=Integer, changed_at=DateTime)
_LISTING_VERSION = text(
    "SELECT version, changed_at FROM publication_versions WHERE scope = 'listing' AND ref = 0"
).columns(version=Integer, changed_at=DateTime)


def dependency(connection: Connection, endpoint: str, view_args: Mapping[str, Any]
               ) -> tuple[str, Version]:
    """What the answer depends on, as a key part, and its version."""
    if CACHED[endpoint] == SHEET_PAGE:
        row = connection.execute(_SHEET_VERSION, {"slug": str(view_args.get("slug", ""))}).first()
        if row is not None:
            return f"sheet:{row[0]}", (row[1] or 0, row[2])
    # Unknown slug (an old one redirects, or 404): the listing version covers renames.
    row = connection.execute(_LISTING_VERSION).first()
    return "listing", ((row[0], row[1]) if row is not None else (0, None))


@dataclass(frozen=True)
class Pending:
    """A request's key, and the version its answer depends on (entries hold it)."""

    key: str
    listing: bool
    version: Version


def cache_key(connection: Connection, endpoint: str, view_args: Mapping[str, Any],
              incoming: Request) -> Pending:
    depends, version = dependency(connection, endpoint, view_args)
    query = sorted(incoming.args.items(multi=True))
    listing = depends == "listing"
    # A sheet's answers are keyed on its version (and its time: a base recreated from scratch
    # restarts its counters at 0). A listing's entry holds the version it was rendered at
    # instead: a narrowed listing may outlive the versions after it (`Front.valid`).
    raw = repr((endpoint, incoming.host_url, incoming.path, query, depends,
                None if listing else version, date.today()))
    return Pending(hashlib.sha256(raw.encode()).hexdigest(), listing, version)


# --- narrowed listings ---------------------------------------------------------------------
# Each publish moves the listing version, which a listing's answer would otherwise not
# survive. A view whose answer depends on a known set of sheets, plus those a probe finds,
# says so (`narrow_to`); its entry then stays valid across the versions whose changed sheets
# (kb.transaction.PublicationChange) are none of its members and none of which the probe
# finds now. A search's probe reads the index: only engines whose index holds a change by
# the time the listing version says so narrow searches (kb.search.service.words_members).
PROBES: dict[str, Callable[[str, set[int]], bool]] = {
    "words": words_admit,  # a search: the sheets with any of its words
    "tag": tag_admits,  # a tag page: the sheets with the tag
}
MAX_VALIDATED = 200  # versions an entry may be checked across; past them it is rendered again
_NARROW = "kb.cache.narrow"
_CHANGES = text(
    "SELECT listing_version, sheet_id, changed_at FROM publication_changes "
    "WHERE listing_version >= :since AND listing_version <= :until"
).columns(listing_version=Integer, sheet_id=Integer, changed_at=DateTime)


def storing() -> bool:
    """This request's answer will be kept: worth its view's work to narrow it."""
    store: Store = current_app.extensions[_STORE]
    return _PENDING in request.environ and not isinstance(store.cache, NullCache)


def narrow_to(members: Iterable[int], probe: tuple[str, str]) -> None:
    """The answer depends only on these sheets and on those `probe` finds (PROBES). Read
    them before the answer's data: a change committed in between is then either among them
    or in the answer and found by the probe."""
    request.environ[_NARROW] = (array("q", sorted(members)).tobytes(), probe)


def narrow_to_tag(slug: str) -> None:
    """A tag page or a tag's list: the sheets that carry the tag, or come to."""
    if storing():
        narrow_to(tagged_ids(slug), ("tag", slug))


def changed_since(connection: Connection, version: Version, until: int) -> set[int] | None:
    """The sheets changed after `version` up to the listing version `until`, or None when the
    record does not cover them all (pruned, an import, a base recreated since)."""
    since, at = version
    if not since < until <= since + MAX_VALIDATED:
        return None
    rows = connection.execute(_CHANGES, {"since": since, "until": until}).all()
    if not any(v == since and changed_at == at for v, _, changed_at in rows):
        return None  # not the version this entry was rendered at
    if {v for v, _, _ in rows} != set(range(since, until + 1)):
        return None
    changed = {sheet_id for v, sheet_id, _ in rows if v > since}
    return None if EVERY_SHEET in changed else changed


def _public(response: Response, etag: str, last_modified: datetime | None, config: Config,
            stateless: bool) -> Response:
    response.cache_control.public = True
    response.cache_control.max_age = int(config.get("KB_CACHE_MAX_AGE", 10))
    response.cache_control.stale_while_revalidate = int(
        config.get("KB_CACHE_STALE_WHILE_REVALIDATE", 30))
    response.set_etag(etag)  # strong: a hash of the exact bytes
    response.last_modified = (last_modified or utcnow()).replace(tzinfo=UTC)
    if not stateless:  # widgets and feeds are the same for everyone
        response.vary.add("Cookie")
        response.vary.add("Authorization")
    return response


class Front:
    """WSGI middleware before Flask: an anonymous read whose answer is in the store is served
    from there without entering Flask (no request context, session, user, nor hooks: the
    entry holds the headers those added). Otherwise it notes the request's key in the environ
    for `store_answer`, so that the versions are read once per request, before anything else:
    what the view reads afterwards is at least as new as the key says."""

    def __init__(self, app: Flask, wsgi_app: WSGIApplication):
        self.app = app
        self.wsgi_app = wsgi_app
        self._engine: Engine | None = None
        self._checked: dict[tuple[Any, ...], bool] = {}  # narrowed entries checked (`valid`)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            with self.app.app_context():  # the engine of this app (its config, its pool)
                self._engine = db.engine
        return self._engine

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse
                 ) -> Iterable[bytes]:
        response = self.cached(environ) if environ.get("REQUEST_METHOD") in ("GET", "HEAD") \
            else None
        if response is None:
            return self.wsgi_app(environ, start_response)
        return response(environ, start_response)

    def cached(self, environ: WSGIEnvironment) -> Response | None:
        incoming = self.app.request_class(environ)
        if "\x00" in incoming.full_path or _signed_in(
                self.app, incoming.headers.get("Authorization"), incoming.cookies):
            return None  # a NUL is refused further in (kb/limits.py), and no database takes it
        try:
            endpoint, view_args = self.app.create_url_adapter(incoming).match()  # type: ignore[union-attr]
        except HTTPException:  # 404, 405, a redirect: Flask answers
            return None
        if endpoint not in CACHED:
            return None
        store: Store = self.app.extensions[_STORE]
        with self.engine.connect() as connection:
            pending = cache_key(connection, endpoint, view_args, incoming)
            entry = store.call("get", pending.key)
            if not entry or not self.valid(entry, pending, connection):
                environ[_PENDING] = pending
                return None
        response = Response(entry["body"], status=entry["status"], headers=entry["headers"])
        _public(response, entry["etag"], entry["last_modified"], self.app.config,
                entry.get("stateless", False))
        response.headers["X-Cache"] = "hit"
        response.headers[REQUEST_ID] = request_id_from(incoming.headers)
        return response.make_conditional(incoming)

    def valid(self, entry: dict[str, Any], pending: Pending, connection: Connection) -> bool:
        """Rendered at this version, or a narrowed listing that no change since concerns."""
        rendered_at = tuple(entry.get("version", ()))
        if rendered_at == pending.version:
            return True
        if not pending.listing or entry.get("narrow") is None:
            return False
        # Once per worker and listing version: until the next one, the answer cannot change.
        checked = (pending.key, rendered_at, pending.version)
        if checked not in self._checked:
            if len(self._checked) >= 4096:
                self._checked.clear()
            self._checked[checked] = self._narrowed_valid(entry, pending, connection)
        return self._checked[checked]

    def _narrowed_valid(self, entry: dict[str, Any], pending: Pending,
                        connection: Connection) -> bool:
        changed = changed_since(connection, entry["version"], pending.version[0])
        if changed is None:
            return False
        members, (kind, value) = entry["narrow"]
        if not changed.isdisjoint(array("q", members)):
            return False
        with self.app.app_context():
            try:
                return not PROBES[kind](value, changed)
            except Exception:  # noqa: BLE001  (an index being rebuilt: render again)
                log.warning("narrowed listing not checked: rendered again", exc_info=True)
                return False


def note_pending() -> None:
    """before_request: the key `Front` computed for this request, for `store_answer`."""
    pending = request.environ.get(_PENDING)
    if pending is not None:
        g.setdefault(_PENDING, pending)


def store_answer(response: Response) -> Response:
    """after_request: keep an anonymous answer; mark answers to signed-in requests private."""
    if signed_in() and not is_stateless():
        response.cache_control.public = False
        response.cache_control.private = True
        response.vary.add("Cookie")
        return response
    pending = g.pop(_PENDING, None)
    if pending is None or signed_in() or response.status_code != 200 or response.is_streamed \
            or "Set-Cookie" in response.headers \
            or (not is_stateless() and (session.modified or session)):
        # Only a complete answer that names nobody: a session touched during the request
        # (a form's CSRF token, a flash message) makes it personal.
        return response
    body = response.get_data()
    etag = hashlib.sha256(body).hexdigest()[:32]
    headers = [(k, v) for k, v in response.headers.items() if k.lower() not in NOT_STORED
               and not k.lower().startswith("x-ratelimit")]
    store: Store = current_app.extensions[_STORE]
    changed_at = pending.version[1]
    store.call("set", pending.key, {
        "body": body, "status": response.status_code, "headers": headers, "etag": etag,
        "last_modified": changed_at, "stateless": is_stateless(), "version": pending.version,
        "narrow": request.environ.get(_NARROW) if pending.listing else None})
    response.headers["X-Cache"] = "miss"
    return _public(response, etag, changed_at, current_app.config,
                   is_stateless()).make_conditional(request)


def init_app(app: Flask) -> None:
    app.extensions[_STORE] = make_store(app)
    app.wsgi_app = Front(app, app.wsgi_app)  # type: ignore[method-assign]
    app.before_request(note_pending)
    # Registered first among the app's hooks, it runs after the others (CORS, frame headers
    # are set by then; Flask runs after_request hooks in reverse order).
    app.after_request_funcs.setdefault(None, []).insert(0, store_answer)


def clear(app: Flask) -> None:
    """Empty the store (`kb cache clear`; never needed for correctness)."""
    app.extensions[_STORE].call("clear")
