"""`kb mail`: send the outbox (`send`, `send --loop`), make waiting mails due (`retry`), and
say how it goes (`status`)."""

from __future__ import annotations

import json
import logging
import signal
import threading
from types import FrameType

import click
from flask.cli import with_appcontext

from kb.mail import outbox, sender

log = logging.getLogger("kb.mail")


@click.group("mail", help="Courriels : file d'envoi (outbox).")
def mail() -> None:
    pass


def _report(run: sender.SendRun) -> None:
    parts = [f"{run.sent} envoyé(s)"]
    for count, label in ((run.retrying, "à réessayer"), (run.bounced, "rejeté(s)"),
                         (run.failed, "abandonné(s)"), (run.suppressed, "non envoyé(s) : adresse suspendue")):
        if count:
            parts.append(f"{count} {label}")
    click.echo("Courriels : " + ", ".join(parts) + ".")
    for error in run.errors:
        click.echo(f"  échec temporaire : {error}", err=True)


def _busy(run: sender.SendRun) -> bool:
    return bool(run.sent or run.retrying or run.bounced or run.failed or run.suppressed)


@mail.command("send")
@click.option("--loop", is_flag=True, help="Tourner en continu (worker) jusqu'à SIGTERM.")
@click.option("--quiet", is_flag=True, help="Ne rien écrire quand rien n'était à envoyer (cron).")
@click.option("--interval", default=10.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Secondes entre deux passages (avec --loop).")
@with_appcontext
def send_command(loop: bool, quiet: bool, interval: float) -> None:
    """Envoyer les courriels dus (un passage ; cron chaque minute), ou tourner avec --loop."""
    if not loop:
        run = sender.send_due()
        if not quiet or _busy(run):
            _report(run)
        return
    stopping = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.set()  # the current mail is finished, the rest of the batch given back

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    click.echo(f"Envoi des courriels toutes les {interval:g} s (SIGTERM pour arrêter).")
    while not stopping.is_set():
        try:
            run = sender.send_due(stop=stopping.is_set)
            if _busy(run):
                _report(run)
        except Exception:  # noqa: BLE001 - a database hiccup must not end the worker
            log.exception("passage d'envoi en échec ; nouvel essai au prochain passage")
        stopping.wait(interval)
    click.echo("Arrêt demandé : envoi terminé proprement.")


@mail.command("retry")
@with_appcontext
def retry_command() -> None:
    """Rendre dus tout de suite les courriels en attente (après une panne réparée)."""
    count = sender.retry_all()
    click.echo(f"{count} courriel(s) en attente rendus dus maintenant ; `kb mail send` les envoie.")


@mail.command("status")
@click.option("--json", "as_json", is_flag=True, help="Sortie JSON pour la supervision.")
@with_appcontext
def status_command(as_json: bool) -> None:
    """File d'envoi : en attente, à réessayer, rejetés, adresses suspendues, ancienneté."""
    state = outbox.status()
    if as_json:
        click.echo(json.dumps(state.as_dict()))
        return
    click.echo(f"En attente : {state.pending}")
    click.echo(f"À réessayer : {state.retrying}")
    click.echo(f"Rejetés : {state.bounced}")
    click.echo(f"Adresses suspendues : {state.suppressed}")
    click.echo(f"Plus ancien en attente : {_age(state.oldest_pending_seconds)}"
               + (" — EN RETARD (plus d'une heure)" if state.late else ""))


def _age(seconds: int) -> str:
    if not seconds:
        return "aucun"
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d}"
