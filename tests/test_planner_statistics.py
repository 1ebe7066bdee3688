"""The database's planner statistics are refreshed after an import, so that listings read
their indexes (without them, at 10,000 sheets, SQLite sorted every active sheet for each page of
the API list: bench/load.py)."""

from sqlalchemy import text

from kb.extensions import db
from tests.test_cli import SEED


def _has_statistics() -> bool:
    if db.engine.dialect.name == "sqlite":
        return bool(db.session.scalar(text(
            "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"))) and bool(
            db.session.scalar(text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'sheets'")))
    return db.session.scalar(text(
        "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables "
        "WHERE relname = 'sheets' AND schemaname = current_schema()")) is True


def test_an_import_leaves_statistics_for_the_planner(app):
    with app.app_context():
        assert not _has_statistics()
    result = app.test_cli_runner().invoke(args=["import", str(SEED), "--format", "bazar-text"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert _has_statistics()

