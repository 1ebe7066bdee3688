"""Time of finding indicators in a sheet's texts (kb/sheets/indicators.py: suggestions()), on the
seed 004 and on adversarial pastes of 20,000 characters in six fields.

    PYTHONPATH=. python bench/suggestions.py
"""

from __future__ import annotations

import time
from pathlib import Path

from kb.sheets.indicators import FREE_TEXT_FIELDS, suggestions

SEED = next(Path(__file__).resolve().parents[2].glob("shared/seeds/004_*.txt"), None)
CASES = {
    "seed 004": SEED.read_text(encoding="utf-8") if SEED else "29 % de sorties positives",
    "digits": "1" * 20_000,
    "numbers": "123 " * 5_000,
    "percents": "5 % de sorties " * 1_400,
    "people": "12 personnes " * 1_500,
}

for name, text in CASES.items():
    started = time.perf_counter()
    found = suggestions({field: text[:20_000] for field in FREE_TEXT_FIELDS})
    print(f"{name:10} {len(text[:20_000]):6} car. x {len(FREE_TEXT_FIELDS)} champs : "
          f"{(time.perf_counter() - started) * 1000:6.1f} ms, {len(found)} proposé(s)")
