"""Per-field, word-level differences between two revisions' data."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from kb.sheets.fields import FIELDS, Field, Kind

_TOKENS = re.compile(r"\s+|[^\s\w]|\w+")


@dataclass
class FieldDiff:
    field: Field
    old: str
    new: str
    html: Markup  # the new text with <del>/<ins> word highlights


def as_text(field: Field, value: Any) -> str:
    if field.kind is Kind.LIST:
        return "\n".join(value or [])
    if field.kind is Kind.CHOICE:
        return field.choice_label(value) if value else ""
    return str(value or "")


def word_diff(old: str, new: str) -> Markup:
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(str(escape("".join(a[i1:i2]))))
            continue
        if op in ("delete", "replace"):
            out.append(f"<del>{escape(''.join(a[i1:i2]))}</del>")
        if op in ("insert", "replace"):
            out.append(f"<ins>{escape(''.join(b[j1:j2]))}</ins>")
    return Markup("".join(out))


def diff_data(old: dict[str, Any] | None, new: dict[str, Any]) -> list[FieldDiff]:
    """The fields that differ, in declaration order. `old=None` shows every filled field as new."""
    diffs = []
    for f in FIELDS:
        old_text = as_text(f, (old or {}).get(f.name))
        new_text = as_text(f, new.get(f.name))
        if old_text != new_text:
            diffs.append(FieldDiff(f, old_text, new_text, word_diff(old_text, new_text)))
    return diffs
