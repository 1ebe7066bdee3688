"""Alembic environment: the models' metadata, the URL from the kb app configuration."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, engine_from_config, pool

import kb.models  # noqa: F401  (registers every table on the metadata)
from kb.extensions import db
from kb.search.models import owned_by_engine

config = context.config
target_metadata = db.metadata


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    return not owned_by_engine(name, type_)


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True, include_name=include_name)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        connectable = engine_from_config(config.get_section(config.config_ini_section) or {},
                                         prefix="sqlalchemy.", poolclass=pool.NullPool)
        with connectable.connect() as connection:
            _run(connection)
    else:
        _run(connectable)


def _run(connection: Connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things; batch mode copies the table.
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True, compare_type=True, include_name=include_name)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
