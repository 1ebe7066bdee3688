"""The `kb` console script: a Flask CLI group over create_app(), whose commands kb/cli.py registers."""

from __future__ import annotations

import copy
import functools
import os
from typing import Any

import click
from flask import Flask

from kb import create_app
from kb.cli_french import FrenchFlaskGroup


def _create_app() -> Flask:
    return create_app()


@click.group(cls=FrenchFlaskGroup, create_app=_create_app, add_default_commands=True,
             help="Base de connaissances des fiches initiatives.")
def main() -> None:
    """Entry point of the `kb` console script."""


def _run_command() -> click.Command:
    """Flask's `run`, which first says when KB_BASE_URL points at another port than the one
    served, and records the served address for links (kb/urls.py)."""
    from flask.cli import run_command

    from kb import config
    from kb.urls import port_mismatch, remember_served, served_url

    command = copy.copy(run_command)
    original = run_command.callback
    assert original is not None

    @functools.wraps(original)
    def callback(*args: Any, **kwargs: Any) -> Any:
        host, port = str(kwargs.get("host") or "127.0.0.1"), int(kwargs.get("port") or 5000)
        warning = port_mismatch(os.environ.get("KB_BASE_URL", "").rstrip("/"), host, port)
        if warning:
            click.echo(warning, err=True)
        url = served_url(host, port)
        os.environ["KB_SERVED_URL"] = url  # the app (and the reloader's child) reads it
        remember_served(config.SERVED_URL_FILE, url)
        return original(*args, **kwargs)

    command.callback = callback
    return command


main.add_command(_run_command(), "run")
