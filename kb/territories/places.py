"""A sheet's place: its commune (INSEE code), and the EPCI, département and région derived
from it; for scales above the commune, the territory the sheet names.

The fields are declared in kb/sheets/fields.py (`city` the commune's name, `commune_code`,
`epci`, `department`, `region` codes). `complete()` is called on every write (forms, API,
imports): it resolves names to codes, derives what the commune implies and checks that the
whole is consistent. `derive()` is its lenient twin for reading (projection, API objects,
search documents): it never raises, so that old revisions still get their codes.

Ambiguous names are never guessed: "Saint-Denis" (11, 30, 93, 974) resolves only with a hint
(a postcode, a département or région given with it); otherwise the writer is asked
(`AmbiguousPlace`, a ValidationError carrying the candidates) or, on import, warned.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from kb.errors import ValidationError
from kb.territories.register import (
    Commune,
    Department,
    Epci,
    Region,
    name_key,
    register,
)

PLACE_FIELDS = ("city", "commune_code", "epci", "department", "region")
# Names given beside the codes in API objects and exports (read-only on import).
PLACE_NAMES = ("epci_name", "department_name", "region_name")
SCALE_TERRITORY = {"intercommunalite": "epci", "departement": "department", "region": "region"}
SCALE_NEEDS = {
    "epci": "Précisez l'intercommunalité (ou une commune qui en fait partie) : l'échelle "
            "est intercommunale",
    "department": "Précisez le département : l'échelle est départementale",
    "region": "Précisez la région : l'échelle est régionale",
}


@dataclass(frozen=True)
class Place:
    commune: Commune | None = None
    epci: Epci | None = None
    department: Department | None = None
    region: Region | None = None
    city: str = ""  # the name as stored: official when the commune is known

    def codes(self) -> dict[str, str]:
        return {"commune_code": self.commune.code if self.commune else "",
                "epci": self.epci.code if self.epci else "",
                "department": self.department.code if self.department else "",
                "region": self.region.code if self.region else ""}

    def names(self) -> dict[str, str]:
        return {"epci_name": self.epci.name if self.epci else "",
                "department_name": self.department.name if self.department else "",
                "region_name": self.region.name if self.region else ""}

    def territories(self) -> list[Any]:
        """From the smallest to the largest: the pages this sheet appears on."""
        return [t for t in (self.commune, self.epci, self.department, self.region) if t]


class AmbiguousPlace(ValidationError):
    """A commune name shared by several communes: the writer must choose."""

    def __init__(self, name: str, candidates: list[Commune]):
        labels = ", ".join(c.label for c in candidates)
        super().__init__({"city": f"« {name} » désigne plusieurs communes ({labels}) : "
                                  "choisissez la bonne"})
        self.name = name
        self.candidates = candidates
        # The API's 422 lists them: send one back as `commune_code`.
        self.extra["choices"] = {"commune_code": [
            {"code": c.code, "name": c.name, "label": c.label, "department": c.department,
             "postcodes": list(c.postcodes)} for c in candidates]}


_POSTCODE = re.compile(r"\b(\d{5})\b")
_DEPARTMENT_IN_PARENS = re.compile(r"\(\s*(\d[\dAaBb]\d?)\s*\)\s*$")


@dataclass
class PlaceText:
    name: str
    postcode: str = ""
    department: str = ""


def parse_place_text(text: str) -> PlaceText:
    """'29200 Brest' -> Brest + postcode; 'Brest (29)' -> Brest + département 29;
    '106 rue Pierre Corneille, Lyon' -> Lyon."""
    text = " ".join(text.split())
    parsed = PlaceText(text)
    postcode = _POSTCODE.search(text)
    if postcode:
        parsed.postcode = postcode.group(1)
        text = (text[:postcode.start()] + " " + text[postcode.end():]).strip(" ,-")
    parens = _DEPARTMENT_IN_PARENS.search(text)
    if parens:
        parsed.department = parens.group(1).upper()
        text = text[:parens.start()].strip()
    if "," in text and re.match(r"^\d", text):  # a street address, then the commune
        text = text.rsplit(",", 1)[1].strip()
    parsed.name = " ".join(text.split()).strip(" ,")
    return parsed


def find_communes(name: str, *, department: str = "", region: str = "", epci: str = "",
                  postcode: str = "") -> list[Commune]:
    """Communes this name may mean, narrowed by the hints given (a hint that would leave
    nothing is ignored: it describes the sheet, not necessarily the commune)."""
    reg = register()
    candidates = reg.communes_named(name)
    if postcode:
        with_postcode = [c for c in candidates if postcode in c.postcodes]
        if with_postcode:
            candidates = with_postcode
        elif not candidates:
            candidates = [c for c in reg.communes_with_postcode(postcode)
                          if name_key(name) in name_key(c.name)]
    for attribute, hint in (("department", department), ("region", region), ("epci", epci)):
        if hint and len(candidates) > 1:
            narrowed = [c for c in candidates if getattr(c, attribute) == hint]
            if narrowed:
                candidates = narrowed
    return candidates


def commune_key(value: str) -> str:
    """A filter value -> an INSEE code: the code, or a name only one commune has
    ('Brest', 'Saint-Denis (93)', '93200 Saint-Denis'); ValueError (French) otherwise."""
    reg = register()
    value = " ".join(value.split())
    found = reg.commune(value) if re.fullmatch(r"\d[\dABab]\d{3}", value) else None
    if found is not None:
        return found.code
    parsed = parse_place_text(value)
    candidates = find_communes(parsed.name, department=parsed.department,
                               postcode=parsed.postcode)
    if len(candidates) == 1:
        return candidates[0].code
    if candidates:
        raise ValueError(f"« {value} » désigne plusieurs communes ; précisez son code INSEE : "
                         + ", ".join(f"{c.code} pour {c.label}" for c in candidates))
    raise ValueError(f"commune inconnue « {value} » ; indiquez son code INSEE (29019) ou son nom")


def names_commune(text: str, commune: Commune) -> bool:
    key = name_key(parse_place_text(text).name)
    return key == name_key(commune.name) or commune in register().communes_named(key)


@dataclass
class Completion:
    data: dict[str, Any]
    place: Place
    warnings: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    ambiguous: AmbiguousPlace | None = None
    unknown_city: str = ""  # a name outside the register, kept as written


def _as_code(name: str, value: str) -> str:
    reg = register()
    found = {"epci": reg.epci, "department": reg.department, "region": reg.region}[name](value) \
        if value else None
    return found.code if found is not None else name_key(value)


def resolve(data: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> Completion:
    """Everything known about a place: codes, warnings, errors, the ambiguity if any."""
    reg = register()
    out = dict(data)
    done = Completion(out, Place())
    text = {name: " ".join(str(out.get(name) or "").split()) for name in PLACE_FIELDS}
    before = {name: " ".join(str((base or {}).get(name) or "").split()) for name in PLACE_FIELDS}
    # The commune the sheet had: an ambiguous name that may mean it keeps it.
    kept = reg.commune(before["commune_code"]) if before["commune_code"] else None
    if base is not None and \
            (text["city"], text["commune_code"]) != (before["city"], before["commune_code"]):
        # Another commune: what the old one implied goes, what the writer changed stays
        # (compared as codes: a form shows the EPCI by its name).
        for name in ("epci", "department", "region"):
            if _as_code(name, text[name]) == _as_code(name, before[name]):
                text[name] = ""

    department = reg.department(text["department"]) if text["department"] else None
    if text["department"] and department is None:
        done.errors["department"] = (f"département inconnu « {text['department']} » : indiquez "
                                     "son code (29) ou son nom (Finistère)")
    region = reg.region(text["region"]) if text["region"] else None
    if text["region"] and region is None:
        done.errors["region"] = (f"région inconnue « {text['region']} » : indiquez son code "
                                 "(53) ou son nom (Bretagne)")
    epci = reg.epci(text["epci"]) if text["epci"] else None
    if text["epci"] and epci is None:
        done.errors["epci"] = (f"intercommunalité inconnue « {text['epci']} » : indiquez son "
                               "numéro SIREN ou son nom exact (par exemple Brest Métropole)")

    city, code = text["city"], text["commune_code"]
    if base is not None and code and code == before["commune_code"] \
            and city != before["city"]:
        code = ""  # the name was changed, not the code: the name decides
    commune: Commune | None = None
    if code:
        commune = reg.commune(code)
        if commune is None:
            done.errors["commune_code"] = f"code INSEE inconnu « {code} »"
        elif city and not names_commune(city, commune):
            if base is not None and city == before["city"]:
                city = commune.name  # the code was changed, not the name: the code decides
            else:
                done.errors["city"] = (f"« {city} » n'est pas la commune de code {commune.code} "
                                       f"({commune.label})")
    elif city:
        parsed = parse_place_text(city)
        # A département or région written where the commune goes ("Vendée", "Bretagne" - also
        # two small communes): the territory, unless the scale is a commune's or smaller.
        as_department = reg.department(parsed.name) if department is None else None
        as_region = reg.region(parsed.name) if region is None and not as_department else None
        territory_scale = str(out.get("scale") or "") not in ("quartier", "commune")
        hint_department = department.code if department else parsed.department
        candidates = find_communes(parsed.name, department=hint_department,
                                   region=region.code if region else "",
                                   epci=epci.code if epci else "", postcode=parsed.postcode)
        territory = as_department or as_region
        inside = territory is not None and bool(candidates) and all(
            c.department == territory.code if as_department else c.region == territory.code
            for c in candidates)  # Paris: the commune implies the département
        if territory is not None and not parsed.postcode and not inside \
                and (territory_scale or not candidates):
            if as_department:
                department = as_department
                done.warnings.append(f"« {city} » est un département : {as_department.label}")
            elif as_region:
                region = as_region
                done.warnings.append(f"« {city} » est une région : {as_region.name}")
            city = ""
        elif len(candidates) == 1:
            commune = candidates[0]
        elif kept is not None and kept in candidates:
            commune = kept  # the same name again ("Saint Denis" for Saint-Denis (93)): kept
        elif candidates:
            done.ambiguous = AmbiguousPlace(parsed.name, candidates)
            done.warnings.append(
                f"« {parsed.name} » désigne plusieurs communes "
                f"({', '.join(c.label for c in candidates)}) : laissée sans code INSEE, "
                "précisez le département ou le code postal")
        else:
            done.unknown_city = parsed.name
            done.warnings.append(f"« {parsed.name} » n'est pas une commune du registre officiel : "
                                 "gardée telle quelle, sans code INSEE")

    if commune is not None:
        city = commune.name
        checks = ((department, commune.department, "department", "le département"),
                  (region, commune.region, "region", "la région"),
                  (epci, commune.epci, "epci", "l'intercommunalité"))
        for given, implied, name, label in checks:
            if given is not None and given.code != implied:
                done.errors.setdefault(name, f"{commune.label} n'est pas dans {label} "
                                             f"« {given.label} »")
        department = reg.departments.get(commune.department)
        region = reg.regions.get(commune.region)
        epci = reg.epcis.get(commune.epci) if commune.epci else None
    else:
        if epci is not None and department is None:
            department = reg.departments.get(reg.epci_department(epci))
        if department is not None:
            if region is not None and region.code != department.region:
                done.errors.setdefault("region", f"{department.label} n'est pas dans la région "
                                                 f"« {region.name} »")
            region = reg.regions.get(department.region)

    scale = str(out.get("scale") or "")
    needed = SCALE_TERRITORY.get(scale)
    present = {"epci": epci, "department": department, "region": region}
    if needed and present[needed] is None and done.ambiguous is None:
        done.errors.setdefault(needed, SCALE_NEEDS[needed])
    done.place = Place(commune, epci, department, region, city)
    out.update(done.place.codes(), city=city)
    return done


def complete(data: Mapping[str, Any], base: Mapping[str, Any] | None = None, *,
             strict: bool = True) -> tuple[dict[str, Any], list[str]]:
    """`data` with its place resolved to codes, and the warnings.

    `base`: the data the edit started from (an edited name re-resolves the commune even if the
    old code is still there). Strict (forms, API): an ambiguous name raises AmbiguousPlace,
    an inconsistent or unknown code raises ValidationError. Not strict (imports): what cannot
    be resolved is kept as written, with a warning.
    """
    if strict and base is not None and same_place(data, base):
        # An edit that leaves the place as it was (an imported sheet's ambiguous "Saint-Denis",
        # a name outside the register) is never refused for it: the place waits for a
        # moderator (kb.sheets.places.ambiguous_places), the edit goes through.
        strict = False
    done = resolve(data, base)
    if strict:
        if done.ambiguous is not None:
            raise done.ambiguous
        if done.errors:
            raise ValidationError(done.errors)
        return done.data, done.warnings
    warnings = list(done.warnings)
    for name, message in done.errors.items():
        warnings.append(message)
        if name in ("department", "region", "epci", "commune_code"):
            done.data[name] = str(data.get(name) or "") if name != "commune_code" else ""
    return done.data, warnings


def _place_as_stored(data: Mapping[str, Any]) -> tuple[str, ...]:
    # What a lenient write would store: a form shows the EPCI by its name, the stored data
    # by its code; both compare equal here. The scale decides which territory is required.
    done = resolve(data, None)
    values = {**done.data, **{name: str(data.get(name) or "") for name in done.errors}}
    return tuple(" ".join(str(values.get(name) or "").split())
                 for name in (*PLACE_FIELDS, "scale"))


def same_place(data: Mapping[str, Any], base: Mapping[str, Any]) -> bool:
    """Whether an edit leaves the place (and the scale) of `base` as it was."""
    return _place_as_stored(data) == _place_as_stored(base)


def derive(data: Mapping[str, Any]) -> Place:
    """The place of a revision's data, whatever its age: never raises."""
    return _derived(*(" ".join(str(data.get(name) or "").split())
                      for name in (*PLACE_FIELDS, "scale")))


@lru_cache(maxsize=4096)
def _derived(*values: str) -> Place:
    # Many sheets share a place, and publishing then indexing derives each sheet's twice: the
    # register is fixed for the process, and a Place is frozen.
    return resolve(dict(zip((*PLACE_FIELDS, "scale"), values, strict=True)), None).place
