"""Spam defence: honeypot field, a cap on links from untrusted contributors, rate limits.

The rate limiter is built per app (not a module-level object) so that two apps in one process
(the tests) never share counters or registrations.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections import Counter
from typing import Any

from flask import Flask, abort, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import current_user

from kb.auth.identity import api_user
from kb.auth.models import User
from kb.auth.permissions import Capability, can
from kb.sheets.fields import FIELDS, Kind, ValidationError
from kb.sheets.signals import revision_check

log = logging.getLogger(__name__)

HONEYPOT_FIELD = "homepage"
# POSTs that carry the honeypot (forms that render templates/moderation/_honeypot.html).
HONEYPOT_ENDPOINTS = frozenset({"auth.register", "sheets.create", "sheets.edit",
                                "moderation.report"})

# endpoint -> (config key of the limit, shared scope, limited methods). Login is counted per
# client address (the person is guessing an account); the forms that mail an address typed by
# a visitor per that address (MAILED_SCOPES), the rest per account when logged in, else per
# client address.
RATE_LIMITS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "auth.login": ("KB_RATE_LIMIT_LOGIN", "login", ("POST",)),
    # Every form that mails an address typed by a visitor shares the registration budget.
    "auth.register": ("KB_RATE_LIMIT_REGISTER", "register", ("POST",)),
    "auth.resend_confirmation": ("KB_RATE_LIMIT_REGISTER", "register", ("POST",)),
    "auth.forgot_password": ("KB_RATE_LIMIT_REGISTER", "register", ("POST",)),
    # ProConnect / OpenID Connect (kb/auth/oidc_views.py): its callback and the proofs that
    # link an existing account count as login attempts.
    "oidc.callback": ("KB_RATE_LIMIT_LOGIN", "login", ("GET",)),
    "oidc.link": ("KB_RATE_LIMIT_LOGIN", "login", ("POST",)),
    "oidc.link_mail": ("KB_RATE_LIMIT_LOGIN", "login", ("POST",)),
    "moderation.report": ("KB_RATE_LIMIT_REPORT", "report", ("POST",)),
    "moderation_api.report": ("KB_RATE_LIMIT_REPORT", "report", ("POST",)),
    "sheets.create": ("KB_RATE_LIMIT_SUBMIT", "submit", ("POST",)),
    "sheets.edit": ("KB_RATE_LIMIT_SUBMIT", "submit", ("POST",)),
    "api.create_sheet": ("KB_RATE_LIMIT_SUBMIT", "submit", ("POST",)),
    "api.update_sheet": ("KB_RATE_LIMIT_SUBMIT", "submit", ("PATCH",)),
    # Diffs cost CPU (bounded, kb/sheets/diff.py): a crawler or a script gets a 429.
    "sheets.diff": ("KB_RATE_LIMIT_DIFF", "diff", ("GET",)),
}
# Forms that mail a typed address: counted per address typed (one inbox is not flooded), and
# within a much larger budget per client address, since a training room of public-service staff
# shares one address (the IP budget still stops one machine from mailing thousands of inboxes).
MAILED_SCOPES = {"register": "KB_RATE_LIMIT_REGISTER_IP"}
RATE_LIMIT_MESSAGE = "Trop de tentatives en peu de temps : patientez quelques minutes avant de réessayer."

_LINK = re.compile(r"(?:https?://|www\.)[^\s<>()\[\]]+", re.IGNORECASE)
_SKIP_LINK_FIELDS = {f.name for f in FIELDS if f.kind is Kind.URL}  # the one declared web link


# --- honeypot -------------------------------------------------------------------------------

def check_honeypot() -> None:
    """A before_request hook: a filled invisible field means a bot; refuse without saving."""
    if request.method != "POST" or request.endpoint not in HONEYPOT_ENDPOINTS:
        return
    if request.form.get(HONEYPOT_FIELD, "").strip():
        log.warning("honeypot rempli sur %s depuis %s", request.endpoint, request.remote_addr)
        abort(400, "Envoi refusé : un champ qui doit rester vide a été rempli.")


# --- links ----------------------------------------------------------------------------------

def _links(value: Any) -> Counter[str]:
    if isinstance(value, list):  # a list of texts, or of records (indicators' source links)
        text = "\n".join(" ".join(str(v) for v in item.values()) if isinstance(item, dict)
                         else str(item) for item in value)
    else:
        text = str(value or "")
    return Counter(m.group(0).rstrip(".,;:!?").lower() for m in _LINK.finditer(text))


def check_links(old: dict[str, Any] | None, new: dict[str, Any], author: User) -> None:
    """Untrusted contributors may add at most KB_MAX_LINKS_UNTRUSTED links per revision.

    Counted against the revision they build on, so that fixing a typo in a sheet that already
    lists many references is never refused.
    """
    if can(author, Capability.PUBLISH):
        return
    limit = int(current_app.config.get("KB_MAX_LINKS_UNTRUSTED", 3))
    added: dict[str, int] = {}
    for f in FIELDS:
        if f.name in _SKIP_LINK_FIELDS:
            continue
        count = sum((_links(new.get(f.name)) - _links((old or {}).get(f.name))).values())
        if count:
            added[f.name] = count
    total = sum(added.values())
    if total > limit:
        message = (f"trop de liens ajoutés ({total} dans la fiche) : au plus {limit} par "
                   "modification tant que votre compte n'est pas reconnu comme contributeur "
                   "de confiance")
        raise ValidationError({name: message for name in added})


def _on_revision_check(_app: Flask, old: dict[str, Any] | None, new: dict[str, Any],
                       author: User) -> None:
    check_links(old, new, author)


def init_app(app: Flask) -> None:
    """Subscribe the link rule to the sheets domain's check before a revision is stored."""
    revision_check.connect(_on_revision_check, sender=app)


# --- reporter fingerprint ---------------------------------------------------------------------

def client_fingerprint() -> str:
    """`u:<id>` for an account, else a keyed hash of the client address (never stored in clear)."""
    if getattr(current_user, "is_authenticated", False):
        return f"u:{current_user.id}"
    user = api_user() if request.path.startswith("/api/") else None
    if user is not None:
        return f"u:{user.id}"
    secret = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(secret, (request.remote_addr or "?").encode(), hashlib.sha256)
    return "ip:" + digest.hexdigest()[:40]


# --- rate limits ----------------------------------------------------------------------------

def _limit_key() -> str:
    # Accounts are counted per account, anonymous clients per address.
    if getattr(current_user, "is_authenticated", False):
        return f"u:{current_user.id}"
    if request.path.startswith("/api/"):
        user = api_user()
        if user is not None:
            return f"u:{user.id}"
    return get_remote_address()


def typed_address_key() -> str:
    """The e-mail address typed in the form (lower-case, trimmed), hashed with the app's key so
    that counters never hold it in clear; the client address when none was typed."""
    typed = str(request.form.get("email") or "").strip().lower()
    if not typed:
        return get_remote_address()
    secret = str(current_app.config["SECRET_KEY"]).encode()
    return "email:" + hmac.new(secret, typed.encode(), hashlib.sha256).hexdigest()[:40]


def _limit_value(config_key: str) -> Any:
    return lambda: current_app.config[config_key]


def init_rate_limits(app: Flask) -> Limiter:
    """Wrap the listed endpoints (registered before this call) with their limits."""
    limiter = Limiter(key_func=_limit_key, app=app, key_prefix="kb")
    app.extensions["kb_limiter"] = limiter
    for endpoint, (config_key, scope, methods) in RATE_LIMITS.items():
        view = app.view_functions.get(endpoint)
        if view is None:
            continue
        key_func = get_remote_address if scope == "login" else \
            typed_address_key if scope in MAILED_SCOPES else _limit_key
        decorator = limiter.shared_limit(_limit_value(config_key), scope=scope, key_func=key_func,
                                         methods=list(methods), error_message=RATE_LIMIT_MESSAGE)
        wrapped: Any = decorator(view)
        if scope in MAILED_SCOPES:
            per_client = limiter.shared_limit(
                _limit_value(MAILED_SCOPES[scope]), scope=f"{scope}-ip",
                key_func=get_remote_address, methods=list(methods),
                error_message=RATE_LIMIT_MESSAGE)
            wrapped = per_client(wrapped)
        app.view_functions[endpoint] = wrapped
    return limiter
