"""The query planner's statistics: refreshed after the writes that change the data's shape.

Without statistics SQLite guesses that `state = 'active'` is selective and, for the newest
sheets of /api/v1/sheets, reads every active sheet then sorts them, rather than walking the
`updated_at` index (four times slower at 10,000 sheets); an API edit was five times slower.
PostgreSQL's autovacuum analyses on its own, but not right after a bulk import.
"""

from __future__ import annotations

from kb.extensions import db

# Rows sampled per index (SQLite): enough for the planner's choices, and ANALYZE stays a
# fraction of a second on a base of 100,000 sheets.
SQLITE_ANALYSIS_LIMIT = 1000


def refresh_statistics() -> None:
    """ANALYZE the application's tables (`kb init-db`, after an import, `kb index rebuild` and
    `kb index optimize`)."""
    with db.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(f"PRAGMA analysis_limit={SQLITE_ANALYSIS_LIMIT}")
            conn.exec_driver_sql("ANALYZE")
        else:  # the application's tables (in its schema), not the whole cluster's database
            names = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
            conn.exec_driver_sql(f"ANALYZE {names}")
