"""Operations: the health checks (`/sante`, `kb doctor`, the moderators' dashboard), the
database snapshot (`kb backup|restore`), runs of the scheduled commands, error reporting
(docs/operations.md)."""
