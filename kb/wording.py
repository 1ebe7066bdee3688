"""French wording helpers shared by templates and messages."""

from __future__ import annotations

from babel.numbers import format_decimal

NARROW_NBSP = "\u202f"  # the thousands separator of French typography
LOCALE = "fr_FR"


def french_number(n: float | None, decimals: int | None = None) -> str:
    """Every number shown to a reader, written the French way (CLDR, through Babel):
    12345 -> '12 345' (narrow no-break space), 0.5 -> '0,5'; `decimals` fixes the count of
    decimals (`french_number(0, 1)` -> '0,0')."""
    if n is None:
        return ""
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "") if decimals is not None \
        else None
    return format_decimal(n, format=pattern, locale=LOCALE)


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
