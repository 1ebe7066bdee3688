"""What every importer shares: how it reports progress, and how it refuses a file."""

from __future__ import annotations

from collections.abc import Callable

Echo = Callable[[str], None]


class ImportFailed(Exception):
    """A file that cannot be imported; the message names the line when there is one."""
