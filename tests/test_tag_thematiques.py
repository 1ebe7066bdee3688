"""The seed importer's keyword → thématique table (issue 23): valid values of the schema,
shown in docs/tag-thematiques.md, applied to imported sheets."""

from __future__ import annotations

import re

from kb.config import PROJECT_ROOT
from kb.importers.bazar import parse_bazar_text
from kb.importers.tag_thematiques import TAG_THEMATIQUES, thematiques_for_tags
from kb.sheets.fields import FIELDS_BY_NAME

SEED = PROJECT_ROOT / "tests" / "data" / "bazar_seed.txt"


def test_every_mapped_value_is_a_thematique_of_the_schema() -> None:
    assert set(TAG_THEMATIQUES.values()) <= set(FIELDS_BY_NAME["thematiques"].choice_values)


def test_the_docs_table_is_the_code_table() -> None:
    text = (PROJECT_ROOT / "docs" / "tag-thematiques.md").read_text(encoding="utf-8")
    documented = dict(re.findall(r"^\| ([^|]+?) \| `([a-z0-9-]+)` \|", text, re.M))
    assert documented == TAG_THEMATIQUES


def test_keywords_are_matched_without_case_accents_or_curly_apostrophes() -> None:
    assert thematiques_for_tags(["Médiation numérique", "Garde d’enfants", "accueil",
                                 "médiation  numérique"]) == [
        "numerique--maitriser-les-fondamentaux-du-numerique", "famille--garde-denfants"]
    assert thematiques_for_tags(["logement", "mobilité"]) == []  # ambiguous: left out


def test_the_seed_importer_gives_sheets_the_thematiques_of_their_keywords() -> None:
    text = SEED.read_text(encoding="utf-8").replace(
        "Mot clef de l'action\nEducation\n", "Mot clef de l'action\nAccès aux droits\n", 1)
    sheets = parse_bazar_text(text)
    mapped = [s for s in sheets if s.data.get("thematiques")]
    assert [s.data["thematiques"] for s in mapped] == [
        ["difficultes-administratives-ou-juridiques--accompagnement-pour-lacces-aux-droits"]]
    assert "Accès aux droits" in mapped[0].data["tags"]
