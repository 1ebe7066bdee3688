from __future__ import annotations

from pathlib import Path

from kb.errors import ValidationError
from kb.importers.bazar import parse_bazar_text
from kb.importers.common import Echo, ImportFailed
from kb.importers.upsert import upsert_sheet
from kb.sheets import operations
from kb.transaction import commit


def import_bazar_text(path: Path, echo: Echo) -> dict[str, int]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ImportFailed(f"{path} n'est pas un texte UTF-8 (octet {exc.start})") from exc
    parsed = parse_bazar_text(text)
    if not parsed:
        raise ImportFailed(f"{path} : aucune fiche reconnue")
    author = operations.system_user()
    counts = {"created": 0, "updated": 0, "unchanged": 0, "skipped": 0, "matched": 0,
              "distinct": 0}
    for sheet in parsed:
        try:
            outcome, saved = upsert_sheet(sheet.data, author, "Import bazar-text")
        except ValidationError as exc:
            counts["skipped"] += 1
            echo(f"ligne {sheet.line} : « {sheet.data['title'][:60]} » ignorée : {exc}")
            continue
        counts[outcome] += 1
        labels = {"created": "créée", "updated": "mise à jour", "unchanged": "inchangée",
                  "matched": "même initiative qu'une fiche existante (doublon) : mise à jour",
                  "distinct": "créée"}
        echo(f"ligne {sheet.line} : {saved.slug} — {labels[outcome]}"
             f" ; {sheet.duplicates_dropped} doublon(s) retiré(s)"
             + (f" ; spam retiré : {', '.join(sheet.spam)}" if sheet.spam else ""))
        for warning in sheet.warnings:
            echo(f"    avertissement : {warning}")
    commit()
    echo(f"{len(parsed)} fiche(s) lue(s) : {counts['created']} créée(s), {counts['updated']} "
         f"mise(s) à jour, {counts['unchanged']} inchangée(s), {counts['skipped']} ignorée(s), "
         f"{counts['matched']} rapprochée(s) d'une fiche existante.")
    return counts
