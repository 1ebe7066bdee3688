"""Full-text search: a backend interface (Whoosh embedded, PostgreSQL scale-out) behind one service.

The index is derived data: the database is the truth, the index is updated after commit and
reconciled by `kb index update`. See docs/search.md.
"""
