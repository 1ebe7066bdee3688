"""The place in the sheet form: without JavaScript, a plain commune field resolved on submit,
with a choice when the name is ambiguous or unknown; with JavaScript, an autocomplete
(static/js/place.js) fills the same fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kb.errors import ValidationError
from kb.territories.places import (
    AmbiguousPlace,
    complete,
    names_commune,
    resolve,
    same_place,
)
from kb.territories.register import Commune, name_key, register

KEEP_AS_WRITTEN = "-"  # the choice "keep this name, it is not a French commune"


@dataclass
class PlaceChoice:
    """Communes to choose from, shown as radio buttons named `commune_code`."""

    name: str
    candidates: list[Commune]
    unknown: bool  # no commune has this name: suggestions, and "keep it as written"

    @property
    def legend(self) -> str:
        if self.unknown:
            return f"« {self.name} » n'est pas une commune du registre officiel : laquelle est-ce ?"
        return f"Plusieurs communes s'appellent « {self.name} » : laquelle est-ce ?"


def department_choices() -> list[tuple[str, str]]:
    return [("", "— Déduit de la commune —")] + [
        (d.code, d.label) for d in sorted(register().departments.values(), key=lambda d: d.code)]


def region_choices() -> list[tuple[str, str]]:
    return [("", "— Déduite de la commune —")] + [
        (r.code, r.name) for r in sorted(register().regions.values(), key=lambda r: name_key(r.name))]


def for_display(data: dict[str, Any]) -> dict[str, Any]:
    """Form values of a stored place: codes resolved, the EPCI by its name."""
    shown, _ = complete(data, strict=False)
    epci = register().epcis.get(str(shown.get("epci") or ""))
    if epci is not None:
        shown["epci"] = epci.name
    return shown


def read_place(data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The place as the writer sees it, and whether they chose to keep an unknown name.

    The text of the commune field wins over a code left from an earlier choice (without
    JavaScript, a new name is sent with the old hidden code).
    """
    data = dict(data)
    code = str(data.get("commune_code") or "")
    if code == KEEP_AS_WRITTEN:
        data["commune_code"] = ""
        return data, True
    commune = register().commune(code) if code else None
    city = str(data.get("city") or "")
    if commune is not None and city and not names_commune(city, commune):
        data["commune_code"] = ""
    return data, False


def _suggestions(name: str) -> list[Commune]:
    """Communes whose name starts like this one, the prefix shortened until some match."""
    reg = register()
    key = name_key(name)
    for length in range(len(key), 2, -1):
        found = reg.search_communes(key[:length], 8)
        if found:
            return found
    return []


def unknown_place(data: dict[str, Any], keep_as_written: bool,
                  base: dict[str, Any] | None = None) -> PlaceChoice | None:
    """A commune name outside the register: ask before keeping it as written (unless the
    edit leaves the place of `base`, the data it started from, as it was)."""
    if keep_as_written or (base is not None and same_place(data, base)):
        return None
    done = resolve(data)
    if not done.unknown_city:
        return None
    return PlaceChoice(done.unknown_city, _suggestions(done.unknown_city), unknown=True)


def place_choice(exc: ValidationError) -> PlaceChoice | None:
    if isinstance(exc, AmbiguousPlace):
        return PlaceChoice(exc.name, exc.candidates, unknown=False)
    return None
