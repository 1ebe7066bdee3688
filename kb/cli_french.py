"""The `kb` command's errors in French.

click writes "Error: …", "Usage: …", "Try 'kb --help' for help." and "Aborted!", and its own
messages ("Missing argument 'EMAIL'.") are English; it has no French catalogue. The `kb` group
gives every error it sees (its own, a subcommand's, click's) a French `show`: one place for
commands written in any domain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import IO, Any

import click
from flask.cli import FlaskGroup

_NAMES = {"file": "le fichier", "directory": "le dossier", "path": "le chemin"}

# click's messages (click 8), most common first; anything else is shown as click wrote it.
_MESSAGES: tuple[tuple[str, str | Callable[[re.Match[str]], str]], ...] = (
    (r"Missing argument '?([^'.]+)'?\.", r"argument manquant : \1."),
    (r"Missing option '?([^'.]+)'?\.", r"option manquante : \1."),
    (r"Missing parameter:? '?([^'.]+)'?\.?", r"paramètre manquant : \1."),
    (r"Missing command\.", "commande manquante."),
    (r"No such option:? '?([^'\s.]+)'?\.?", r"option inconnue : \1."),
    (r"No such command:? '?([^'.]+)'?\.?", r"commande inconnue : « \1 »."),
    (r"Got unexpected extra arguments? \((.*)\)", r"argument en trop : \1."),
    (r"Option '?([^'\s]+)'? requires an argument\.", r"l'option \1 attend une valeur."),
    (r"Option '?([^'\s]+)'? requires (\d+) arguments\.", r"l'option \1 attend \2 valeurs."),
    (r"Invalid value for (.+?): (.*)", lambda m: f"valeur invalide pour {m[1]} : {translate(m[2])}"),
    (r"Invalid value: (.*)", lambda m: f"valeur invalide : {translate(m[1])}"),
    (r"'(.*)' is not one of (.*)\.", r"« \1 » n'est pas une valeur possible (\2)."),
    (r"'(.*)' is not a valid integer( range)?\.", r"« \1 » n'est pas un nombre entier."),
    (r"'(.*)' is not a valid float( range)?\.", r"« \1 » n'est pas un nombre."),
    (r"'(.*)' is not a valid boolean.*", r"« \1 » n'est pas oui ou non."),
    (r"(.*) is not in the range (.*)\.", r"\1 n'est pas dans l'intervalle \2."),
    (r"(File|Directory|Path) '(.*)' does not exist\.",
     lambda m: f"{_NAMES[m[1].lower()]} « {m[2]} » n'existe pas."),
    (r"(File|Directory|Path) '(.*)' is a directory\.",
     lambda m: f"« {m[2]} » est un dossier, pas un fichier."),
    (r"(File|Directory|Path) '(.*)' is a file\.",
     lambda m: f"« {m[2]} » est un fichier, pas un dossier."),
    (r"Could not open file '(.*)': (.*)", r"impossible d'ouvrir « \1 » : \2"),
)
_SUGGESTION = re.compile(r"\s*\(?Did you mean (?:one of: )?(.+?)\?\)?$")


def translate(message: str) -> str:
    """click's English message in French; a message already in French is left as it is."""
    suggestion = ""
    found = _SUGGESTION.search(message)
    if found:
        message = message[:found.start()]
        suggestion = f" Vouliez-vous dire {found[1]} ?"
    for pattern, replacement in _MESSAGES:
        match = re.fullmatch(pattern, message.strip(), re.S)
        if match:
            text = replacement(match) if callable(replacement) else match.expand(replacement)
            return text + suggestion
    return message + suggestion


def show(exc: click.ClickException, file: IO[Any] | None = None) -> None:
    """What `exc.show()` prints, in French."""
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        usage = ctx.get_usage().replace("Usage:", "Utilisation :", 1)
        click.echo(usage, file=file, err=True)
        if ctx.command.get_help_option(ctx) is not None:
            click.echo(f"Aide : {ctx.command_path} --help\n", file=file, err=True)
    click.echo(f"Erreur : {translate(exc.format_message())}", file=file, err=True)


class Interrupted(click.ClickException):
    """click's Abort (Ctrl-C at a prompt), said in French."""

    def __init__(self) -> None:
        super().__init__("interrompu.")

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo("Interrompu.", file=file, err=True)


@contextmanager
def french_errors() -> Iterator[None]:
    try:
        yield
    except click.Abort as exc:
        raise Interrupted() from exc
    except click.ClickException as exc:
        if not isinstance(exc, Interrupted):
            exc.show = partial(show, exc)  # type: ignore[method-assign]
        raise


class FrenchFlaskGroup(FlaskGroup):
    """Flask's CLI group whose errors, wherever they arise, are shown in French."""

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        with french_errors():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with french_errors():
            return super().invoke(ctx)


def prompt_password() -> str:
    """A new password, typed twice (click's own confirmation answers in English)."""
    while True:
        password: str = click.prompt("Mot de passe", hide_input=True, prompt_suffix=" : ")
        if password == click.prompt("Le même mot de passe, pour confirmer", hide_input=True,
                                    prompt_suffix=" : "):
            return password
        click.echo("Erreur : les deux saisies diffèrent ; recommencez.", err=True)
