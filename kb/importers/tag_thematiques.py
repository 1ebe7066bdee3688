"""The seed wiki's keywords that name one data·inclusion thématique without doubt.

docs/tag-thematiques.md shows this table (tests/test_tag_thematiques.py keeps them equal).
A keyword that could mean several thématiques ("logement", "mobilité", "formation
professionnelle": agents' training or a person's?) is left out: a wrong thématique sends a
practitioner to the wrong place, a missing one only waits for a contributor.
"""

from __future__ import annotations

from kb.text import fold


def tag_key(tag: str) -> str:
    """How keywords are compared: case, accents, curly apostrophes and spaces aside."""
    return " ".join(fold(tag.replace("’", "'")).split())


# folded keyword -> thématique value (data-inclusion-schema v1)
TAG_THEMATIQUES: dict[str, str] = {
    "mediation numerique": "numerique--maitriser-les-fondamentaux-du-numerique",
    "inclusion numerique": "numerique--maitriser-les-fondamentaux-du-numerique",
    "demarches en ligne": "numerique--acceder-a-des-services-en-ligne",
    "acces aux droits": "difficultes-administratives-ou-juridiques--accompagnement-pour-lacces-aux-droits",
    "non-recours": "difficultes-administratives-ou-juridiques--accompagnement-pour-lacces-aux-droits",
    "demarches administratives":
        "difficultes-administratives-ou-juridiques--accompagnement-aux-demarches-administratives",
    "france services":
        "difficultes-administratives-ou-juridiques--accompagnement-aux-demarches-administratives",
    "citoyennete":
        "difficultes-administratives-ou-juridiques--accompagnement-pour-lacces-a-la-citoyennete",
    "permis de conduire": "mobilite--preparer-un-permis",
    "garde d'enfants": "famille--garde-denfants",
    "parentalite": "famille--soutien-a-la-parentalite-et-a-leducation",
    "aidants": "famille--soutien-aidants",
    "hebergement d'urgence":
        "logement-hebergement--rechercher-une-solution-dhebergement-temporaire",
    "aide alimentaire": "equipement-et-alimentation--alimentation",
    "illettrisme": "lecture-ecriture-calcul--maitriser-le-francais",
    "apprentissage du francais": "lecture-ecriture-calcul--maitriser-le-francais",
    "sante mentale": "sante--sante-mentale",
    "addictions": "sante--addictions",
    "acces aux soins": "sante--acces-aux-soins",
    "surendettement": "difficultes-financieres--situation-dendettement-surendettement",
    "lien social": "remobilisation--lien-social",
    "benevolat": "remobilisation--benevolat-action-citoyenne",
    "creation d'entreprise": "creer-une-entreprise--definir-son-projet-de-creation-dentreprise",
    "cv": "preparer-sa-candidature--realiser-un-cv-et-ou-une-lettre-de-motivation",
}


def thematiques_for_tags(tags: list[str]) -> list[str]:
    """The thématiques the keywords name, in the keywords' order, without repeats."""
    found = [TAG_THEMATIQUES.get(tag_key(tag)) for tag in tags]
    return list(dict.fromkeys(t for t in found if t))
