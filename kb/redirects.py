"""Where to send the user back to: only paths of this site, never another host."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import request


def safe_next(target: str | None, default: str) -> str:
    # "//host" and "/\\host" are other hosts to a browser; an open redirect helps phishing.
    if target and target.startswith("/") and not target.startswith(("//", "/\\")) \
            and not urlsplit(target).netloc:
        return target
    return default


def current_path() -> str:
    """This page as a `next=` value: its path and its query string exactly as received, and no
    "?" when there is no query (Werkzeug's `request.full_path` always ends one)."""
    query = request.query_string.decode("utf-8", "replace")
    return f"{request.path}?{query}" if query else request.path
