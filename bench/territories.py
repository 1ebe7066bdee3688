"""Territories: register start-up, commune autocomplete and name resolution.

    .venv/bin/python -m bench.territories

- Start-up: reading `kb/territories/data/register.json.gz` and building the name indexes, once
  per process; the baseline is parsing the npm package's own JSON (`--package PATH`, optional,
  an unpacked @etalab/decoupage-administratif) when given, else the bare gzip+json read.
- Autocomplete (`Register.search_communes`, what `GET /api/v1/territories` answers): prefix
  search by bisection over the sorted name keys; the baseline, in the same run, scans every
  commune's name key with `startswith` and keeps the 10 most populated.
- Resolution (`places.complete`, run on every write): names of the seed and frequent names,
  per second.
"""

from __future__ import annotations

import argparse
import gzip
import heapq
import json
import statistics
import time
from pathlib import Path

from kb.territories import register as register_module
from kb.territories.places import complete
from kb.territories.register import REGISTER_FILE, name_key

PREFIXES = ("b", "br", "bre", "saint", "saint-den", "qui", "mont", "la r", "29200", "lyo", "st m")
NAMES = ("Brest", "Quimper", "Nantes", "Saint Méen le Grand", "Saint-Gaudens", "Lyon",
         "29200 Brest", "Saint-Denis (93)", "Perpignan", "Alençon", "Bruxelles", "Paris")


def _timed(function, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", type=Path, help="unpacked @etalab/decoupage-administratif")
    args = parser.parse_args()

    def load() -> None:
        register_module._cache.clear()
        reg = register_module.register()
        reg.communes_named("x")
        reg.search_communes("x")

    def baseline_load() -> None:
        if args.package:
            json.loads((args.package / "data" / "communes.json").read_text(encoding="utf-8"))
        else:
            with gzip.open(REGISTER_FILE, "rt", encoding="utf-8") as handle:
                json.load(handle)

    start_up, raw = _timed(load, 3), _timed(baseline_load, 3)
    print(f"start-up (read + indexes)  {start_up * 1000:8.0f} ms   "
          f"baseline ({'npm JSON' if args.package else 'bare gzip+json'}) "
          f"{raw * 1000:6.0f} ms   ratio {start_up / raw:5.2f}")

    reg = register_module.register()
    keys = [(name_key(c.name), c) for c in reg.communes.values()]

    def scan(prefix: str) -> list[object]:
        """The same answer as search_communes (exact names first), by scanning everything."""
        key = name_key(prefix)
        if prefix.isdigit():
            found = [c for c in reg.communes.values()
                     if c.code.startswith(prefix) or any(p.startswith(prefix) for p in c.postcodes)]
            return heapq.nlargest(10, found, key=lambda c: (c.population, c.code))
        matches = [(k, c) for k, c in keys if k.startswith(key)]
        exact = sorted((c for k, c in matches if k == key), key=lambda c: -c.population)
        rest = heapq.nlargest(10, (c for k, c in matches if k != key),
                              key=lambda c: (c.population, c.code))
        return (exact + rest)[:10]

    print(f"{'autocomplete prefix':<22}{'matches':>8}{'bisect µs':>11}{'scan µs':>10}{'ratio':>8}")
    ratios = []
    for prefix in PREFIXES:
        fast = _timed(lambda p=prefix: reg.search_communes(p), 9)  # type: ignore[misc]
        slow = _timed(lambda p=prefix: scan(p), 5)  # type: ignore[misc]
        same = [c.code for c in reg.search_communes(prefix)] == \
            [c.code for c in scan(prefix)]  # type: ignore[attr-defined]
        key = name_key(prefix)
        matches = sum(1 for k, _ in keys if k.startswith(key)) if not prefix.isdigit() else 0
        ratios.append(slow / fast)
        print(f"{prefix!r:<22}{matches:>8}{fast * 1e6:>11.0f}{slow * 1e6:>10.0f}"
              f"{slow / fast:>7.1f}x{'' if same else '  (answers differ!)'}")
    print(f"autocomplete: median {statistics.median(ratios):.1f}x faster than a scan")

    data = {"city": "", "commune_code": "", "epci": "", "department": "", "region": "",
            "scale": "commune"}
    per_name = _timed(lambda: [complete({**data, "city": n}, strict=False) for n in NAMES],
                      20) / len(NAMES)
    print(f"resolution, per write      {per_name * 1e6:8.0f} µs   "
          f"({1 / per_name:,.0f} places per second)")


if __name__ == "__main__":
    main()
