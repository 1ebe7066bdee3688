"""Who is asking: the logged-in user of a page, or the bearer token's user on the API.

The API never trusts the session cookie (it is exempt from CSRF), and pages never read tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import g, request
from flask_login import current_user

from kb.auth.models import User
from kb.auth.operations import user_for_token
from kb.errors import NotAuthenticated
from kb.extensions import login_manager

TOKEN_MISSING = ("jeton d'API manquant ou invalide (en-tête « Authorization: Bearer … »)")


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def api_user() -> User | None:
    """The user of the request's bearer token (looked up once per request), or None."""
    if "api_user" not in g:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        g.api_user = user_for_token(token) if token else None
    user: User | None = g.api_user
    return user


def session_user() -> User | None:
    user = current_user._get_current_object()
    return user if isinstance(user, User) and user.is_authenticated else None


def current_actor() -> User | None:
    """The person behind this request, or None for an anonymous visitor."""
    return api_user() if is_api_request() else session_user()


def unauthenticated() -> Any:
    """The answer to an anonymous caller where an account is needed: the login page for a
    page, 401 on the API."""
    if is_api_request():
        raise NotAuthenticated(TOKEN_MISSING)
    return login_manager.unauthorized()


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Any account (pages: logged in; API: a valid bearer token)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_actor() is None:
            return unauthenticated()
        return view(*args, **kwargs)

    return wrapper


# The API's name for the same guard.
token_required = login_required
