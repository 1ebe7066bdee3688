"""Jinja filters and globals shared by every template."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask, current_app

from kb.sheets.fields import FIELDS, FIELDS_BY_NAME, SCALES, Kind
from kb.territories.register import department_label
from kb.text import render_markdown, slugify

MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
          "septembre", "octobre", "novembre", "décembre")


def french_date(value: datetime | None) -> str:
    if value is None:
        return ""
    return f"{value.day} {MONTHS[value.month - 1]} {value.year}"


def french_datetime(value: datetime | None) -> str:
    if value is None:
        return ""
    return f"{french_date(value)} à {value:%H:%M} UTC"


def choice_label(value: str, field_name: str) -> str:
    return FIELDS_BY_NAME[field_name].choice_label(value) if value else ""


def search_endpoint() -> str:
    """The search page once the search domain is installed, else the plain listing."""
    return "search.results" if "search.results" in current_app.view_functions else "sheets.index"


def register_templating(app: Flask) -> None:
    app.jinja_env.filters.update(
        markdown=render_markdown, date_fr=french_date, datetime_fr=french_datetime,
        choice_label=choice_label, department_label=department_label,
        slugify=lambda v: slugify(v, 80),
    )
    app.jinja_env.add_extension("jinja2.ext.do")
    app.jinja_env.globals.update(FIELDS=FIELDS, FIELDS_BY_NAME=FIELDS_BY_NAME, Kind=Kind,
                                 SCALES=SCALES, search_endpoint=search_endpoint)

    @app.context_processor
    def inject() -> dict[str, Any]:
        return {"base_url": app.config["KB_BASE_URL"]}
