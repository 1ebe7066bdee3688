"""The official register of French territories: communes, EPCI, départements, régions.

Read from `data/register.json.gz` (built by `python -m kb.territories.build_register` from the
npm package `@etalab/decoupage-administratif`: INSEE Code officiel géographique, DGCL list of
EPCI, La Poste postcodes; Licence Ouverte), once per process on first use. No network.
"""

from __future__ import annotations

import bisect
import gzip
import heapq
import json
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

from kb.text import fold, slugify

REGISTER_FILE = Path(__file__).parent / "data" / "register.json.gz"


def _slug(code: str, name: str) -> str:
    """A territory's page address, /territoires/<code>-<name>."""
    return f"{code}-{slugify(name, 80)}"


class _Named:
    code: str
    name: str

    @property
    def slug(self) -> str:
        return _slug(self.code, self.name)


@dataclass(frozen=True)
class Region(_Named):
    code: str
    name: str
    kind: str = "region"

    @property
    def label(self) -> str:
        return self.name


@dataclass(frozen=True)
class Department(_Named):
    code: str
    name: str
    region: str
    kind: str = "departement"

    @property
    def label(self) -> str:
        return f"{self.name} ({self.code})"


@dataclass(frozen=True)
class Epci(_Named):
    code: str  # SIREN
    name: str
    type: str  # CC, CA, CU, METRO, MET69
    kind: str = "epci"

    @property
    def label(self) -> str:
        return self.name


class Commune(NamedTuple):  # a tuple: 35,000 of them are built at start-up
    code: str  # INSEE
    name: str
    department: str
    region: str
    epci: str  # "" for the few communes outside any EPCI (islands)
    population: int
    postcodes: tuple[str, ...]
    kind: str = "commune"

    @property
    def label(self) -> str:
        return f"{self.name} ({self.department})"

    @property
    def slug(self) -> str:
        return _slug(self.code, self.name)


Territory = Region | Department | Epci | Commune
KIND_LABELS = {"region": "Région", "departement": "Département", "epci": "Intercommunalité",
               "commune": "Commune"}

_ARTICLES = {"st": "saint", "ste": "sainte", "sts": "saints", "stes": "saintes"}
_SEPARATORS = re.compile(r"[\s\-'’_.,/]+")


def name_key(name: str) -> str:
    """How names are compared: case, accents, hyphens, apostrophes and 'St'/'Saint' aside.
    'Saint Méen le Grand', 'St-Méen-le-Grand' and 'Saint-Méen-le-Grand' are one key."""
    words = [w for w in _SEPARATORS.split(fold(name)) if w]
    return " ".join(_ARTICLES.get(w, w) for w in words)


@dataclass
class Register:
    regions: dict[str, Region]
    departments: dict[str, Department]
    epcis: dict[str, Epci]
    communes: dict[str, Commune]
    aliases: list[tuple[str, str]] = field(default_factory=list)  # other name, commune code
    former_codes: dict[str, str] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)

    # -- indexes, built on first use -------------------------------------------------------
    @cached_property
    def _keys(self) -> dict[str, str]:
        return {code: name_key(c.name) for code, c in self.communes.items()}

    @cached_property
    def _by_name(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = defaultdict(list)
        for code, key in self._keys.items():
            index[key].append(code)
        for name, code in self.aliases:
            if code not in index[name_key(name)]:
                index[name_key(name)].append(code)
        return dict(index)

    @cached_property
    def _sorted_keys(self) -> list[tuple[str, str]]:
        """(name key, code) sorted: prefix search by bisection."""
        return sorted((key, code) for code, key in self._keys.items())

    @cached_property
    def _sorted_codes(self) -> list[tuple[str, str]]:
        """(postcode or INSEE code, INSEE code) sorted: prefix search by bisection."""
        entries = {(c.code, c.code) for c in self.communes.values()}
        entries |= {(p, c.code) for c in self.communes.values() for p in c.postcodes}
        return sorted(entries)

    @cached_property
    def _by_postcode(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = defaultdict(list)
        for commune in self.communes.values():
            for postcode in commune.postcodes:
                index[postcode].append(commune.code)
        return dict(index)

    @cached_property
    def _department_by_name(self) -> dict[str, str]:
        return {name_key(d.name): d.code for d in self.departments.values()}

    @cached_property
    def _region_by_name(self) -> dict[str, str]:
        return {name_key(r.name): r.code for r in self.regions.values()}

    @cached_property
    def _epci_by_name(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = defaultdict(list)
        for epci in self.epcis.values():
            index[name_key(epci.name)].append(epci.code)
        return dict(index)

    @cached_property
    def epci_members(self) -> dict[str, list[str]]:
        members: dict[str, list[str]] = defaultdict(list)
        for commune in self.communes.values():
            if commune.epci:
                members[commune.epci].append(commune.code)
        return dict(members)

    # -- lookups ---------------------------------------------------------------------------
    def commune(self, code: str) -> Commune | None:
        code = code.strip().upper()
        return self.communes.get(code) or self.communes.get(self.former_codes.get(code, ""))

    def communes_named(self, name: str) -> list[Commune]:
        """Every current commune with this name (or a former or district name), largest first."""
        codes = self._by_name.get(name_key(name), [])
        found = [self.communes[c] for c in codes]
        return sorted(found, key=lambda c: (-c.population, c.code))

    def communes_with_postcode(self, postcode: str) -> list[Commune]:
        return [self.communes[c] for c in self._by_postcode.get(postcode.strip(), [])]

    def department(self, value: str) -> Department | None:
        """By code ('29', '2a', '974') or by name ('Finistère', 'finistere')."""
        value = value.strip()
        if not value:
            return None
        code = value.upper()
        if code.isdigit() and len(code) == 1:
            code = "0" + code
        found = self.departments.get(code)
        if found is None:
            found = self.departments.get(self._department_by_name.get(name_key(value), ""))
        return found

    def region(self, value: str) -> Region | None:
        """By code ('53') or by name ('Bretagne')."""
        value = value.strip()
        if not value:
            return None
        return self.regions.get(value) or self.regions.get(
            self._region_by_name.get(name_key(value), ""))

    def epci(self, value: str) -> Epci | None:
        """By SIREN or by exact name (when only one EPCI has it)."""
        value = value.strip()
        if not value:
            return None
        if value in self.epcis:
            return self.epcis[value]
        codes = self._epci_by_name.get(name_key(value), [])
        return self.epcis[codes[0]] if len(codes) == 1 else None

    def epci_department(self, epci: Epci) -> str:
        """The département of most of the EPCI's communes."""
        counts: dict[str, int] = defaultdict(int)
        for code in self.epci_members.get(epci.code, []):
            counts[self.communes[code].department] += 1
        return max(counts, key=lambda d: (counts[d], d)) if counts else ""

    def search_communes(self, text: str, limit: int = 10) -> list[Commune]:
        """Communes whose name starts with `text` (or with this postcode or INSEE code), the
        exact name first, then by population."""
        text = text.strip()
        if not text:
            return []
        if text.isdigit() or re.fullmatch(r"\d[\dAB]\d{0,3}", text.upper()):
            code = text.upper()
            codes = self._sorted_codes
            start = bisect.bisect_left(codes, (code, ""))
            found: dict[str, Commune] = {}
            for entry, commune_code in codes[start:]:
                if not entry.startswith(code):
                    break
                found[commune_code] = self.communes[commune_code]
            return heapq.nlargest(limit, found.values(), key=lambda c: (c.population, c.code))
        key = name_key(text)
        if not key:
            return []
        keys = self._sorted_keys
        start = bisect.bisect_left(keys, (key, ""))
        matches: list[Commune] = []
        for entry_key, code in keys[start:]:
            if not entry_key.startswith(key):
                break
            matches.append(self.communes[code])
        exact = [c for c in matches if self._keys[c.code] == key]
        rest = heapq.nlargest(limit, [c for c in matches if self._keys[c.code] != key],
                              key=lambda c: (c.population, c.code))
        return (sorted(exact, key=lambda c: -c.population) + rest)[:limit]

    def search_epcis(self, text: str, limit: int = 10) -> list[Epci]:
        key = name_key(text)
        if not key:
            return []
        words = key.split()
        found = [e for e in self.epcis.values()
                 if all(w in name_key(e.name).split() or any(
                     part.startswith(w) for part in name_key(e.name).split()) for w in words)]
        return sorted(found, key=lambda e: name_key(e.name))[:limit]

    def territory(self, kind: str, code: str) -> Territory | None:
        table: dict[str, Territory] = {"region": self.regions, "departement": self.departments,
                                       "epci": self.epcis, "commune": self.communes}.get(
            kind, {})  # type: ignore[assignment]
        return table.get(code)

    def departments_of_region(self, region: str) -> list[Department]:
        return sorted((d for d in self.departments.values() if d.region == region),
                      key=lambda d: d.code)

    @cached_property
    def _epcis_by_department(self) -> dict[str, list[Epci]]:
        index: dict[str, list[Epci]] = defaultdict(list)
        for epci in self.epcis.values():
            index[self.epci_department(epci)].append(epci)
        return {code: sorted(found, key=lambda e: name_key(e.name))
                for code, found in index.items()}

    def epcis_of_department(self, department: str) -> list[Epci]:
        return list(self._epcis_by_department.get(department, []))


def _read(path: Path) -> Register:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        raw = json.load(handle)
    return Register(
        regions={code: Region(code, name) for code, name in raw["regions"]},
        departments={code: Department(code, name, region)
                     for code, name, region in raw["departments"]},
        epcis={code: Epci(code, name, kind) for code, name, kind in raw["epci"]},
        communes={row[0]: Commune(row[0], row[1], row[2], row[3], row[4], int(row[5]),
                                  tuple(row[6].split()))
                  for row in raw["communes"]},
        aliases=[(name, code) for name, code in raw["aliases"]],
        former_codes=dict(raw["former_codes"]),
        source=raw.get("source", {}),
    )


_lock = threading.Lock()
_cache: dict[Path, Register] = {}


def register(path: Path = REGISTER_FILE) -> Register:
    """The register, read once per process (about 0.3 s) and kept."""
    found = _cache.get(path)
    if found is None:
        with _lock:
            found = _cache.get(path)
            if found is None:
                found = _cache[path] = _read(path)
    return found


def department_label(value: str) -> str:
    """'29' or 'Finistère' -> 'Finistère (29)'; anything else as given."""
    found = register().department(value) if value else None
    return found.label if found else value


def territories_with_code(code: str) -> list[Territory]:
    """Every territory with this official code: a région and a département may share one
    (53: Bretagne, Mayenne)."""
    reg = register()
    found: list[Territory] = []
    if len(code) == 9 and code in reg.epcis:
        found.append(reg.epcis[code])
    if len(code) == 5 and code in reg.communes:
        found.append(reg.communes[code])
    if code in reg.regions:
        found.append(reg.regions[code])
    if code.upper() in reg.departments:
        found.append(reg.departments[code.upper()])
    return found
