"""The one declaration of a sheet's fields.

The form, the page, the per-field diff, the search schema, the API schema, import and
export all read this list: adding a field is one edit here (plus a migration when it
becomes a filter column).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any
from urllib.parse import urlparse

from data_inclusion.schema import v1 as di

from kb.errors import ValidationError
from kb.territories.register import register
from kb.text import fold, slugify


class Kind(StrEnum):
    SHORT = "short"  # one line of plain text
    LONG = "long"  # Markdown, rendered then sanitised
    CHOICE = "choice"  # one value of a vocabulary
    LIST = "list"  # a list of short texts
    URL = "url"  # an http(s) link
    MULTI = "multi"  # several keys of a vocabulary (data·inclusion's enums, official codes)
    # Several structured items (measured indicators), each a dict of its declared `parts`:
    # a JSON array of objects everywhere (API, backup, exports), one row of inputs per item
    # in the form, one line per item in diffs.
    RECORDS = "records"
    # Kinds of a record's parts only (never a sheet field of their own):
    NUMBER = "number"  # a decimal ("4,6" or 4.6), stored as a JSON number
    DATE = "date"  # an ISO date (2024-06-30)


@dataclass(frozen=True)
class Facet:
    """How readers filter and count sheets by a field (kb/sheets/filters.py reads this).

    `/fiches`, the API, search (every backend), embed lists, feeds, widget.js, the
    configurator and the OpenAPI document all take `param` with the same meaning; search
    results count facets under the same name. Adding a facet: declare it here, and add its
    projection column on Sheet (kb/sheets/models.py, filled by publish()) with a migration.
    """

    param: str  # URL parameter, and the key of the facet's counts
    # A reader's value -> the key stored in the projection column; ValueError (French) when
    # the value cannot match anything. None: the field's kind decides (choice, list, text).
    normalise: Callable[[str], str] | None = None
    label_of: Callable[[str], str] | None = None  # stored key -> French label; None: by kind
    column: str = ""  # Sheet projection column; "" -> the field's name (tags: sheet_tags)
    ignore_case: bool = False  # free text compared case-insensitively
    aliases: tuple[str, ...] = ()  # older parameter names still accepted
    title: str = ""  # heading of the facet's list; "" -> the field's label


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: Kind
    required: bool = False
    searchable: bool = True
    boost: float = 1.0
    max_length: int = 20_000
    hint: str = ""
    choices: tuple[tuple[str, str], ...] = ()  # (value, French label)
    aliases: tuple[str, ...] = field(default=())  # labels seen in imported dumps
    section: str = "essentiel"  # the form's group (SECTIONS)
    facet: Facet | None = None  # readers filter and count by this field
    # MULTI: the choices' families (value, label); a choice's family is its value's prefix
    # before "--" (data·inclusion's thématiques: "mobilite--louer-un-vehicule").
    groups: tuple[tuple[str, str], ...] = ()
    # MULTI without closed choices: a written item -> its keys (ValueError, French), and a key's
    # label (zone_eligibilite: a name or code -> official codes).
    item_keys: Callable[[str], tuple[str, ...]] | None = None
    item_label: Callable[[str], str] | None = None
    exclusive: str = ""  # MULTI: a value that cannot go with others ("tous-publics")
    # RECORDS: the parts of each item (Fields of kind SHORT, CHOICE, NUMBER, DATE, URL); a
    # part's facet filters sheets having an item with that value (sheet_keys, "field.part").
    parts: tuple[Field, ...] = ()
    check: Callable[[dict[str, Any]], None] | None = None  # RECORDS: one item's coherence
    minimum: float | None = None  # NUMBER: bounds, said in the French error
    maximum: float | None = None
    integer: bool = False  # NUMBER: a count
    record_name: str = "élément"  # RECORDS: how errors name one item ("indicateur 2")

    @property
    def choice_values(self) -> tuple[str, ...]:
        return tuple(value for value, _ in self.choices)

    @property
    def is_list(self) -> bool:
        """Several values: a JSON array, one per line in forms, "|"-joined in CSV."""
        return self.kind in (Kind.LIST, Kind.MULTI)

    def choice_label(self, value: str) -> str:
        if self.item_label is not None:
            return self.item_label(value)
        return dict(self.choices).get(value) or dict(self.groups).get(value, value)

    def group_of(self, value: str) -> str:
        return value.partition("--")[0] if self.groups else ""

    def grouped_choices(self) -> list[tuple[str, str, list[tuple[str, str]]]]:
        """(family value, family label, its choices) in the vocabulary's order."""
        return [(g, label, [c for c in self.choices if self.group_of(c[0]) == g])
                for g, label in self.groups]

    def labels(self, values: Any) -> list[str]:
        """French labels of a MULTI value (or a CHOICE), for pages, diffs and exports."""
        if isinstance(values, str):
            return [self.choice_label(values)] if values else []
        return [self.choice_label(str(v)) for v in values or []]

    def empty(self) -> Any:
        if self.kind in (Kind.NUMBER, Kind.DATE):
            return None
        return [] if self.is_list or self.kind is Kind.RECORDS else ""

    @property
    def parts_by_name(self) -> dict[str, Field]:
        return {part.name: part for part in self.parts}

    def choice_key(self, value: str) -> str:
        """A choice given as its value or its label ('Département' -> 'departement')."""
        key = fold(" ".join(value.split()))
        for choice_value, choice_label in self.choices:
            if key in (choice_value, fold(choice_label)):
                return choice_value
        if len(self.choices) > 12:  # 69 thématiques: point to the list rather than print it
            raise ValueError(f"valeur inconnue « {value} » pour « {self.label} » ; les valeurs "
                             "possibles sont celles du formulaire et du document OpenAPI")
        raise ValueError(f"valeur inconnue « {value} » pour « {self.label} » ; valeurs "
                         "possibles : " + ", ".join(self.choice_values))


def _territory_key(find: str, unknown: str, expected: str) -> Callable[[str], str]:
    """A reader's code or name of a territory -> its official code (ValueError, in French)."""
    def key(value: str) -> str:
        found = getattr(register(), find)(value)
        if found is None:
            raise ValueError(f"{unknown} « {value} » ; indiquez {expected}")
        return str(found.code)
    return key


def _territory_label(table: str) -> Callable[[str], str]:
    """An official code -> the territory's name ("Finistère (29)"), or the code if unknown."""
    def label(code: str) -> str:
        found = getattr(register(), table).get(code)
        return str(found.label) if found else code
    return label


def _commune_key(value: str) -> str:
    from kb.territories.places import commune_key  # places reads this module

    return commune_key(value)


def _commune_label(code: str) -> str:
    found = register().commune(code)
    return found.label if found else code


def _tag_key(value: str) -> str:
    # Taken literally: "%" or "*" has no slug, and must match no tag rather than drop the
    # filter (which would list every sheet, as a wildcard would).
    return slugify(value, 80) or value


def _enum_choices(enum: Any) -> tuple[tuple[str, str], ...]:
    """(value, French label) of a data·inclusion enum, in the schema's order."""
    return tuple((member.value, member.label) for member in enum)


THEMATIQUES = _enum_choices(di.Thematique)
FAMILIES = _enum_choices(di.Categorie)  # the 16 families ("catégories" in the schema)
PUBLICS = _enum_choices(di.Public)
MODES_MOBILISATION = _enum_choices(di.ModeMobilisation)
MOBILISABLE_PAR = _enum_choices(di.PersonneMobilisatrice)
FRAIS = _enum_choices(di.Frais)
NATIONAL = "france"  # data·inclusion's code for the whole country


def _thematique_key(value: str) -> str:
    """A filter value: a family ("mobilite", "Mobilité") or one thématique, by value or label."""
    key = fold(" ".join(value.split()))
    for choice_value, label in (*FAMILIES, *THEMATIQUES):
        if key in (choice_value, fold(label)):
            return choice_value
    raise ValueError(f"thématique inconnue « {value} » ; indiquez une famille (mobilite) ou une "
                     "thématique de data·inclusion (mobilite--louer-un-vehicule)")


def _thematique_label(key: str) -> str:
    return dict(FAMILIES).get(key) or dict(THEMATIQUES).get(key, key)


def _zone_keys(value: str) -> tuple[str, ...]:
    """A place of eligibility -> official codes as data·inclusion writes them: 'france', a
    commune's INSEE code, an EPCI's SIREN, a département's code; a région is its départements
    (the schema has no région code)."""
    value = " ".join(value.split())
    if fold(value) in (NATIONAL, "national", "99100", "toute la france"):
        return (NATIONAL,)
    reg = register()
    if re.fullmatch(r"\d{9}", value):
        if value in reg.epcis:
            return (value,)
        raise ValueError(f"intercommunalité inconnue « {value} »")
    if re.fullmatch(r"\d[\dABab]\d{3}", value):
        if reg.commune(value) is not None:
            return (value.upper(),)
        raise ValueError(f"commune inconnue « {value} »")
    department = reg.department(value)
    if department is not None:
        return (department.code,)
    region = reg.region(value)
    if region is not None and not value.isdigit():
        return tuple(d.code for d in reg.departments_of_region(region.code))
    epci = reg.epci(value)
    if epci is not None:
        return (epci.code,)
    try:
        return (_commune_key(value),)
    except ValueError:
        raise ValueError(f"territoire inconnu « {value} » ; indiquez « france », une région, un "
                         "département (29), une intercommunalité (SIREN) ou une commune "
                         "(code INSEE ou nom)") from None


def _zone_label(code: str) -> str:
    reg = register()
    if code == NATIONAL:
        return "France entière"
    if code in reg.departments:
        return reg.departments[code].label
    if code in reg.epcis:
        return reg.epcis[code].name
    return _commune_label(code)


ACTOR_TYPES = (
    ("commune", "Commune"),
    ("departement", "Département"),
    ("region", "Région"),
    ("etat", "État"),
    ("association", "Association"),
    ("entreprise", "Entreprise"),
    ("collectif", "Collectif"),
    ("autre", "Autre"),
)

SCALES = (
    ("quartier", "Quartier"),
    ("commune", "Commune"),
    ("intercommunalite", "Intercommunalité"),
    ("departement", "Département"),
    ("region", "Région"),
    ("national", "National"),
)

# Measured results (issue 26): what practitioners publish as outcomes ("29 % de sorties
# positives contre 25 % attendues", "4,6/5"), as data that readers can filter and compare.
INDICATOR_KINDS = (
    ("sorties-positives", "Sorties positives (emploi ou formation)"),
    ("personnes-accompagnees", "Personnes accompagnées"),
    ("satisfaction", "Satisfaction"),
    ("cout-par-personne", "Coût par personne"),
    ("delai", "Délai"),
    ("autre", "Autre"),
)
INDICATOR_UNITS = (("%", "%"), ("personnes", "personnes"), ("€", "€"), ("/5", "/5"),
                   ("jours", "jours"))
SOURCE_TYPES = (
    ("etude-impact", "Étude d'impact"),
    ("evaluation-externe", "Évaluation externe"),
    ("bilan-interne", "Bilan interne"),
    ("enquete-satisfaction", "Enquête de satisfaction"),
)
# The highest value each bounded unit allows (a percentage over 100 is a typo).
UNIT_MAXIMUM = {"%": 100.0, "/5": 5.0}


def _yes_key(value: str) -> str:
    """`has_results=1`: "1" (or oui, true) filters; "0" (or non) does not filter."""
    key = fold(value)
    if key in ("1", "oui", "true", "yes", "on"):
        return "1"
    if key in ("0", "non", "false", "no", "off"):
        return ""
    raise ValueError("indiquez 1 pour ne garder que les fiches avec des résultats mesurés")


def _yes_label(key: str) -> str:
    return "Avec résultats mesurés" if key == "1" else key


def _check_indicator(item: dict[str, Any]) -> None:
    """One indicator's coherence: bounded units within their bounds, a period in order."""
    item["kind"] = item.get("kind") or "autre"  # the filters and /resultats group by kind
    top = UNIT_MAXIMUM.get(str(item.get("unit") or ""))
    for name, label in (("value", "Valeur"), ("target", "Objectif")):
        number = item.get(name)
        if top is not None and number is not None and number > top:
            unit = "un pourcentage" if item["unit"] == "%" else "une note sur 5"
            raise ValueError(f"« {label} » : {unit} ne dépasse pas {top:g} ({number:g} saisi)")
    start, end = item.get("period_start"), item.get("period_end")
    if start and end and end < start:
        raise ValueError(f"la fin de la période ({end}) est avant son début ({start})")


INDICATOR_PARTS: tuple[Field, ...] = (
    Field("label", "Intitulé", Kind.SHORT, required=True, max_length=200,
          hint="Ce qui a été mesuré, en clair : « Sorties positives vers l'emploi »."),
    Field("kind", "Type d'indicateur", Kind.CHOICE, choices=INDICATOR_KINDS,
          facet=Facet("indicator_kind", title="Type de résultat mesuré")),
    Field("value", "Valeur", Kind.NUMBER, required=True, minimum=0, maximum=1e12,
          hint="Un nombre : 29 ou 4,6."),
    Field("unit", "Unité", Kind.CHOICE, choices=INDICATOR_UNITS),
    Field("target", "Objectif", Kind.NUMBER, minimum=0, maximum=1e12,
          hint="La valeur attendue, si un objectif était fixé."),
    Field("population", "Population mesurée", Kind.SHORT, max_length=200,
          hint="Qui a été mesuré : « habitants des QPV accompagnés »."),
    Field("population_n", "Effectif (N)", Kind.NUMBER, minimum=0, maximum=1e9, integer=True,
          hint="Le nombre de personnes sur lequel porte la mesure."),
    Field("period_start", "Début de la période", Kind.DATE, hint="AAAA-MM-JJ"),
    Field("period_end", "Fin de la période", Kind.DATE, hint="AAAA-MM-JJ"),
    Field("source_type", "Source", Kind.CHOICE, choices=SOURCE_TYPES,
          facet=Facet("source_type", title="Source des résultats")),
    Field("response_rate", "Taux de réponse (%)", Kind.NUMBER, minimum=0, maximum=100,
          hint="Pour une enquête : la part des personnes interrogées qui ont répondu."),
    Field("source_url", "Lien vers la source", Kind.URL, max_length=500,
          hint="L'étude ou le bilan en ligne, s'il est public."),
)

FIELDS: tuple[Field, ...] = (
    Field("title", "Titre", Kind.SHORT, required=True, boost=5.0, max_length=200,
          hint="Un titre qui dit l'action et le lieu, par exemple « Accueil en mairie de Brest ».",
          aliases=("titre", "bf_titre")),
    Field("summary", "Résumé", Kind.SHORT, boost=2.0, max_length=500,
          hint="Deux phrases au plus : ce qui a été fait, pour qui.", aliases=("resume",)),
    Field("context", "Contexte / Description", Kind.LONG,
          hint="D'où part l'initiative : le problème constaté, le territoire, le public.",
          aliases=("description", "contexte"), section="recit"),
    Field("stakes", "Enjeux", Kind.LONG, hint="Ce que l'initiative cherche à changer.",
          aliases=("enjeux",), section="recit"),
    Field("convictions", "Convictions", Kind.LONG,
          hint="Les partis pris et principes qui ont guidé l'action.", aliases=("convictions",),
          section="recit"),
    Field("method", "Méthodologie mise en place", Kind.LONG,
          hint="Les étapes, les outils, qui a été impliqué et comment.",
          aliases=("methodologie mise en place", "methodologie"), section="recit"),
    Field("results", "Réalisations", Kind.LONG,
          hint="Ce qui a été produit et les résultats observés, chiffres compris.",
          aliases=("realisations", "resultats"), section="recit"),
    Field("contacts", "Comment contacter cette initiative ?", Kind.LONG, max_length=2_000,
          hint="Une adresse de contact ou une personne référente.",
          aliases=("comment contacter cette initiative", "contact"), section="contact"),
    Field("actor_name", "Nom de l'acteur", Kind.SHORT, boost=3.0, max_length=200,
          hint="La structure ou la personne qui porte l'initiative.",
          aliases=("nom de l'acteur", "nom de l acteur"), section="porteur"),
    Field("sheet_author", "Auteur de la fiche", Kind.SHORT, boost=1.0, max_length=200,
          aliases=("auteur de la fiche",), section="porteur"),
    Field("actor_type", "Type d'acteur", Kind.CHOICE, searchable=False, choices=ACTOR_TYPES,
          hint="Le type de structure qui porte l'initiative.",
          aliases=("type d'acteurs qui propose cette initiative", "type d'acteur",
                   "type d'acteurs"), section="porteur",
          facet=Facet("actor_type")),
    Field("scale", "Échelle d'action", Kind.CHOICE, searchable=False, choices=SCALES,
          hint="Le territoire sur lequel l'action se déploie.",
          aliases=("echelle d'action", "echelle"), section="territoire",
          facet=Facet("scale")),
    # The place: a commune of the official register (kb/territories), from which the EPCI,
    # département and région are derived; scales above the commune name their territory.
    Field("city", "Commune", Kind.SHORT, boost=3.0, max_length=120, aliases=("ville",),
          hint="La commune où l'initiative est menée : tapez son nom, puis choisissez-la.",
          section="territoire"),
    Field("commune_code", "Code INSEE de la commune", Kind.SHORT, searchable=False,
          max_length=5, hint="Déduit de la commune choisie (29019 pour Brest).",
          facet=Facet("commune", normalise=_commune_key, label_of=_commune_label,
                      column="commune_code", aliases=("city",), title="Commune"),
          section="territoire"),
    Field("epci", "Intercommunalité", Kind.SHORT, searchable=False, max_length=200,
          hint="Déduite de la commune ; sinon son nom ou son numéro SIREN.",
          facet=Facet("epci", normalise=_territory_key(
              "epci", "intercommunalité inconnue", "son numéro SIREN (242900314) ou son nom exact "
              "(Brest Métropole)"), label_of=_territory_label("epcis")), section="territoire"),
    Field("department", "Département", Kind.SHORT, boost=3.0, max_length=80,
          hint="Déduit de la commune ; sinon son code (29) ou son nom (Finistère).",
          aliases=("departement",),
          facet=Facet("department", normalise=_territory_key(
              "department", "département inconnu", "son code (29) ou son nom (Finistère)"),
              label_of=_territory_label("departments")),
          section="territoire"),
    Field("region", "Région", Kind.SHORT, searchable=False, max_length=40,
          hint="Déduite de la commune ou du département ; sinon son nom.",
          facet=Facet("region", normalise=_territory_key(
              "region", "région inconnue", "son code (53) ou son nom (Bretagne)"),
              label_of=_territory_label("regions")),
          section="territoire"),
    Field("tags", "Mots-clés", Kind.LIST, boost=4.0, max_length=60,
          hint="Quelques mots-clés, un par ligne ou séparés par des virgules : accueil, numérique…",
          aliases=("mot clef de l'action", "mots-cles", "mots cles", "mot-cle"),
          facet=Facet("tag", normalise=_tag_key)),
    Field("partners", "Partenaires associés", Kind.LIST, boost=1.0, max_length=200,
          hint="Un partenaire par ligne.", aliases=("partenaires associes", "partenaires"),
          section="porteur"),
    Field("website", "Lien web", Kind.URL, searchable=False, max_length=500,
          hint="Adresse commençant par http:// ou https://.",
          aliases=("lien web si existant", "lien web", "site web"), section="contact"),
    Field("further_reading", "Pour aller plus loin", Kind.LONG,
          hint="Documents, articles, guides à lire.", aliases=("pour aller plus loin",),
          section="contact"),
    # data·inclusion's vocabulary (its enums imported from the package), last so that CSV
    # columns written before keep their place:
    # what problem the initiative lifts, for whom, and how to orient a person to it.
    Field("thematiques", "Thématiques", Kind.MULTI, boost=2.0, max_length=120,
          choices=THEMATIQUES, groups=FAMILIES,
          hint="Les freins que l'initiative aide à lever (vocabulaire de data·inclusion).",
          facet=Facet("thematique", normalise=_thematique_key, label_of=_thematique_label,
                      title="Thématique"),
          section="orientation"),
    Field("publics", "Publics", Kind.MULTI, boost=1.0, max_length=120, choices=PUBLICS,
          exclusive=di.Public.TOUS_PUBLICS.value,
          hint="À qui elle s'adresse ; « Tous publics » seul quand elle n'en vise aucun en "
               "particulier.",
          facet=Facet("public", title="Public"), section="orientation"),
    Field("modes_mobilisation", "Comment la mobiliser", Kind.MULTI, searchable=False,
          max_length=120, choices=MODES_MOBILISATION, section="orientation",
          hint="Ce qu'il faut faire pour y orienter une personne."),
    Field("mobilisable_par", "Mobilisable par", Kind.MULTI, searchable=False, max_length=120,
          choices=MOBILISABLE_PAR, section="orientation",
          hint="Les usagers eux-mêmes, les professionnels qui les accompagnent, ou les deux."),
    Field("lien_mobilisation", "Lien de mobilisation", Kind.URL, searchable=False,
          max_length=500, hint="Le formulaire ou la page où demander le service.",
          section="orientation"),
    Field("mobilisation_precisions", "Précisions sur la mobilisation", Kind.LONG,
          max_length=2_000, hint="Les pièces à fournir, la personne à demander, les délais.",
          section="orientation"),
    Field("conditions_acces", "Conditions d'accès", Kind.LONG, max_length=2_000,
          hint="Les prérequis ou justificatifs demandés.", section="orientation"),
    Field("frais", "Frais", Kind.CHOICE, searchable=False, choices=FRAIS,
          hint="Gratuit ou payant pour la personne.", section="orientation"),
    Field("zone_eligibilite", "Zone d'éligibilité", Kind.MULTI, searchable=False,
          max_length=120, item_keys=_zone_keys, item_label=_zone_label,
          hint="Où habiter pour y avoir droit : « france », une région, un département (29), "
               "une intercommunalité ou une commune ; un par ligne.",
          section="orientation"),
    # Results and lessons learned (issue 26).
    Field("indicators", "Résultats mesurés", Kind.RECORDS, searchable=False,
          parts=INDICATOR_PARTS, check=_check_indicator, record_name="indicateur",
          hint="Les chiffres mesurés : un indicateur par ligne, avec sa période, la population "
               "mesurée et la source.",
          facet=Facet("has_results", normalise=_yes_key, label_of=_yes_label,
                      title="Résultats mesurés"),
          section="resultats"),
    Field("strengths", "Points forts", Kind.LONG, aliases=("points forts", "les points forts"),
          hint="Ce qui a le mieux marché, et pourquoi.", section="resultats"),
    Field("improvements", "Axes d'amélioration", Kind.LONG,
          aliases=("axes d'amelioration", "les axes d'amelioration"),
          hint="Ce que vous feriez autrement.", section="resultats"),
    Field("spreading", "Conditions pour essaimer", Kind.LONG,
          aliases=("conditions pour essaimer", "essaimage"),
          hint="Ce qu'il faut réunir pour refaire l'initiative ailleurs.", section="resultats"),
)

# The form's groups, in order: short enough to follow on a phone, one story per group.
SECTIONS: tuple[tuple[str, str, str], ...] = (  # (key, French title, what to write there)
    ("essentiel", "L'essentiel", "Le titre, deux phrases de résumé et des mots-clés."),
    ("recit", "Le récit de l'initiative",
     "Ce qui s'est passé, avec vos mots. Tous ces champs sont facultatifs."),
    ("resultats", "Résultats et enseignements",
     "Ce qui a été mesuré (avec la période, la population et la source) et ce que vous en "
     "retenez. Facultatif."),
    ("porteur", "Qui la porte", "La structure qui porte l'initiative et ses partenaires."),
    ("territoire", "Où", "L'échelle d'action et le lieu."),
    ("orientation", "Orientation",
     "Pour quels freins et quels publics, et comment y orienter une personne."),
    ("contact", "Contact et ressources", "Comment joindre l'initiative, où en lire plus."),
)

FIELDS_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
FIELD_NAMES: tuple[str, ...] = tuple(FIELDS_BY_NAME)
MAX_LIST_ITEMS = 50
MAX_RECORDS = 30


def sections() -> list[tuple[str, str, str, list[Field]]]:
    """(key, title, hint, fields) for each section, fields in declaration order."""
    return [(key, title, hint, [f for f in FIELDS if f.section == key])
            for key, title, hint in SECTIONS]


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NOT_IN_URL = re.compile(r"[\s\"<>\\`]")  # never unencoded in a URL (RFC 3986)


def empty_data() -> dict[str, Any]:
    return {f.name: f.empty() for f in FIELDS}


def clean_value(f: Field, value: Any) -> Any:
    """Normalise one value or raise ValueError with a French message."""
    if value is None:
        return f.empty()
    if f.kind is Kind.RECORDS:
        return _clean_records(f, value)
    if f.kind is Kind.NUMBER:
        return _clean_number(f, value)
    if f.kind is Kind.DATE:
        return _clean_date(value)
    if f.kind is Kind.MULTI:
        return _clean_keys(f, value)
    if f.kind is Kind.LIST:
        items: list[str] = []
        for item in _text_items(f, value, "doit être une liste de textes"):
            if item.casefold() not in {i.casefold() for i in items}:
                items.append(item)
        if len(items) > MAX_LIST_ITEMS:
            raise ValueError(f"au plus {MAX_LIST_ITEMS} éléments")
        return items
    if not isinstance(value, str):
        raise ValueError("doit être un texte")
    value = _CONTROL.sub("", value).replace("\r\n", "\n").strip()
    if f.kind is not Kind.LONG:
        value = " ".join(value.split())
    if len(value) > f.max_length:
        raise ValueError(f"fait au plus {f.max_length} caractères")
    if f.kind is Kind.CHOICE and value and value not in f.choice_values:
        raise ValueError("valeur inconnue ; valeurs possibles : " + ", ".join(f.choice_values))
    if f.kind is Kind.URL and value:
        if _NOT_IN_URL.search(value):
            # RFC 3986 has no unencoded space, quote or angle bracket: a link that holds
            # one was pasted with text around it, and would be cut or broken on every output.
            raise ValueError(f"« {f.label} » : une adresse ne contient ni espace ni guillemet "
                             "(ni < > \\ `) ; collez l'adresse seule")
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"« {f.label} » doit être une adresse http:// ou https:// valide")
    return value


def _clean_records(f: Field, value: Any) -> list[dict[str, Any]]:
    """A RECORDS value: a list of objects (or its JSON text, from a CSV cell); each part
    cleaned as declared, blank items (an empty row of the form) dropped. Errors name the item
    and the part: "indicateur 2, « Valeur » : « 29 pour cent » n'est pas un nombre"."""
    if isinstance(value, str):
        if not value.strip():
            return []
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError("doit être une liste JSON d'objets") from None
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError("doit être une liste d'objets")
    parts = f.parts_by_name
    items: list[dict[str, Any]] = []
    for number, raw in enumerate(value, start=1):
        where = f"{f.record_name} {number}"
        unknown = [str(k) for k in raw if k not in parts]
        if unknown:
            raise ValueError(f"{where} : champ inconnu « {unknown[0]} » ; champs possibles : "
                             + ", ".join(parts))
        if all(raw.get(p.name) in (None, "") for p in f.parts):
            continue
        item: dict[str, Any] = {}
        for part in f.parts:
            try:
                given = raw.get(part.name)
                if part.kind is Kind.CHOICE and isinstance(given, str) and given.strip():
                    given = part.choice_key(given)  # its value or its French label
                item[part.name] = clean_value(part, given)
            except ValueError as exc:
                raise ValueError(f"{where}, « {part.label} » : {exc}") from None
            if part.required and item[part.name] in (None, ""):
                raise ValueError(f"{where}, « {part.label} » : ce champ est obligatoire")
        if f.check is not None:
            try:
                f.check(item)
            except ValueError as exc:
                raise ValueError(f"{where} : {exc}") from None
        items.append(item)
    if len(items) > MAX_RECORDS:
        raise ValueError(f"au plus {MAX_RECORDS} éléments")
    return items


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _clean_number(f: Field, value: Any) -> int | float | None:
    """A JSON number or a written one ("4,6", "1 250"); integral values stored as integers."""
    if value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("doit être un nombre")
    if isinstance(value, str):
        text = re.sub(r"[\s\u00a0\u202f]", "", value).replace(",", ".")
        if not _NUMBER.fullmatch(text):
            raise ValueError(f"« {value.strip()[:40]} » n'est pas un nombre (écrivez par exemple "
                             "29 ou 4,6)")
        value = float(text)
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError("doit être un nombre")
    if f.integer and not number.is_integer():
        raise ValueError("doit être un nombre entier")
    if f.minimum is not None and number < f.minimum:
        raise ValueError(f"doit être au moins {f.minimum:g}")
    if f.maximum is not None and number > f.maximum:
        raise ValueError(f"ne dépasse pas {f.maximum:g}")
    number = round(number, 4)
    return int(number) if number.is_integer() else number


def _clean_date(value: Any) -> str | None:
    if value == "":
        return None
    text = value.strip() if isinstance(value, str) else ""
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValueError(f"« {str(value)[:40]} » n'est pas une date au format AAAA-MM-JJ "
                         "(par exemple 2024-06-30)") from None


def _text_items(f: Field, value: Any, not_a_list: str) -> list[str]:
    """The items of a LIST or MULTI value (a list, or one text split on new lines, commas and
    semicolons), each on one line, empty ones dropped; ValueError (French) otherwise."""
    if isinstance(value, str):
        value = re.split(r"[\n,;]", value)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(not_a_list)
    items = [" ".join(_CONTROL.sub("", item).split()) for item in value]
    if any(len(item) > f.max_length for item in items):
        raise ValueError(f"chaque élément fait au plus {f.max_length} caractères")
    return [item for item in items if item]


def _clean_keys(f: Field, value: Any) -> list[str]:
    """A MULTI value: each item given as its key or its label -> keys, without repeats."""
    keys: list[str] = []
    for item in _text_items(f, value, "doit être une liste de valeurs"):
        found = f.item_keys(item) if f.item_keys is not None else (f.choice_key(item),)
        keys.extend(k for k in found if k not in keys)
    if len(keys) > MAX_LIST_ITEMS * 2:  # a région expands to its départements
        raise ValueError(f"au plus {MAX_LIST_ITEMS * 2} éléments")
    if f.exclusive and f.exclusive in keys and len(keys) > 1:
        raise ValueError(f"« {f.choice_label(f.exclusive)} » ne va pas avec d'autres valeurs")
    return keys


def validate(data: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Return cleaned data for the declared fields or raise ValidationError.

    Unknown keys are errors (a typo must not be silently dropped). With `partial`, only
    the given fields are cleaned and required fields may be absent.
    """
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for key in data:
        if key not in FIELDS_BY_NAME:
            errors[key] = "champ inconnu"
    for f in FIELDS:
        if partial and f.name not in data:
            continue
        try:
            cleaned[f.name] = clean_value(f, data.get(f.name))
        except ValueError as exc:
            errors[f.name] = str(exc)
            continue
        if f.required and not cleaned[f.name]:
            errors[f.name] = "ce champ est obligatoire"
    if errors:
        raise ValidationError(errors)
    return cleaned
