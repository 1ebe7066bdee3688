"""HTTP plumbing shared by embeds and open data: no session, framing policy, conditional caching."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import wraps
from typing import Any

from flask import Flask, current_app, request
from flask.sessions import SessionInterface, SessionMixin
from flask.wrappers import Response as FlaskResponse
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from kb.extensions import db
from kb.sheets.models import published_sheets

EMBED_MAX_AGE = 300  # seconds a partner page may reuse a widget before revalidating
_STATELESS = "kb.stateless"
log = logging.getLogger(__name__)


def stateless(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a view whose response must never carry a cookie (widgets, feeds, exports)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # On the request, not on g: an app context (and its g) may outlive one request.
        request.environ[_STATELESS] = True
        return view(*args, **kwargs)

    return wrapper


def is_stateless() -> bool:
    """This request's view is marked `stateless`: its answer is the same for everyone."""
    return bool(request.environ.get(_STATELESS))


class StatelessAwareSessionInterface(SessionInterface):
    """Delegates to the app's session interface, except that stateless responses save nothing.

    Saving is the last step of a response, after every after_request hook: dropping any
    Set-Cookie here guarantees that an embedded widget never sets a cookie on a partner page,
    whatever another component (flash, login, csrf) touched during the request.
    """

    def __init__(self, inner: SessionInterface):
        self.inner = inner

    def open_session(self, app: Flask, request: Any) -> SessionMixin | None:
        return self.inner.open_session(app, request)

    def make_null_session(self, app: Flask) -> Any:
        return self.inner.make_null_session(app)

    def is_null_session(self, obj: object) -> bool:
        return self.inner.is_null_session(obj)

    def save_session(self, app: Flask, session: SessionMixin, response: FlaskResponse) -> None:
        if request.environ.get(_STATELESS):
            response.headers.remove("Set-Cookie")
            return
        self.inner.save_session(app, session, response)


def init_app(app: Flask) -> None:
    if not isinstance(app.session_interface, StatelessAwareSessionInterface):
        app.session_interface = StatelessAwareSessionInterface(app.session_interface)


_SOURCE = re.compile(r"^(\*|'self'|https?://[A-Za-z0-9.*:\-\[\]]+|[A-Za-z0-9*\-]+(\.[A-Za-z0-9\-]+)+(:\d+)?)$")


def frame_ancestors() -> str:
    """The frame-ancestors sources of embed routes, from KB_EMBED_FRAME_ANCESTORS.

    '*' (the default) lets any site frame the widgets; otherwise a space- or comma-separated
    list of origins, to which our own origin is added (the configurator's preview).
    A value that is not a list of plain sources fails closed ('self' only), so a typo can
    neither inject another directive nor open the widgets to every site.
    """
    raw = str(current_app.config.get("KB_EMBED_FRAME_ANCESTORS", "*") or "")
    sources = [s for s in re.split(r"[\s,]+", raw.strip()) if s]
    if not sources or not all(_SOURCE.match(s) for s in sources):
        log.warning("KB_EMBED_FRAME_ANCESTORS=%r is not a list of origins: widgets framable "
                    "by this site only", raw)
        return "'self'"
    if "*" in sources:
        return "*"
    return " ".join(["'self'", *[s for s in sources if s != "'self'"]])


def allow_framing(response: Response) -> Response:
    """Embed pages: framable by the allowlist, no scripts nor styles but our own (no inline
    ones: static/css/embed.css), never indexed."""
    response.headers["Content-Security-Policy"] = (
        f"frame-ancestors {frame_ancestors()}; default-src 'none'; script-src 'self'; "
        "style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'none'"
    )
    response.headers.pop("X-Frame-Options", None)
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def cacheable(response: Response, last_modified: datetime | None = None,
              max_age: int = EMBED_MAX_AGE, etag: str | None = None) -> Response:
    """Public caching with revalidation: ETag (given, or a hash of the body), Last-Modified, 304."""
    response.cache_control.public = True
    response.cache_control.max_age = max_age
    if etag is not None:
        response.set_etag(etag)
    elif not response.is_streamed:
        response.add_etag()
    if response.is_streamed:
        # Otherwise make_conditional reads the whole generator to compute Content-Length.
        response.implicit_sequence_conversion = False
    if last_modified is not None:
        response.last_modified = last_modified.replace(tzinfo=UTC)
    return response.make_conditional(request)


def published_fingerprint(*parts: Any) -> tuple[str, datetime | None]:
    """An ETag and Last-Modified for outputs built from all published sheets (exports, feeds).

    The set of published sheets, their approved revisions and review dates decide the
    content; `fresh` also moves with the calendar, hence today's date in the tag.
    """
    subquery = published_sheets().subquery()
    row = db.session.execute(
        select(
            func.count(), func.coalesce(func.sum(subquery.c.id), 0),
            func.coalesce(func.sum(subquery.c.approved_revision_id), 0),
            func.max(subquery.c.updated_at), func.max(subquery.c.last_reviewed_at),
        ).select_from(subquery)
    ).one()
    count, id_sum, revision_sum, updated, reviewed = row
    updated = _as_datetime(updated)
    reviewed = _as_datetime(reviewed)
    key = "|".join(str(p) for p in (count, id_sum, revision_sum, updated, reviewed,
                                    date.today(), *parts))
    latest = max((d for d in (updated, reviewed) if d is not None), default=None)
    return hashlib.sha256(key.encode()).hexdigest()[:32], latest


def _as_datetime(value: Any) -> datetime | None:
    # SQLite returns aggregates of DateTime columns as strings.
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))

