"""Hooks the sheets domain offers to higher domains, so that it never imports them.

`revision_check` is sent (sender: the app) before a revision is stored, with `old` (the data it
builds on, or None), `new` (its data) and `author`. A receiver refuses the revision by raising
(kb.sheets.fields.ValidationError, with a message per field): kb.moderation.spam caps the links
that untrusted contributors add.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from blinker import Namespace
from flask import current_app

if TYPE_CHECKING:
    from kb.auth.models import User

_signals = Namespace()
revision_check = _signals.signal("revision-check")


def check_revision(old: dict[str, Any] | None, new: dict[str, Any], author: User) -> None:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    revision_check.send(app, old=old, new=new, author=author)
