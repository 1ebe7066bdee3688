"""`kb follows digest`: an alias of `kb mail letters` (follows come through the letter)."""

from __future__ import annotations

import click

from kb.letters.cli import alias


@click.group("follows")
def follows() -> None:
    """Suivis : leurs nouveautés arrivent dans la lettre des fiches."""


follows.add_command(alias("digest", "récapitulatif des suivis"))
