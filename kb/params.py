"""Reading a visitor's parameters without server errors.

- `str.isdigit()` accepts "²" and other Unicode digits that `int()` refuses, and `int()` accepts
  Arabic-Indic digits and numbers of thousands of digits that no database column holds: ids and
  numbers from requests go through `db_id()` / `ascii_int()` instead.
- `url_for(endpoint, **request.args)` hands a visitor's `_method`, `_external`, `_anchor` or
  `_scheme` to url_for itself: links that keep the current parameters use `query_url()`.
- The `int` URL converter only matches ids a database column can hold (else 404).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

from flask import url_for
from werkzeug.routing import IntegerConverter, Map

MAX_ID = 2**31 - 1  # INTEGER primary keys (PostgreSQL's int4, the smaller of the two backends)
_ASCII_INT = re.compile(r"[0-9]{1,18}")


def ascii_int(value: Any, maximum: int = MAX_ID) -> int:
    """A non-negative integer written with ASCII digits, at most `maximum`; ValueError else.

    Usable as `request.args.get(name, type=ascii_int)` (a ValueError gives the default)."""
    text = str(value).strip()
    if not _ASCII_INT.fullmatch(text) or int(text) > maximum:
        raise ValueError(f"nombre entier attendu (0 à {maximum})")
    return int(text)


def db_id(value: Any) -> int:
    """A row id: 1 to MAX_ID."""
    number = ascii_int(value)
    if number < 1:
        raise ValueError("identifiant attendu")
    return number


def query_url(endpoint: str, params: Mapping[str, Any] | Iterable[tuple[str, Any]],
              **path_values: Any) -> str:
    """`endpoint`'s URL (path values trusted) with these query parameters appended as data,
    never as url_for options; empty values are left out."""
    items = params.items() if isinstance(params, Mapping) else params
    pairs = [(key, value) for key, value in items if value not in (None, "")]
    base = url_for(endpoint, **path_values)
    return base + ("?" + urlencode(pairs) if pairs else "")


class IdConverter(IntegerConverter):
    """`<int:…>` limited to ids that fit the columns: a larger number is a 404, not a 500."""

    def __init__(self, map: Map, fixed_digits: int = 0, min: int | None = None,
                 max: int | None = MAX_ID, signed: bool = False) -> None:
        super().__init__(map, fixed_digits, min, max, signed)
        # \d also matches non-ASCII digits (Arabic-Indic…): only 0-9.
        self.regex = r"[0-9]{1,10}"
