"""The database's planner statistics are refreshed after an import, so that listings read
their indexes (without them, at 10,000 sheets, SQLite sorted every active sheet for each page of
the API list: bench/load.py)."""

from sqlalchemy import func, select, text

from kb.extensions import db
from kb.sheets.models import Sheet
from tests.test_cli import SEED


def _planner_sheet_count() -> int | None:
    """How many sheets the planner believes there are (None: it knows nothing)."""
    if db.engine.dialect.name == "sqlite":
        if not db.session.scalar(text("SELECT count(*) FROM sqlite_master "
                                      "WHERE name = 'sqlite_stat1'")):
            return None
        stat = db.session.scalar(text("SELECT stat FROM sqlite_stat1 "
                                      "WHERE tbl = 'sheets' AND idx = 'ix_sheets_state'"))
        return int(stat.split()[0]) if stat else None
    return int(db.session.scalar(text("SELECT reltuples FROM pg_class "
                                      "WHERE oid = 'sheets'::regclass")))


def test_an_import_leaves_statistics_for_the_planner(app):
    with app.app_context():
        db.session.execute(text("ANALYZE sheets"))  # what the planner knows: no sheet
        db.session.commit()
        assert _planner_sheet_count() in (None, 0)
    result = app.test_cli_runner().invoke(args=["import", str(SEED), "--format", "bazar-text"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert _planner_sheet_count() == db.session.scalar(select(func.count(Sheet.id))) == 10
