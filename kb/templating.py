"""Jinja filters and globals shared by every template."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app

from kb.auth.models import FORMER_CONTRIBUTOR, role_label
from kb.auth.permissions import Capability, can, role_capabilities
from kb.params import query_url
from kb.redirects import current_path
from kb.sheets.fields import FIELDS, FIELDS_BY_NAME, SCALES, Kind, sections
from kb.territories.register import department_label
from kb.text import plain_text, render_markdown, slugify
from kb.urls import base_url
from kb.wording import french_date, french_datetime, french_number, plural


def public_name(user: Any) -> str:
    """The name shown to everyone: the one the person chose, never one derived from their
    e-mail address (a display name that looks like an address counts as none)."""
    if user is None:
        return "système"
    if user.deleted_at is not None:
        return FORMER_CONTRIBUTOR
    name = (user.display_name or "").strip()
    if name and "@" not in name:
        return name
    return "l'équipe de modération" if can(user, Capability.REVIEW) else "contributeur"


def choice_label(value: str, field_name: str) -> str:
    return FIELDS_BY_NAME[field_name].choice_label(value) if value else ""


def search_endpoint() -> str:
    """The search page once the search domain is installed, else the plain listing."""
    return "search.results" if "search.results" in current_app.view_functions else "sheets.index"


def register_templating(app: Flask) -> None:
    app.jinja_env.filters.update(
        markdown=render_markdown, date_fr=french_date, datetime_fr=french_datetime,
        choice_label=choice_label, department_label=department_label, public_name=public_name,
        slugify=lambda v: slugify(v, 80), role_label=role_label, plain_text=plain_text,
    )
    app.jinja_env.filters["plural"] = plural  # "0 fiche", "2 fiches": every count in words
    # Every number shown: "12 345", "0,5 h" ({{ hours|number(1) }}), never "0.5".
    app.jinja_env.filters["number"] = french_number
    app.jinja_env.add_extension("jinja2.ext.do")
    # Measured indicators (kb/sheets/indicators.py): their French text and small SVG charts.
    from kb.sheets import indicators

    app.jinja_env.filters.update(
        indicator_value=indicators.with_unit, indicators_text=indicators.as_text,
        indicator_bar=indicators.bar_svg, indicator_sentence=indicators.value_sentence,
        indicator_period=indicators.period_text, indicator_source=indicators.source_text,
        indicator_kind=indicators.kind_label)
    app.jinja_env.globals.update(indicator_suggestions=indicators.form_suggestions,
                                 dot_plot=indicators.dot_plot_svg)
    app.jinja_env.globals.update(FIELDS=FIELDS, FIELDS_BY_NAME=FIELDS_BY_NAME, Kind=Kind,
                                 SCALES=SCALES, search_endpoint=search_endpoint,
                                 SHEET_SECTIONS=sections(), query_url=query_url,
                                 current_path=current_path,  # every `next=` value
                                 # Who may do what: the one rule (kb/auth/permissions.py).
                                 can=can, role_capabilities=role_capabilities)

    @app.context_processor
    def inject() -> dict[str, Any]:
        return {"base_url": base_url()}
