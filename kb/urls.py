"""The site's absolute address, for every absolute link (mails, embeds, oEmbed, JSON-LD, feeds,
API objects, exports): one helper, `base_url()`.

`KB_BASE_URL` when it is set (production: set it, links then never depend on a request's
`Host` header). Otherwise links follow what is served: inside a request, the host and port the
request came to (`make run PORT=5077` links to :5077); outside one (a command such as
`kb export`), the address `kb serve` / `kb run` last served (kept in instance/served_url), else
the default http://127.0.0.1:5000.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from flask import current_app, has_request_context, request

DEFAULT_BASE_URL = "http://127.0.0.1:5000"


def base_url() -> str:
    """`https://fiches.example.org`, without a trailing slash."""
    configured = str(current_app.config.get("KB_BASE_URL") or "")
    if configured:
        return configured.rstrip("/")
    if has_request_context():
        return request.host_url.rstrip("/")
    return str(current_app.config.get("KB_SERVED_URL") or DEFAULT_BASE_URL).rstrip("/")


def served_url(host: str, port: int) -> str:
    """The address a browser uses for a server listening on host:port."""
    everywhere = host in ("0.0.0.0", "::", "")
    shown = "127.0.0.1" if everywhere else f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def remember_served(path: Path, url: str) -> None:
    """Keep the served address for commands run outside a request (best effort)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(url + "\n", encoding="utf-8")
    except OSError:
        pass


LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


def port_mismatch(configured: str, host: str, port: int) -> str:
    """A French warning when KB_BASE_URL names this machine on another port than the one
    served ('' if not). A public name (behind a reverse proxy) is not this server's port."""
    if not configured:
        return ""
    parts = urlsplit(configured)
    try:
        named = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return f"Attention : KB_BASE_URL ({configured}) n'est pas une adresse valide."
    if named == port or (parts.hostname or "") not in LOCAL_HOSTS | {host}:
        return ""
    return (f"Attention : KB_BASE_URL vaut {configured} (port {named}) mais le site est servi "
            f"sur le port {port} : les liens des courriels, intégrations et exports pointeront "
            "vers l'autre port. Corrigez KB_BASE_URL, ou retirez-la pour suivre l'adresse servie.")


def wants_json() -> bool:
    """The app's rule for error answers: JSON under /api/ and for oEmbed, a page elsewhere."""
    return request.path.startswith("/api/") or request.path == "/oembed"
