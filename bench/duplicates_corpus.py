"""Deterministic synthetic sheets and the labelled duplicates evaluation set.

Text is sampled from the word frequencies of the seed files (so common French pairs such as
"de la" are as common as in real sheets), titles from the field's own vocabulary, cities from
a list. `eval_set()` returns sheets with a family label: two sheets of the same family are
duplicates, two sheets of different families are not.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The seeds live in ../shared beside the repository; the raw dump is also kept in tests/data.
SEEDS = ROOT.parent / "shared" / "seeds"
DUMP = ROOT / "tests" / "data" / "bazar_seed.txt"


def _words(text: str) -> list[str]:
    return [w.strip() for w in text.split(",") if w.strip()]


NARRATIVE = ("context", "stakes", "convictions", "method", "results")

CITIES = _words("""
Brest, Quimper, Rennes, Nantes, Angers, Tours, Orléans, Lyon, Grenoble, Valence, Annecy,
Chambéry, Perpignan, Montpellier, Nîmes, Béziers, Toulouse, Albi, Rodez, Cahors, Auch, Tarbes,
Pau, Bayonne, Dax, Agen, Bordeaux, Périgueux, Limoges, Tulle, Guéret, Poitiers, Niort,
Angoulême, Saintes, Rochefort, Vannes, Lorient, Saint-Brieuc, Lannion, Morlaix, Laval, Le Mans,
Alençon, Caen, Cherbourg, Rouen, Évreux, Dieppe, Amiens, Lille, Arras, Calais, Dunkerque,
Valenciennes, Reims, Troyes, Metz, Nancy, Épinal, Strasbourg, Colmar, Mulhouse, Belfort,
Besançon, Dijon, Mâcon, Nevers, Auxerre, Bourges, Châteauroux, Blois, Chartres, Versailles,
Créteil, Bobigny, Nanterre, Saint-Denis, Montreuil, Aubervilliers, Clermont-Ferrand, Aurillac,
Le Puy, Moulins, Vichy, Saint-Étienne, Roanne, Villeurbanne, Vénissieux, Gap, Digne, Nice,
Toulon, Marseille, Avignon, Arles, Ajaccio, Bastia, Mende, Privas, Foix, Carcassonne, Narbonne,
Sète, Saint-Gaudens, Saint-Méen-le-Grand, Redon, Vitré, Fougères, Ploërmel, Pontivy, Carhaix,
Douarnenez, Concarneau, Landerneau, Lamballe, Dinan, Saint-Malo""")

ACTIONS = _words("""
Accueil, Guichet, Maison, Espace, Médiation, Accompagnement, Permanence, Atelier, Parcours,
Réseau, Plateforme, Coaching, Diagnostic, Cartographie, Visites, Forum, Laboratoire, Tiers-lieu,
Bus, Point""")
OBJECTS = _words("""
numérique, social, emploi, insertion, jeunes, seniors, familles, habitants, usagers,
allocataires, démarches, logement, santé, mobilité, handicap, réfugiés, aidants, bénévoles,
agents, entreprises, formation, alimentation, énergie""")
QUALIFIERS = _words("""
itinérant, partagé, solidaire, de, proximité, participatif, inclusif, mobile, unique,
coopératif, renforcé, accessible, intercommunal, citoyen""")
ACTOR_KINDS = ("Mairie de", "CCAS de", "Association", "Centre social de")
TEMPLATES = [
    "Cette fiche a été rédigée dans le cadre du programme régional d'échange de pratiques. "
    "Le projet a été mené en partenariat avec les services de l'État, le conseil départemental "
    "et les associations du territoire, avec le soutien financier du fonds d'innovation sociale.",
    "Les éléments présentés ici sont issus d'un entretien avec l'équipe projet et des documents "
    "transmis par la structure. Ils ont été relus et validés par les porteurs de l'initiative "
    "avant publication sur la plateforme.",
    "Le dispositif s'inscrit dans la stratégie nationale de prévention et de lutte contre la "
    "pauvreté et dans le schéma départemental d'amélioration de l'accessibilité des services "
    "au public, signé par le préfet et le président du conseil départemental.",
]
SYNONYMS = {
    "accueil": "réception", "mairie": "hôtel de ville", "usagers": "habitants",
    "amélioration": "transformation", "démarche": "projet", "espace": "lieu",
    "numérique": "digital", "accompagnement": "suivi", "insertion": "retour à l'emploi",
    "maison": "pôle", "services": "prestations", "relation": "lien", "quartier": "secteur",
}


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[list[str], list[float]]:
    """Seed words and their cumulative frequencies."""
    words: Counter[str] = Counter()
    for path in sorted(SEEDS.glob("*.txt")) or [DUMP]:
        words.update(re.findall(r"[^\W\d_]+(?:['’][^\W\d_]+)?", path.read_text(encoding="utf-8")))
    vocab = sorted(words)
    return vocab, list(itertools.accumulate(float(words[w]) for w in vocab))


def sentence(rng: random.Random, low: int = 8, high: int = 22) -> str:
    vocab, cumulative = _vocabulary()
    words = rng.choices(vocab, cum_weights=cumulative, k=rng.randint(low, high))
    return " ".join(words).capitalize() + "."


def paragraph(rng: random.Random, sentences: int) -> str:
    return " ".join(sentence(rng) for _ in range(sentences))


def synthetic_sheet(rng: random.Random, city: str | None = None,
                    actor: str | None = None) -> dict[str, Any]:
    city = city or rng.choice(CITIES)
    title = f"{rng.choice(ACTIONS)} {rng.choice(OBJECTS)} {rng.choice(QUALIFIERS)} à {city}"
    data: dict[str, Any] = {
        "title": title,
        "summary": sentence(rng, 15, 30),
        "actor_name": actor or f"{rng.choice(ACTOR_KINDS)} {city}",
        "actor_type": rng.choice(["commune", "association", "departement", "collectif"]),
        "scale": rng.choice(["quartier", "commune", "intercommunalite", "departement"]),
        "city": city,
        "department": str(rng.randint(1, 95)).zfill(2),
        "tags": rng.sample(OBJECTS, 3),
        "partners": [f"{rng.choice(['CAF', 'France Travail', 'CPAM', 'Mission locale'])} {city}"],
        "contacts": f"contact@{strip_accents(city).lower().replace(' ', '-')}.fr",
    }
    for name in NARRATIVE:
        if rng.random() < 0.85:
            data[name] = paragraph(rng, rng.randint(2, 6))
    if data.get("method") and rng.random() < 0.5:  # as in real sheets: Markdown lists
        data["method"] = "\n".join(f"- {sentence(rng, 5, 12)}" for _ in range(rng.randint(2, 5)))
    return data


def demo_sheets() -> list[dict[str, Any]]:
    backup = json.loads((ROOT / "fixtures" / "demo.json").read_text(encoding="utf-8"))
    return [sheet["revisions"][-1]["data"] for sheet in backup["sheets"]]


def dump_sheets() -> list[dict[str, Any]]:
    """The raw seed dump, parsed: the same initiatives as the demo, from another source."""
    from kb.importers.bazar import parse_bazar_text

    text = DUMP.read_text(encoding="utf-8")
    return [parsed.data for parsed in parse_bazar_text(text)]


# --- variants -------------------------------------------------------------------------------

def reword_title(rng: random.Random, title: str) -> str:
    words = title.split()
    words = [SYNONYMS.get(w.lower(), w) if rng.random() < 0.7 else w for w in words]
    if rng.random() < 0.5 and len(words) > 3:
        cut = rng.randint(1, len(words) - 1)
        words = words[cut:] + [":"] + words[:cut]
    prefix = rng.choice(["", "Retour d'expérience : ", "Focus sur ", "Initiative : "])
    return (prefix + " ".join(words))[:200]


def edit_paragraphs(rng: random.Random, text: str, rate: float) -> str:
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s]
    out: list[str] = []
    for s in sentences:
        roll = rng.random()
        if roll < rate / 2:
            continue  # dropped
        if roll < rate:
            out.append(sentence(rng))  # rewritten
        else:
            words = s.split()
            if len(words) > 6 and rng.random() < rate:
                words[rng.randrange(len(words))] = rng.choice(["très", "aussi", "notamment"])
            out.append(" ".join(words))
    if rng.random() < rate:
        out.insert(rng.randint(0, len(out)), sentence(rng))
    return " ".join(out)


def variant(rng: random.Random, data: dict[str, Any], kind: str) -> dict[str, Any]:
    new = json.loads(json.dumps(data))
    if kind in ("reworded", "edited", "combo"):
        new["title"] = reword_title(rng, new["title"])
    if kind in ("edited", "combo"):
        for name in (*NARRATIVE, "summary"):
            if new.get(name):
                new[name] = edit_paragraphs(rng, new[name], 0.25)
    if kind in ("accents", "combo"):
        new = {k: strip_accents(v) if isinstance(v, str) and k not in ("actor_type", "scale")
               else v for k, v in new.items()}
    if kind in ("reordered", "combo", "accents"):
        values = [new.get(n, "") for n in NARRATIVE]
        rng.shuffle(values)
        new.update(zip(NARRATIVE, values, strict=True))
    if kind == "partial":
        filled = [n for n in NARRATIVE if new.get(n)]
        keep = set(rng.sample(filled, max(1, (len(filled) + 1) // 2)))
        for name in NARRATIVE:
            if name not in keep:
                new[name] = ""
        new["partners"], new["further_reading"] = [], ""
    if kind == "heavy":  # the same story told again: half the sentences rewritten
        new["title"] = reword_title(rng, new["title"])
        for name in (*NARRATIVE, "summary"):
            if new.get(name):
                new[name] = edit_paragraphs(rng, new[name], 0.5)
    if kind == "reworded":
        for name in NARRATIVE:
            if new.get(name):
                new[name] = edit_paragraphs(rng, new[name], 0.1)
    return new


# --- hard negatives -------------------------------------------------------------------------

def same_place_other_initiative(rng: random.Random, data: dict[str, Any]) -> dict[str, Any]:
    new = synthetic_sheet(rng, city=data.get("city") or rng.choice(CITIES),
                          actor=data.get("actor_name") or None)
    for key in ("department", "contacts", "actor_type", "website", "partners", "sheet_author"):
        if data.get(key):
            new[key] = data[key]
    return new


def same_title_other_content(rng: random.Random, data: dict[str, Any]) -> dict[str, Any]:
    new = synthetic_sheet(rng)
    words = data["title"].split()
    rng.shuffle(words)
    new["title"] = data["title"] if rng.random() < 0.5 else " ".join(words)
    return new


def templated(rng: random.Random, template: str) -> dict[str, Any]:
    new = synthetic_sheet(rng)
    new["context"] = template + " " + paragraph(rng, 1)
    new["further_reading"] = TEMPLATES[(TEMPLATES.index(template) + 1) % len(TEMPLATES)]
    return new


@dataclass
class Labelled:
    data: dict[str, Any]
    family: int
    kind: str  # original, a variant kind, or a negative kind


def eval_set(seed: int = 20261122, synthetic_originals: int = 150) -> list[Labelled]:
    rng = random.Random(seed)
    items: list[Labelled] = []
    family = 0
    originals = demo_sheets()
    dumps = {strip_accents(d["title"]).lower().replace("’", "'"): d for d in dump_sheets()}
    variant_kinds = ("reworded", "accents", "reordered", "edited", "partial", "combo", "heavy")
    for data in originals:
        family += 1
        items.append(Labelled(data, family, "original"))
        key = strip_accents(data["title"]).lower().replace("’", "'")
        match = next((d for k, d in dumps.items() if k[:18] == key[:18]), None)
        if match is not None:
            items.append(Labelled(match, family, "other-source"))
        for kind in rng.sample(variant_kinds, 3):
            items.append(Labelled(variant(rng, data, kind), family, kind))
    for _ in range(synthetic_originals):
        data = synthetic_sheet(rng)
        family += 1
        items.append(Labelled(data, family, "original"))
        for kind in rng.sample(variant_kinds, rng.randint(1, 2)):
            items.append(Labelled(variant(rng, data, kind), family, kind))
    # Hard negatives: each is its own family.
    bases = [i.data for i in items if i.kind == "original"]
    for data in bases[:14] + rng.sample(bases[14:], 60):
        family += 1
        items.append(Labelled(same_place_other_initiative(rng, data), family, "neg-same-place"))
    for data in bases[:14] + rng.sample(bases[14:], 40):
        family += 1
        items.append(Labelled(same_title_other_content(rng, data), family, "neg-same-title"))
    for template in TEMPLATES:
        for _ in range(12):
            family += 1
            items.append(Labelled(templated(rng, template), family, "neg-template"))
    return items


def corpus(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """`n` unrelated synthetic sheets (the background of the latency benchmark)."""
    rng = random.Random(seed)
    return [synthetic_sheet(rng) for _ in range(n)]
