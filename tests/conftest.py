"""Fixtures: app, client, db, users, login, sheet factory.

SQLite (default): a fresh database file per test.
PostgreSQL (KB_TEST_DATABASE_URL set): one schema per xdist worker, created once, truncated
after each test and dropped at the end, so runs reuse one database and leave nothing behind.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask, g, request_started
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

import kb.models  # noqa: F401
from kb import create_app
from kb.auth.models import ApiToken, User
from kb.auth.operations import create_user
from kb.extensions import db
from kb.sheets import operations
from kb.sheets.models import Revision
from kb.transaction import commit
from tests.smtp_server import smtp  # noqa: F401  (fixture: a real local SMTP server)

PG_URL = os.environ.get("KB_TEST_DATABASE_URL", "")
PASSWORD = "mot-de-passe-solide"


def _pg_schema(worker_id: str) -> str:
    # Unique per run (xdist sets the run id) so that two runs on one server never collide.
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))[:8]
    return f"kbtest_{run}_{worker_id}".replace("-", "_").lower()


def _with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def pg_database(worker_id: str) -> Iterator[str | None]:
    if not PG_URL:
        yield None
        return
    schema = _pg_schema(worker_id)
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = _with_search_path(PG_URL, schema)
    schema_engine = create_engine(url)
    db.metadata.create_all(schema_engine)
    schema_engine.dispose()
    yield url
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    # scrypt (the default) takes ~0.2 s per account; tests create many accounts. A cheap
    # PBKDF2 keeps the real hash/verify code path.
    from werkzeug.security import generate_password_hash

    import kb.auth.models

    monkeypatch.setattr(kb.auth.models, "generate_password_hash",
                        lambda password: generate_password_hash(password, "pbkdf2:sha256:1000"))


@pytest.fixture
def app_config(tmp_path: Any, pg_database: str | None) -> dict[str, Any]:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "WTF_CSRF_ENABLED": False,
        "SQLALCHEMY_DATABASE_URI": pg_database or f"sqlite:///{tmp_path / 'kb.sqlite3'}",
        "KB_INDEX_DIR": str(tmp_path / "index"),
        "KB_BASE_URL": "http://kb.test",
        "RATELIMIT_ENABLED": False,
    }


@pytest.fixture
def app(app_config: dict[str, Any], pg_database: str | None) -> Iterator[Flask]:
    app = create_app(app_config)
    with app.app_context():
        if pg_database is None:
            db.create_all()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(autouse=True)
def empty_pg_tables_after_each_test(pg_database: str | None) -> Iterator[None]:
    """PostgreSQL runs share one schema per worker: empty it after every test, whichever app
    (the `app` fixture or one a test builds itself) wrote to it."""
    yield
    if pg_database is None:
        return
    engine = create_engine(pg_database)
    tables = ", ".join(t.name for t in db.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    # The `app` fixture keeps an app context pushed, so every request of a test would share
    # `flask.g` (where Flask-Login caches the user and the API its token user): start each
    # request with an empty `g`, as in production.
    def fresh_g(sender: Flask, **extra: Any) -> None:
        for key in list(g):
            g.pop(key)

    request_started.connect(fresh_g, app, weak=False)
    return app.test_client()


@pytest.fixture
def make_user(app: Flask) -> Callable[..., User]:
    counter = iter(range(1, 10_000))

    def make(role: str = "contributor", trusted: bool = False, email: str | None = None,
             name: str = "") -> User:
        n = next(counter)
        user = create_user(email or f"{role}{n}@example.org", PASSWORD, role,
                           name or f"{role.capitalize()} {n}")
        user.trusted = trusted
        commit()
        return user

    return make


@pytest.fixture
def contributor(make_user: Callable[..., User]) -> User:
    return make_user("contributor", email="contrib@example.org", name="Claire Contrib")


@pytest.fixture
def moderator(make_user: Callable[..., User]) -> User:
    return make_user("moderator", email="modo@example.org", name="Marc Modo")


@pytest.fixture
def login(client: FlaskClient) -> Callable[[User | None], None]:
    def do(user: User | None) -> None:
        with client.session_transaction() as session:
            session.clear()
            if user is not None:
                session["_user_id"] = user.get_id()  # "<id>:<session version>"
                session["_fresh"] = True

    return do


def token_for(user: User) -> str:
    """An API token whatever the account's state (unconfirmed: one made before tokens needed a
    confirmed address); not committed."""
    token = secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, token_hash=ApiToken.hash(token)))
    return token


@pytest.fixture
def bearer(app: Flask) -> Callable[[User], dict[str, str]]:
    def headers(user: User) -> dict[str, str]:
        # Whatever the account's state: tests of unconfirmed accounts use one made before.
        token = token_for(user)
        commit()
        return {"Authorization": f"Bearer {token}"}

    return headers


def sheet_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "Accueil inconditionnel en mairie",
        "summary": "Un accueil repensé avec les agents et les usagers.",
        "context": "La mairie reçoit 500 personnes par jour.",
        "stakes": "Mieux orienter les usagers.",
        "method": "- Immersion\n- Ateliers de co-conception",
        "results": "Nouveaux guichets, nouvelle signalétique.",
        "actor_name": "Mairie de Brest",
        "actor_type": "commune",
        "scale": "commune",
        "city": "Brest",
        "department": "29",
        "tags": ["accueil", "design de service"],
        "partners": ["Agence DETEA"],
        "website": "https://example.org/accueil",
    }
    data.update(overrides)
    return data


@pytest.fixture
def make_sheet(app: Flask, make_user: Callable[..., User]) -> Callable[..., Revision]:
    """Create a sheet; by default written by a moderator, hence approved at once."""
    default_author: list[User] = []

    def make(author: User | None = None, **overrides: Any) -> Revision:
        if author is None:
            if not default_author:
                default_author.append(make_user("moderator"))
            author = default_author[0]
        revision = operations.create_sheet(sheet_data(**overrides), author)
        commit()
        return revision

    return make
