"""`make run` is `kb serve`: one clear "Prêt : http://HOST:PORT" line, no noise at each start."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

KB = Path(sys.executable).parent / "kb"


def _start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], list[str], str]:
    """Start `kb serve`; return the process, what it printed before it was ready, and its URL."""
    env = {**os.environ, "KB_DATABASE_URL": f"sqlite:///{tmp_path / 'kb.sqlite3'}",
           "KB_INDEX_DIR": str(tmp_path / "index"), "KB_SECRET_KEY": "serve"}
    env.pop("KB_TEST_DATABASE_URL", None)
    process = subprocess.Popen([str(KB), "serve", "--host", "127.0.0.1", "--port", "0", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        ready = re.fullmatch(r"Prêt : (http://127\.0\.0\.1:\d+)", lines[-1])
        if ready:
            return process, lines, ready[1]
    process.wait(5)
    pytest.fail(f"kb serve stopped before it was ready: {lines}")


def _stop(process: subprocess.Popen[Any]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def test_first_start_says_what_it_created_then_later_starts_only_that_it_is_ready(tmp_path):
    process, lines, url = _start(tmp_path)
    try:
        with urllib.request.urlopen(url + "/", timeout=10) as response:  # noqa: S310 - local
            assert response.status == 200
            assert "Fiches initiatives" in response.read().decode()
    finally:
        _stop(process)
    assert lines[:2] == ["Base de données créée.", lines[1]]
    assert re.fullmatch(r"Démonstration chargée : \d+ fiches\.", lines[1])
    assert len(lines) == 3

    process, lines, _ = _start(tmp_path)
    _stop(process)
    assert len(lines) == 1  # nothing but "Prêt : …": no banner, no migration log, no warning


def test_a_port_already_taken_is_said_in_french(tmp_path):
    process, _, url = _start(tmp_path, "--no-demo")
    try:
        port = url.rsplit(":", 1)[1]
        env = {**os.environ, "KB_DATABASE_URL": f"sqlite:///{tmp_path / 'kb.sqlite3'}",
               "KB_INDEX_DIR": str(tmp_path / "index"), "KB_SECRET_KEY": "serve"}
        env.pop("KB_TEST_DATABASE_URL", None)
        second = subprocess.run([str(KB), "serve", "--port", port], capture_output=True, text=True,
                                env=env, timeout=120)
    finally:
        _stop(process)
    assert second.returncode == 1
    assert (f"Erreur : impossible d'écouter sur 127.0.0.1:{port} : ce port est déjà utilisé par "
            "un autre programme") in second.stderr
    assert "in use" not in second.stderr + second.stdout
