"""Defaults, overridden by KB_* environment variables, then by the `config` mapping."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from kb.limits import parse_size

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = PROJECT_ROOT / "instance"


def _secret_key() -> str:
    """KB_SECRET_KEY, else a key kept in instance/ so sessions survive a restart."""
    key = os.environ.get("KB_SECRET_KEY")
    if key:
        return key
    path = INSTANCE_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key)
    path.chmod(0o600)
    return key


SERVED_URL_FILE = INSTANCE_DIR / "served_url"


def last_served(path: Path = SERVED_URL_FILE) -> str:
    """The address `kb serve` / `kb run` last served (kb/urls.py): commands run outside a
    request (exports) link there when KB_BASE_URL is not set."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    env = os.environ
    database_url = env.get("KB_DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'kb.sqlite3'}")
    default_backend = "postgres" if database_url.startswith("postgresql") else "sqlite"
    config: dict[str, Any] = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "KB_INDEX_DIR": env.get("KB_INDEX_DIR", str(INSTANCE_DIR / "index")),
        "KB_SEARCH_BACKEND": env.get("KB_SEARCH_BACKEND", default_backend),
        # Seconds a writer waits for the index lock before giving up (drift, then reconcile).
        "KB_SEARCH_LOCK_TIMEOUT": float(env.get("KB_SEARCH_LOCK_TIMEOUT", "10")),
        "KB_MAIL_URL": env.get("KB_MAIL_URL", ""),
        "KB_MAIL_FROM": env.get("KB_MAIL_FROM", "Fiches initiatives <ne-pas-repondre@kb.local>"),
        # Seconds a request waits for SMTP when sending its transactional mails (docs/mail.md).
        "KB_MAIL_NOW_TIMEOUT": float(env.get("KB_MAIL_NOW_TIMEOUT", "5")),
        # Empty: absolute links follow the address served (kb/urls.py, base_url()).
        "KB_BASE_URL": env.get("KB_BASE_URL", "").rstrip("/"),
        "KB_SERVED_URL": env.get("KB_SERVED_URL") or last_served(),
        "KB_SERVED_URL_FILE": str(SERVED_URL_FILE),
        "KB_REDIS_URL": env.get("KB_REDIS_URL", ""),
        # Anonymous readers' cached answers (kb/cache, docs/deploy.md): "redis" (the default
        # when KB_REDIS_URL is set), "filesystem" (else; shared by one machine's workers),
        # "simple" (one process), "none" (the default under TESTING).
        "KB_CACHE": env.get("KB_CACHE", ""),
        "KB_CACHE_DIR": env.get("KB_CACHE_DIR", ""),
        "KB_CACHE_THRESHOLD": int(env.get("KB_CACHE_THRESHOLD", "5000")),
        # Seconds an entry lives (times shown, dates passing), and the Cache-Control figures
        # given to browsers and proxies.
        "KB_CACHE_TIMEOUT": int(env.get("KB_CACHE_TIMEOUT", "300")),
        "KB_CACHE_MAX_AGE": int(env.get("KB_CACHE_MAX_AGE", "10")),
        "KB_CACHE_STALE_WHILE_REVALIDATE": int(env.get("KB_CACHE_STALE_WHILE_REVALIDATE", "30")),
        "KB_AUTO_APPROVE_AFTER": int(env.get("KB_AUTO_APPROVE_AFTER", "5")),
        "KB_SPAM_REPORTS_TO_HIDE": int(env.get("KB_SPAM_REPORTS_TO_HIDE", "3")),
        # Number of reverse proxies in front (X-Forwarded-For/-Proto trusted from that many hops).
        "KB_PROXIES": int(env.get("KB_PROXIES", "0")),
        "KB_EMBED_FRAME_ANCESTORS": env.get("KB_EMBED_FRAME_ANCESTORS", "*"),
        # Moderation and freshness (docs/moderation.md).
        "KB_MAX_LINKS_UNTRUSTED": int(env.get("KB_MAX_LINKS_UNTRUSTED", "3")),
        "KB_REMINDER_PERIOD_DAYS": int(env.get("KB_REMINDER_PERIOD_DAYS", "30")),
        "KB_CONFIRM_TOKEN_DAYS": int(env.get("KB_CONFIRM_TOKEN_DAYS", "45")),
        "KB_ARCHIVE_GRACE_MONTHS": int(env.get("KB_ARCHIVE_GRACE_MONTHS", "6")),
        # Unanswered letters before a due sheet goes to its other contributors, then moderators.
        "KB_FRESHNESS_TO_CONTRIBUTORS": int(env.get("KB_FRESHNESS_TO_CONTRIBUTORS", "1")),
        "KB_FRESHNESS_TO_MODERATORS": int(env.get("KB_FRESHNESS_TO_MODERATORS", "3")),
        # Footer pages (kb/pages, docs/pages.md): Markdown files that override the defaults,
        # and the settings their text uses.
        "KB_PAGES_DIR": env.get("KB_PAGES_DIR", str(INSTANCE_DIR / "pages")),
        "KB_PUBLISHER": env.get("KB_PUBLISHER", ""),
        "KB_HOSTING": env.get("KB_HOSTING", ""),
        "KB_CONTACT_EMAIL": env.get("KB_CONTACT_EMAIL", ""),
        "KB_ACCESSIBILITY_STATUS": env.get("KB_ACCESSIBILITY_STATUS", "non conforme"),
        "KB_ACCESSIBILITY_AUDIT": env.get("KB_ACCESSIBILITY_AUDIT", ""),
        # Questions to a sheet's team (docs/questions.md).
        "KB_QUESTIONS_PER_DAY": int(env.get("KB_QUESTIONS_PER_DAY", "5")),
        "KB_QUESTION_REMIND_DAYS": int(env.get("KB_QUESTION_REMIND_DAYS", "10")),
        "KB_QUESTION_CLOSE_DAYS": int(env.get("KB_QUESTION_CLOSE_DAYS", "7")),
        "KB_RATE_LIMIT_LOGIN": env.get("KB_RATE_LIMIT_LOGIN", "10 per minute"),
        # Registration, "resend the link", "forgotten password": per address typed, and per
        # client address (an office behind one IP: kb/moderation/spam.py).
        "KB_RATE_LIMIT_REGISTER": env.get("KB_RATE_LIMIT_REGISTER", "5 per hour"),
        "KB_RATE_LIMIT_REGISTER_IP": env.get("KB_RATE_LIMIT_REGISTER_IP", "60 per hour"),
        "KB_RATE_LIMIT_REPORT": env.get("KB_RATE_LIMIT_REPORT", "10 per hour"),
        "KB_RATE_LIMIT_SUBMIT": env.get("KB_RATE_LIMIT_SUBMIT", "30 per hour"),
        "KB_RATE_LIMIT_DIFF": env.get("KB_RATE_LIMIT_DIFF", "60 per minute"),
        # Request size limits, 413/414 in French (kb/limits.py): body, one multipart text
        # part, multipart parts, query string.
        "MAX_CONTENT_LENGTH": parse_size(env.get("KB_MAX_BODY", "1M")),
        "MAX_FORM_MEMORY_SIZE": parse_size(env.get("KB_MAX_FORM_MEMORY", "256K")),
        "MAX_FORM_PARTS": int(env.get("KB_MAX_FORM_PARTS", "200")),
        "KB_MAX_QUERY": parse_size(env.get("KB_MAX_QUERY", "32K")),
        # Flask-Limiter: shared Redis counters when KB_REDIS_URL is set, else per process.
        "RATELIMIT_STORAGE_URI": env.get("KB_REDIS_URL") or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        # Accounts (docs/accounts.md): links sent by e-mail, standing of reporters.
        "KB_CONFIRM_LINK_HOURS": int(env.get("KB_CONFIRM_LINK_HOURS", "48")),
        "KB_RESET_LINK_MINUTES": int(env.get("KB_RESET_LINK_MINUTES", "60")),
        "KB_STANDING_DAYS": int(env.get("KB_STANDING_DAYS", "3")),
        "KB_TOKEN_DAYS": int(env.get("KB_TOKEN_DAYS", "90")),
        "KB_DATA_INCLUSION_SOURCE": env.get("KB_DATA_INCLUSION_SOURCE", "fiches-initiatives"),
        # Sign-in through an OpenID Connect provider (docs/accounts.md): ProConnect, or a
        # Département's Keycloak. Offered only when issuer, client id and secret are all set.
        "KB_OIDC_ISSUER": env.get("KB_OIDC_ISSUER", "").rstrip("/"),
        "KB_OIDC_CLIENT_ID": env.get("KB_OIDC_CLIENT_ID", ""),
        "KB_OIDC_CLIENT_SECRET": env.get("KB_OIDC_CLIENT_SECRET", ""),
        "KB_OIDC_NAME": env.get("KB_OIDC_NAME", "ProConnect"),
        "KB_OIDC_SCOPES": env.get("KB_OIDC_SCOPES", "openid email given_name usual_name uid siret"),
        # client_secret_post (ProConnect, Keycloak) or client_secret_basic.
        "KB_OIDC_AUTH_METHOD": env.get("KB_OIDC_AUTH_METHOD", "client_secret_post"),
        "KB_OIDC_TIMEOUT": float(env.get("KB_OIDC_TIMEOUT", "10")),
        # Sheets per transaction of `kb import --format jsonl|csv` (0: 500, the importer's own
        # default, kb/importers/tabular.py).
        "KB_IMPORT_BATCH": int(env.get("KB_IMPORT_BATCH", "0")),
        # Errors to Sentry, personal data scrubbed (kb/ops/reporting.py, docs/operations.md).
        "KB_SENTRY_DSN": env.get("KB_SENTRY_DSN", ""),
        "KB_SENTRY_ENVIRONMENT": env.get("KB_SENTRY_ENVIRONMENT", ""),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,
        "WTF_I18N_ENABLED": False,  # French messages from WTForms itself (kb/extensions.py)
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "JSON_SORT_KEYS": False,
    }
    overrides = dict(overrides or {})
    if "SECRET_KEY" not in overrides:
        config["SECRET_KEY"] = _secret_key()
    config.update(overrides)
    if str(config["KB_BASE_URL"]).startswith("https://"):
        # Served over TLS: cookies never travel in clear (HSTS: kb.auth.views.init_app).
        for key in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE"):
            config.setdefault(key, True)
    if "KB_SEARCH_BACKEND" not in env and "KB_SEARCH_BACKEND" not in overrides:
        # Follow the database actually used (tests and callers may override the URL).
        uri = str(config["SQLALCHEMY_DATABASE_URI"])
        config["KB_SEARCH_BACKEND"] = "postgres" if uri.startswith("postgresql") else "sqlite"
    return config
