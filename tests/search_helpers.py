"""Shared by the search tests: run them on every backend available."""

from __future__ import annotations

import os

PG_URL = os.environ.get("KB_TEST_DATABASE_URL", "")
# Whoosh always; SQLite FTS5 in the SQLite pass (it lives in the SQLite database), PostgreSQL in
# the PostgreSQL pass (KB_TEST_DATABASE_URL set).
BACKENDS = ["postgres", "whoosh"] if PG_URL else ["sqlite", "whoosh"]
