"""Where to send the user back to: only paths of this site, never another host."""

from __future__ import annotations

from urllib.parse import urlsplit


def safe_next(target: str | None, default: str) -> str:
    # "//host" and "/\\host" are other hosts to a browser; an open redirect helps phishing.
    if target and target.startswith("/") and not target.startswith(("//", "/\\")) \
            and not urlsplit(target).netloc:
        return target
    return default
