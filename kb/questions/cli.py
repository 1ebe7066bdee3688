"""`kb questions remind`."""

from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.group("questions")
def questions() -> None:
    """Questions aux équipes : rappel puis clôture des questions sans réponse."""


@questions.command("remind")
@with_appcontext
def remind() -> None:
    """Remind the team once after KB_QUESTION_REMIND_DAYS, then close and tell the asker."""
    from kb.questions.operations import sweep
    from kb.transaction import commit

    run = sweep()
    commit()
    click.echo(f"{len(run.reminded)} rappel(s) envoyé(s), {len(run.closed)} question(s) close(s) "
               "sans réponse (personnes prévenues).")
