"""Shared by the search tests: run them on every backend available."""

from __future__ import annotations

import os

PG_URL = os.environ.get("KB_TEST_DATABASE_URL", "")
# Whoosh always; PostgreSQL too when the suite runs against a PostgreSQL database.
BACKENDS = ["whoosh", "postgres"] if PG_URL else ["whoosh"]
