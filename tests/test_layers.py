"""The layering contracts name every package and module of kb/: a new domain is placed on purpose.

lint-imports (run by `make test`) checks the contracts themselves; this checks that nothing of
kb/ escapes them by not being named.
"""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import kb

ROOT = Path(__file__).resolve().parent.parent


def _contracts() -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["importlinter"]["contracts"]


def _layered_names() -> set[str]:
    (layers,) = [c["layers"] for c in _contracts() if c["type"] == "layers"]
    return {name.strip() for layer in layers for name in layer.replace("|", ":").split(":")}


def test_every_package_and_module_of_kb_is_in_a_layer() -> None:
    children = {f"kb.{info.name}" for info in pkgutil.iter_modules(kb.__path__)}
    assert children, "kb/ has modules"
    assert children - _layered_names() == set()


def test_no_layer_names_a_module_that_is_gone() -> None:
    children = {f"kb.{info.name}" for info in pkgutil.iter_modules(kb.__path__)}
    assert _layered_names() - children == set()


def test_circles_are_forbidden_across_the_whole_package() -> None:
    acyclic = [c for c in _contracts() if c["type"] == "acyclic_siblings"]
    assert [c["ancestors"] for c in acyclic] == [["kb"]]
