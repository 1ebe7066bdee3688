"""Per-field three-way merge of sheet data."""

from __future__ import annotations

from typing import Any

from kb.sheets.fields import FIELD_NAMES


def three_way_merge(
    base: dict[str, Any], theirs: dict[str, Any], mine: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """Merge `mine` (edited from `base`) with `theirs` (saved since). Returns (merged, conflicts).

    A field changed on one side only takes that side; changed identically on both, it is kept;
    changed differently on both, it is a conflict (merged keeps `mine`: the user's text is never lost).
    """
    merged: dict[str, Any] = {}
    conflicts: list[str] = []
    for name in FIELD_NAMES:
        b, t, m = base.get(name), theirs.get(name), mine.get(name)
        if m == b:
            merged[name] = t
        elif t in (b, m):
            merged[name] = m
        else:
            merged[name] = m
            conflicts.append(name)
    return merged, conflicts
