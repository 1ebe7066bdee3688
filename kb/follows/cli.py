"""`kb follows digest`."""

from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.group("follows")
def follows() -> None:
    """Suivis : récapitulatif par e-mail des fiches nouvelles ou mises à jour."""


@follows.command("digest")
@with_appcontext
def digest() -> None:
    """Send each follower at most one digest per period (weekly or monthly); idempotent."""
    from kb.follows.operations import send_digests

    run = send_digests()
    for user, count in run.sent:
        click.echo(f"récapitulatif envoyé à {user.email} : {count} fiche(s)")
    for user, error in run.failed:
        click.echo(f"échec pour {user.email} : {error}", err=True)
    click.echo(f"{len(run.sent)} récapitulatif(s) envoyé(s), {run.already} déjà envoyé(s) pour "
               f"la période, {run.nothing_new} sans nouveauté, {len(run.failed)} échec(s).")
    if run.failed:
        raise SystemExit(1)
