"""Where the database schema stands: the Alembic configuration of the app's database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from alembic.config import Config


def alembic_config() -> Config:
    from alembic.config import Config  # imported when used: every app start reads this module

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url",
                           current_app.config["SQLALCHEMY_DATABASE_URI"].replace("%", "%%"))
    return config
