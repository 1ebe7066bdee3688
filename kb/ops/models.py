"""The last run of each scheduled command (`kb doctor` says when a cron line stopped)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kb.extensions import db


class CommandRun(db.Model):  # type: ignore[name-defined]
    __tablename__ = "command_runs"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)  # "mail send"
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    ok: Mapped[bool] = mapped_column(Boolean, default=True)
    error: Mapped[str] = mapped_column(Text, default="")
