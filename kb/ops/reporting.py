"""Errors reach the operators. Every response carries its request id (`X-Request-Id`, taken
from the proxy when it sent a sane one); each unhandled error writes one JSON log line with
that id, and goes to Sentry when `KB_SENTRY_DSN` is set, scrubbed of personal data first:
no address, no text typed by someone (drafts, questions), no token, cookie or password."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from flask import Flask, Response, g, has_request_context, request

from kb.errors import REQUEST_ID, request_id_from

log = logging.getLogger("kb.errors")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Keys whose values are secrets or what people typed, wherever they appear in an event:
# whole keys ("data", "vars") or a word of one ("api_token", "X-Csrf-Token", "user_email").
SECRET_WORDS = re.compile(r"(?:^|[_-])(?:tokens?|password|passwd|secret|authorization|cookies?|"
                          r"csrf|session|nonce|api_?key|dsn|e?mail|phone|draft|body|comments?|"
                          r"questions?|answers?)(?:$|[_-])", re.IGNORECASE)
SECRET_KEYS = frozenset({"data", "vars", "form", "json", "files", "recipient", "address"})
REMOVED = "[retiré]"


def request_id() -> str:
    if not has_request_context():
        return ""
    if "request_id" not in g:
        g.request_id = request_id_from(request.headers)
    return str(g.request_id)


def _note_request_id() -> None:
    request_id()  # before the view: its log lines and errors carry it


def _tag_response(response: Response) -> Response:
    response.headers[REQUEST_ID] = request_id()
    return response


def scrub(value: Any, key: str = "") -> Any:
    """A copy of `value` (an event, or any part of one) without personal data."""
    if key and (key.lower() in SECRET_KEYS or SECRET_WORDS.search(key)):
        return REMOVED if value not in (None, "", [], {}) else value
    if isinstance(value, dict):
        return {k: scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return EMAIL.sub("[adresse]", value)
    return value


def before_send(event: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any]:
    """Sentry's last step before an event leaves: who, what they sent and their cookies go;
    what is left (stack, path, exception) loses any address and secret-looking value."""
    event.pop("user", None)
    req = event.get("request")
    if isinstance(req, dict):
        for part in ("data", "cookies", "query_string", "env"):
            req.pop(part, None)
        headers = req.get("headers")
        if isinstance(headers, dict):
            req["headers"] = {k: v for k, v in headers.items()
                              if k.lower() not in ("cookie", "authorization", "x-forwarded-for",
                                                   "x-real-ip")}
    clean: dict[str, Any] = scrub(event)
    return clean


def _init_sentry(app: Flask) -> None:
    dsn = app.config.get("KB_SENTRY_DSN")
    if not dsn:
        return
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration

    sentry_sdk.init(dsn=dsn, integrations=[FlaskIntegration()], send_default_pii=False,
                    include_local_variables=False, max_request_body_size="never",
                    before_send=before_send,  # type: ignore[arg-type]  # Event is a dict
                    before_breadcrumb=lambda crumb, _hint: scrub(crumb),
                    environment=app.config.get("KB_SENTRY_ENVIRONMENT") or None,
                    traces_sample_rate=0)
    app.extensions["kb_sentry"] = True


def report_error(app: Flask, exc: BaseException) -> None:
    """One line per unhandled error, JSON, with the request id; Sentry when configured."""
    line = {"event": "server_error", "request_id": request_id(),
            "error": type(exc).__name__,
            "where": _where(exc)}
    if has_request_context():
        line.update(method=request.method, endpoint=request.endpoint or "",
                    path=EMAIL.sub("[adresse]", request.path))
    log.error(json.dumps(line, ensure_ascii=False))
    if app.extensions.get("kb_sentry"):
        import sentry_sdk

        with sentry_sdk.new_scope() as scope:
            scope.set_tag("request_id", line["request_id"])
            sentry_sdk.capture_exception(exc)


def _where(exc: BaseException) -> str:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return ""
    return f"{tb.tb_frame.f_code.co_filename.rsplit('/kb/', 1)[-1]}:{tb.tb_lineno}"


def init_app(app: Flask) -> None:
    _init_sentry(app)
    app.before_request(_note_request_id)
    app.after_request(_tag_response)
