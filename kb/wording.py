"""French wording helpers shared by templates and messages."""

from __future__ import annotations

NARROW_NBSP = "\u202f"  # the thousands separator of French typography


def french_number(n: int) -> str:
    """12345 -> '12 345' (narrow no-break space)."""
    return f"{n:,}".replace(",", NARROW_NBSP)


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
