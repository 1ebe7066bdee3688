"""`kb import`: read a file in one of the supported formats and upsert its sheets."""

from __future__ import annotations

from pathlib import Path

from kb.importers.common import Echo, ImportFailed

__all__ = ["Echo", "ImportFailed", "run_import"]


def run_import(path: Path, fmt: str, echo: Echo = print, publish: bool = False
               ) -> dict[str, int]:
    from kb.importers import backup, bazar_import, datainclusion, tabular

    runners = {
        "bazar-text": bazar_import.import_bazar_text,
        "json": backup.import_backup,
        "jsonl": tabular.import_jsonl,
        "csv": tabular.import_csv,
        # Drafts for review unless `publish` (kb import --publish).
        "data-inclusion": lambda p, e: datainclusion.import_services(p, e, publish),
    }
    if fmt not in runners:
        raise ImportFailed(f"format inconnu : {fmt}")
    from kb.extensions import db
    from kb.planner import refresh_statistics
    from kb.transaction import BULK_IMPORT

    db.session.info[BULK_IMPORT] = True
    try:
        counts = runners[fmt](path, echo)
    finally:
        db.session.info.pop(BULK_IMPORT, None)
    refresh_statistics()  # an import can change the data's shape a lot
    return counts
