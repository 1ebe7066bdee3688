"""`kb mail letters` (the lead attaches `letters_command` to the `kb mail` group), and the
former commands that now run it: `kb freshness remind`, `kb follows digest`, `kb moderation
digest`."""

from __future__ import annotations

import click
from flask.cli import with_appcontext


def run_letters() -> None:
    from kb.letters.operations import build_letters

    run = build_letters()
    for user, counts in run.queued:
        click.echo(f"lettre préparée pour {user.email} : "
                   + ", ".join(f"{key} {n}" for key, n in counts.items()))
    click.echo(f"{len(run.queued)} lettre(s) préparée(s), {run.already} déjà faite(s) pour la "
               f"période, {run.empty} sans contenu (rien d'envoyé).")


@click.command("letters")
@with_appcontext
def letters_command() -> None:
    """Prepare the letters due now: one per person per period, none when nothing waits
    (hourly from cron; a second run in the same period adds nothing)."""
    run_letters()


def alias(name: str, former: str) -> click.Command:
    @click.command(name, help=f"Ancienne commande ({former}) : fait la même chose que "
                              "`kb mail letters`, dont la lettre reprend le contenu.")
    @with_appcontext
    def command() -> None:
        run_letters()

    return command
