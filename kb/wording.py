"""French wording helpers shared by templates and messages."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.numbers import NumberPattern, get_group_symbol, parse_pattern

LOCALE = Locale.parse("fr_FR")
NARROW_NBSP = get_group_symbol(locale=LOCALE)  # French thousands separator (CLDR: U+202F)


@lru_cache(maxsize=8)
def _pattern(decimals: int | None) -> NumberPattern:
    # Parsed once: format_decimal() parses its pattern and locale on every call (~40 µs).
    if decimals is None:
        return parse_pattern(LOCALE.decimal_formats[None].pattern)
    return parse_pattern("#,##0" + ("." + "0" * decimals if decimals else ""))


def french_number(n: float | None, decimals: int | None = None) -> str:
    """Every number shown to a reader, written the French way (CLDR, through Babel):
    12345 -> '12 345' (narrow no-break space), 0.5 -> '0,5'; `decimals` fixes the count of
    decimals (`french_number(0, 1)` -> '0,0')."""
    if n is None:
        return ""
    if isinstance(n, int) and decimals is None:  # counts, most numbers shown: the fast path
        return f"{n:,}".replace(",", NARROW_NBSP)
    return _pattern(decimals).apply(n, LOCALE)


def plural(n: int | None, singular: str, plural_form: str | None = None,
           with_number: bool = True) -> str:
    """'0 fiche', '1 fiche', '2 fiches': French takes the singular below 2.

    The plural is `singular + "s"` unless given ("fiche publiée", "fiches publiées").
    In templates: `{{ n|plural('fiche') }}`, `{{ n|plural('révision en attente',
    'révisions en attente') }}`, `{{ n|plural('fiche', with_number=False) }}`.
    """
    count = int(n or 0)
    word = singular if abs(count) < 2 else (plural_form or singular + "s")
    return f"{french_number(count)} {word}" if with_number else word


PARIS = ZoneInfo("Europe/Paris")
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
          "septembre", "octobre", "novembre", "décembre")


def local_time(value: datetime) -> datetime:
    """A stored time (naive UTC) as a reader in France reads it, summer time included."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(PARIS)


def french_date(value: datetime | date | None) -> str:
    """'3 mars 2026', '1er avril 2026': the day in Paris."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = local_time(value)
    day = "1er" if value.day == 1 else str(value.day)
    return f"{day} {MONTHS[value.month - 1]} {value.year}"


def french_datetime(value: datetime | None) -> str:
    """'3 mars 2026 à 14 h 05' in Paris time (templates write 'le …' where French needs it).
    Times are stored in UTC; this filter is where every page turns them into French time."""
    if value is None:
        return ""
    local = local_time(value)
    return f"{french_date(local)} à {local.hour} h {local.minute:02d}"
