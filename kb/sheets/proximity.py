"""Proximity to a reader's commune: the order of a thématique's sheets (issue 23).

A sheet whose zone d'éligibilité covers the commune (the commune itself or its EPCI) comes
first, then one covering its département, then its région (any of its départements), then
the whole country; a sheet without a zone is placed by where it is run (its commune,
département, région; national scale). Sheets elsewhere come last. The reader's commune is kept
in a cookie (`COOKIE`), set from `?pres=<commune>`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, exists, or_, select
from sqlalchemy.sql import ColumnElement

from kb.sheets.fields import NATIONAL
from kb.sheets.models import Sheet, sheet_keys
from kb.territories.register import Commune, register

COOKIE = "kb_commune"
COOKIE_DAYS = 365
RANKS = ("dans votre commune", "dans votre département", "dans votre région", "nationale",
         "ailleurs")


def reader_commune(code: str | None) -> Commune | None:
    return register().commune(code) if code else None


def _zone_has(keys: list[str]) -> ColumnElement[bool]:
    return exists(select(sheet_keys.c.sheet_id).where(
        sheet_keys.c.sheet_id == Sheet.id, sheet_keys.c.field == "zone_eligibilite",
        sheet_keys.c.key.in_(keys)))


def proximity_rank(commune: Commune) -> ColumnElement[Any]:
    """0 (the commune) to 4 (elsewhere), for ORDER BY."""
    departments = [d.code for d in register().departments_of_region(commune.region)]
    no_zone = ~exists(select(sheet_keys.c.sheet_id).where(
        sheet_keys.c.sheet_id == Sheet.id, sheet_keys.c.field == "zone_eligibilite"))
    local = [k for k in (commune.code, commune.epci) if k]
    return case(
        (or_(_zone_has(local), and_(no_zone, Sheet.commune_code == commune.code)), 0),
        (or_(_zone_has([commune.department]),
             and_(no_zone, Sheet.department == commune.department)), 1),
        (or_(_zone_has(departments), and_(no_zone, Sheet.region == commune.region)), 2),
        (or_(_zone_has([NATIONAL]), and_(no_zone, Sheet.scale == "national")), 3),
        else_=4)
