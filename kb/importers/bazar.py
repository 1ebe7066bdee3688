"""Parse a YesWiki/Bazar plain-text dump into clean sheet data.

The dump is dirty (see ../shared/seeds/003_*.txt): titles are repeated, paragraphs and list
items are duplicated (sometimes with a word injected), spam lines are injected, labels vary,
free values don't fit our vocabularies. Parsing is pure: it returns sheets and a report per
sheet; writing them is the importer's job.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from kb.importers.tag_thematiques import thematiques_for_tags
from kb.sheets.fields import FIELDS, FIELDS_BY_NAME, Field, Kind, clean_value, empty_data
from kb.territories.places import complete, find_communes, parse_place_text
from kb.territories.register import Commune, name_key, register
from kb.text import fold

OTHER_ACTOR = "precisez autre acteur"  # "Précisez autre acteur": the type is 'autre', named here
NARRATIVE = {"context", "stakes", "convictions", "method", "results"}
LONG_FIELDS = {f.name for f in FIELDS if f.kind is Kind.LONG}
URL_RE = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)


def label_key(line: str) -> str:
    return " ".join(fold(line).replace("’", "'").strip().rstrip("?:").split())


LABELS: dict[str, str] = {}
for _f in FIELDS:
    for _alias in (_f.name, _f.label, *_f.aliases):
        LABELS[label_key(_alias)] = _f.name
LABELS[OTHER_ACTOR] = OTHER_ACTOR


@dataclass
class ParsedSheet:
    line: int  # where the sheet starts in the dump, for messages
    data: dict[str, Any]
    spam: list[str] = field(default_factory=list)
    duplicates_dropped: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class _RawSheet:
    line: int
    title: str
    values: dict[str, list[str]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)


def _awaits_choice(sheet: _RawSheet, label: str | None, line: str) -> bool:
    """'Département' right after 'Echelle d'action' is the scale's value, not a label."""
    f = FIELDS_BY_NAME.get(label or "")
    if f is None or f.kind is not Kind.CHOICE or sheet.values.get(f.name):
        return False
    key = label_key(line)
    return any(key in (value, label_key(text)) for value, text in f.choices)


def _split(lines: list[str]) -> list[_RawSheet]:
    sheets: list[_RawSheet] = []
    current: _RawSheet | None = None
    label: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not line:
            i += 1
            continue
        key = LABELS.get(label_key(line))
        if key is not None and current is not None and not _awaits_choice(current, label, line):
            label = key
            current.order.append(key)
            current.values.setdefault(key, [])
            i += 1
            continue
        # A title: a non-label line (usually doubled) followed by a narrative label that cannot
        # continue the current sheet (the sheet is past its narrative part, or has that label).
        j = i + 1
        while j < len(lines) and lines[j].strip() == line:
            j += 1
        next_key = LABELS.get(label_key(lines[j])) if j < len(lines) else None
        starts_sheet = current is None or (
            next_key in NARRATIVE
            and (next_key in current.order or any(k not in NARRATIVE for k in current.order))
        )
        if starts_sheet:
            current = _RawSheet(line=i + 1, title=line)
            sheets.append(current)
            label = None
            i = j
            continue
        if label is not None and current is not None:
            current.values[label].append(line)
        i += 1
    return sheets


def _norm(line: str) -> str:
    return " ".join(fold(line).split())


def _learn_spam(sheets: list[_RawSheet]) -> set[str]:
    """Short lines injected into the long text of several sheets are spam (e.g. 'FloodCRM')."""
    seen: Counter[str] = Counter()
    for sheet in sheets:
        lines = {_norm(v) for k in LONG_FIELDS for v in sheet.values.get(k, [])}
        seen.update(v for v in lines if len(v.split()) <= 3 and not URL_RE.search(v))
    return {line for line, count in seen.items() if count >= 2}


def _is_spam(line: str, spam_terms: set[str]) -> bool:
    norm = _norm(line)
    if norm in spam_terms:
        return True
    squashed = norm.replace(" ", "")
    return any(term.replace(" ", "") in squashed for term in spam_terms if len(term) >= 5)


def _near_duplicate(line: str, kept: list[str]) -> bool:
    """Same line again, or the same line with a word injected ('cerLiberté tain.e.s')."""
    norm = _norm(line)
    for other in kept:
        if norm == other:
            return True
        if abs(len(norm) - len(other)) < 20 and len(norm) > 40 \
                and SequenceMatcher(None, norm, other, autojunk=False).ratio() > 0.96:
            return True
    return False


def _markdown(lines: list[str]) -> str:
    """Dump lines to Markdown: '- - x' is a nested item, '-x' an item, other lines paragraphs."""
    blocks: list[str] = []
    for line in lines:
        nested = re.match(r"^-\s*-\s*(.*)$", line)
        item = re.match(r"^-\s*(.*)$", line)
        if nested:
            text, is_item = "  - " + nested.group(1), True
        elif item and item.group(1):
            text, is_item = "- " + item.group(1), True
        else:
            text, is_item = line, False
        if is_item and blocks and blocks[-1].lstrip().startswith("- "):
            blocks[-1] += "\n" + text
        else:
            blocks.append(text)
    return "\n\n".join(blocks)


def _valid(f: Field, value: str) -> bool:
    """The value passes the field's own rule (kb/sheets/fields.py)."""
    try:
        clean_value(f, value)
    except ValueError:
        return False
    return True


def _choice(f: Field, value: str, report: ParsedSheet) -> str:
    if not value:
        return ""
    key = label_key(value)
    for choice_value, choice_label in f.choices:
        if key in (choice_value, label_key(choice_label)):
            return choice_value
    report.warnings.append(f"{f.label} « {value} » inconnu : remplacé par « autre »"
                           if "autre" in f.choice_values else
                           f"{f.label} « {value} » inconnu : laissé vide")
    return "autre" if "autre" in f.choice_values else ""


def _clean_sheet(raw: _RawSheet, spam_terms: set[str]) -> ParsedSheet:
    report = ParsedSheet(line=raw.line, data=empty_data())
    data = report.data
    data["title"] = raw.title
    kept: list[str] = [_norm(raw.title)]
    values: dict[str, list[str]] = {}
    for key, lines in raw.values.items():
        values[key] = []
        for line in lines:
            if _is_spam(line, spam_terms):
                report.spam.append(line)
                continue
            f = FIELDS_BY_NAME.get(key)
            if f is not None and f.kind is Kind.CHOICE:
                # "Commune" as the actor type and again as the scale is two answers, not a
                # repeated paragraph: choices are never dropped as duplicates.
                values[key].append(line)
                continue
            if f is not None and f.kind is Kind.LIST:
                if _norm(line) not in {_norm(v) for v in values[key]}:
                    values[key].append(line)
                else:
                    report.duplicates_dropped += 1
                continue
            if _near_duplicate(line, kept):
                report.duplicates_dropped += 1
                continue
            kept.append(_norm(line))
            values[key].append(line)

    for f in FIELDS:
        lines = values.get(f.name, [])
        if f.name == "title" or not lines:
            continue
        if f.kind is Kind.LONG:
            data[f.name] = _markdown(lines)
        elif f.kind is Kind.LIST:
            data[f.name] = [" ".join(v.split()) for v in lines]
        elif f.kind is Kind.CHOICE:
            data[f.name] = _choice(f, lines[0], report)
        elif f.kind is Kind.URL:
            url = lines[0].strip()
            if re.match(r"^https?://[^/\s]+\.[^/\s]+", url) and _valid(f, url):
                data[f.name] = url
            else:  # a bad link must not cost the whole sheet
                report.warnings.append(f"Lien web « {url} » invalide : ignoré")
        else:
            data[f.name] = " ".join(" ".join(lines).split())

    other_actor = " ".join(values.get(OTHER_ACTOR, []))
    if other_actor and fold(other_actor) not in fold(data["actor_name"]):
        data["actor_name"] = (f"{data['actor_name']} ({other_actor})"
                              if data["actor_name"] else other_actor)
    _actor_type(data, other_actor, report)
    _place_territory(data, report)
    _scale(data, report)
    if not data.get("thematiques"):  # keywords that name one thématique (docs/tag-thematiques.md)
        data["thematiques"] = thematiques_for_tags(data.get("tags") or [])
    for key in ("contacts",):
        if raw.values.get(key) and not data[key]:
            report.warnings.append("Contact uniquement constitué de spam : laissé vide")
    for name, f in FIELDS_BY_NAME.items():
        if f.max_length and isinstance(data[name], str) and len(data[name]) > f.max_length:
            data[name] = data[name][: f.max_length]
            report.warnings.append(f"{f.label} tronqué à {f.max_length} caractères")
    return report


# Institutions named in a title or by "Précisez autre acteur", and the actor type they are.
_INSTITUTIONS = (
    (re.compile(r"\b(sous-)?pr[ée]fecture|\bSGAR\b|services? de l'[ée]tat", re.IGNORECASE), "etat"),
    (re.compile(r"\bconseil d[ée]partemental|\bd[ée]partement (du|de la|de l'|des|de) ",
                re.IGNORECASE), "departement"),
    (re.compile(r"\b[cC]onseil r[ée]gional|\b[rR][ée]gion [A-ZÎÉ]"), "region"),
    (re.compile(r"\bmairie|\bville de ", re.IGNORECASE), "commune"),
    (re.compile(r"\bassociation\b", re.IGNORECASE), "association"),
)
# The first answer of the wiki's lists, often left as it was: "Commune", "Quartier".
FORM_DEFAULTS = {"actor_type": "commune", "scale": "quartier"}


def _institution(text: str) -> str:
    for pattern, actor_type in _INSTITUTIONS:
        if pattern.search(text):
            return actor_type
    return ""


def _actor_type(data: dict[str, Any], other_actor: str, report: ParsedSheet) -> None:
    """The actor type a reader would give: the dump's, unless it is missing (then the
    institution named, or « autre ») or the form's default contradicted by the title."""
    given = data["actor_type"]
    named = _institution(data["title"])
    label = FIELDS_BY_NAME["actor_type"].choice_label
    if not given:
        guessed = _institution(other_actor) or named or ("autre" if data["actor_name"] else "")
        if guessed:
            data["actor_type"] = guessed
            source = f"« {other_actor} »" if other_actor and _institution(other_actor) \
                else "le titre" if named else "l'acteur nommé"
            report.warnings.append(f"Type d'acteur absent : « {label(guessed)} » d'après {source}")
    elif given == FORM_DEFAULTS["actor_type"] and named and named != given:
        data["actor_type"] = named
        report.warnings.append(f"Type d'acteur « {label(given)} » (réponse par défaut du "
                               f"formulaire) contredit par le titre : « {label(named)} »")


_INTERCOMMUNAL = re.compile(r"communaut[ée] (de communes|d'agglom[ée]ration|urbaine)|"
                            r"intercommunal|m[ée]tropole", re.IGNORECASE)


def _scale(data: dict[str, Any], report: ParsedSheet) -> None:
    """The scale a reader would give when the dump has none, or a place cannot hold it."""
    label = FIELDS_BY_NAME["scale"].choice_label
    scale = data["scale"]
    if scale in ("quartier", "commune") and not data["city"] and \
            (data["department"] or data["region"]):
        wider = "departement" if data["department"] else "region"
        data["scale"] = wider
        report.warnings.append(f"Échelle « {label(scale)} » impossible sans commune : "
                               f"« {label(wider)} », le territoire que nomme la fiche")
        return
    if scale:
        return
    texts = " ".join(str(data[f.name]) for f in FIELDS if f.kind in (Kind.LONG, Kind.SHORT))
    by_actor = {"commune": "commune", "departement": "departement", "region": "region"}
    if data["actor_type"] in by_actor:
        guessed, why = by_actor[data["actor_type"]], "le type d'acteur"
    elif _INTERCOMMUNAL.search(texts):
        guessed, why = "intercommunalite", "la fiche, qui parle d'intercommunalité"
    elif data["city"]:
        guessed, why = "commune", "la commune"
    elif data["department"]:
        guessed, why = "departement", "le département"
    elif data["region"]:
        guessed, why = "region", "la région"
    else:
        return
    data["scale"] = guessed
    report.warnings.append(f"Échelle absente : « {label(guessed)} » d'après {why}")


def _named_territories(data: dict[str, Any], with_context: bool = True) -> str:
    """The sheet's own words where a département or région may be named (case kept)."""
    parts = [data["title"], data["actor_name"], data["contacts"], *data["partners"],
             data["context"] if with_context else ""]
    return unicodedata.normalize("NFKD", " ".join(parts)).encode("ascii", "ignore").decode()


def _names(text: str, name: str) -> bool:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = r"[\s\-']+".join(re.escape(w) for w in re.split(r"[\s\-']+", plain))
    return re.search(rf"(?<![\w-]){words}(?![\w-])", text) is not None


_CAPITALISED = re.compile(r"\b[A-Z][a-z]{2,}(?:[\s\-'](?:[A-Z][a-z]+|sur|sous|en|de|du|des|la|le|les|"
                          r"l|d|lès|lez)){0,4}")


# Capitalised words of institutions and common nouns, never read as a commune's name even
# where a village has it ("Ville" is in the Bas-Rhin).
_NOT_PLACES = {"ville", "mairie", "commune", "communaute", "agence", "maison", "centre",
               "conseil", "departement", "region", "prefecture", "sous", "services", "service",
               "france", "espace", "association", "laboratoire", "lab", "design", "etat", "pays",
               "quartier", "zone", "saint", "sainte", "le", "la", "les", "grand", "plan",
               "force", "projet", "action", "accueil"}


def _other_communes(text: str, own: str) -> list[Commune]:
    """Communes named in the sheet's text: capitalised names only one commune has."""
    reg = register()
    found: dict[str, Commune] = {}
    for match in _CAPITALISED.finditer(text):
        words = [w for w in re.split(r"[\s\-']", match.group()) if w]
        for start in range(len(words)):
            if not words[start][0].isupper() or name_key(words[start]) in _NOT_PLACES \
                    and start + 1 == len(words):
                continue
            for end in range(len(words), start, -1):  # the longest name first
                candidate = " ".join(words[start:end])
                key = name_key(candidate)
                if len(candidate) < 4 or key == name_key(own) or key in _NOT_PLACES \
                        or reg.department(candidate) or reg.region(candidate):
                    continue  # territories are read by name elsewhere
                named = reg.communes_named(candidate)
                if len(named) == 1:
                    found[named[0].code] = named[0]
                    break
    return list(found.values())


def _place_territory(data: dict[str, Any], report: ParsedSheet) -> None:
    """The commune (INSEE code), EPCI, département and région a reader would give.

    '106 rue Pierre Corneille, Lyon' -> Lyon; 'vendée' -> département 85; 'Bretagne' ->
    région 53. An ambiguous name ('Saint Denis': 11, 30, 93, 974) is resolved only by a
    postcode, the sheet's own département, or a département or région the sheet names that
    only one of the candidates is in; otherwise it stays unresolved, with a warning.
    """
    city = data["city"]
    if "," in city and re.match(r"^\d", city):
        data["city"] = city.rsplit(",", 1)[1].strip()
        report.warnings.append(f"Ville « {city} » : adresse réduite à « {data['city']} »")
    parsed = parse_place_text(data["city"])
    reg = register()
    territory = reg.department(parsed.name) or reg.region(parsed.name) if parsed.name else None
    if territory is not None and not parsed.postcode and not any(
            territory.code in (c.department, c.region) for c in find_communes(parsed.name)):
        # "Ville : vendée", "Ville : Bretagne": a département or a région, not the small
        # communes of the same name elsewhere.
        data["department" if territory.kind == "departement" else "region"] = territory.code
        report.warnings.append(f"Ville « {data['city']} » est "
                               + (f"un département : {territory.label}"
                                  if territory.kind == "departement"
                                  else f"une région : {territory.label}"))
        data["city"] = ""
    elif parsed.name and not data["department"] and not parsed.postcode:
        candidates = find_communes(parsed.name)
        if len(candidates) > 1:
            text = _named_territories(data)
            named = [c for c in candidates
                     if _names(text, reg.departments[c.department].name)
                     or _names(text, reg.regions[c.region].name)]
            why = "est nommé dans la fiche"
            if len({c.code for c in named}) != 1:
                # The sheet's other places: a commune that only one candidate shares a
                # département with ("Mairie de Saint-Denis, partenaire : Ville de Bobigny").
                others = _other_communes(_named_territories(data, with_context=False),
                                         parsed.name)
                named = [c for c in candidates if c.department in {o.department for o in others}]
                why = "est celui des autres lieux de la fiche (" + ", ".join(
                    sorted({o.name for o in others if o.department in
                            {c.department for c in named}})) + ")"
            if len({c.code for c in named}) == 1:
                commune = named[0]
                data["department"] = commune.department
                report.warnings.append(
                    f"« {parsed.name} » désigne plusieurs communes : "
                    f"{reg.departments[commune.department].label} {why}, "
                    f"{commune.label} retenue")
    completed, warnings = complete(data, strict=False)
    data.update(completed)
    report.warnings.extend(f"Ville {w}" if w.startswith("«") else w for w in warnings)


def parse_bazar_text(text: str) -> list[ParsedSheet]:
    lines = text.replace("\r\n", "\n").split("\n")
    raw_sheets = _split(lines)
    spam_terms = _learn_spam(raw_sheets)
    return [_clean_sheet(raw, spam_terms) for raw in raw_sheets]
