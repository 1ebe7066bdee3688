"""Synthetic sheets whose words follow the frequencies of the seed texts (shared by benches)."""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

from kb.sheets.fields import ACTOR_TYPES, SCALES

ROOT = Path(__file__).resolve().parent.parent
SEED_DIRS = (ROOT.parent / "shared" / "seeds", ROOT / "tests" / "data")
CITIES = ("Brest", "Nantes", "Lyon", "Quimper", "Saint-Denis", "Alençon", "Perpignan", "Rodez",
          "Saint-Gaudens", "Rennes", "Toulouse", "Lille", "Marseille", "Argentan", "Flers")
DEPARTMENTS = ("29", "44", "69", "93", "61", "66", "12", "31", "35", "59", "13", "85")


def seed_words() -> tuple[list[str], list[int]]:
    counts: Counter[str] = Counter()
    for folder in SEED_DIRS:
        for path in sorted(folder.glob("*.txt")) if folder.exists() else []:
            counts.update(w.lower() for w in re.findall(r"[^\W\d_]{2,}", path.read_text()))
    words, weights = zip(*counts.most_common(), strict=True)
    return list(words), list(weights)


def make_sheets(n: int, seed: int = 42) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    words, weights = seed_words()
    tags = [w for w in words[200:1200] if len(w) > 5][:300]

    def text(k: int) -> str:
        return " ".join(rng.choices(words, weights, k=k))

    sheets = []
    for i in range(n):
        sheets.append({
            "title": f"{text(6).capitalize()} {i}",
            "summary": text(25),
            "context": text(120),
            "stakes": text(60),
            "method": "\n".join(f"- {text(15)}" for _ in range(4)),
            "results": text(80),
            "actor_name": text(3).title(),
            "actor_type": rng.choice(ACTOR_TYPES)[0],
            "scale": rng.choice(SCALES)[0],
            "city": rng.choice(CITIES),
            "department": rng.choice(DEPARTMENTS),
            "tags": rng.sample(tags, 3),
            "partners": [text(3).title()],
        })
    return sheets
