"""Measured indicators (the `indicators` field, declared in kb/sheets/fields.py): how they
read in French, their small charts, the ones found in a sheet's free text, their CSV rows.

Charts are SVG written here, on the server: `role="img"` with the sentence that says the same
thing as its accessible name, and that sentence shown beside it too; no JavaScript.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from kb.sheets.fields import FIELDS_BY_NAME, UNIT_MAXIMUM, Field
from kb.text import fold

FIELD: Field = FIELDS_BY_NAME["indicators"]
PARTS = FIELD.parts_by_name
PART_NAMES: tuple[str, ...] = tuple(PARTS)
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
          "octobre", "novembre", "décembre")
NNBSP = "\u202f"  # between thousands, and before "%" (French typography)
# Why figures of different sheets are not set side by side as a ranking (/resultats).
NOT_COMPARABLE = (
    "Ces chiffres ne sont pas directement comparables : chaque initiative mesure sur sa propre "
    "période, auprès de son propre public (plus ou moins éloigné de l'emploi), avec sa propre "
    "définition (une « sortie positive » peut compter ou non les formations courtes) et sa "
    "propre source (une étude d'impact externe n'est pas une enquête de satisfaction à faible "
    "taux de réponse). Lisez-les avec leur période, leur effectif et leur source.")


def indicators_of(data: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [item for item in (data or {}).get("indicators") or [] if isinstance(item, dict)]


def number_text(value: Any) -> str:
    """4.6 -> "4,6"; 1250 -> "1 250" (narrow no-break space)."""
    if value is None or value == "":
        return ""
    number = float(value)
    if number.is_integer():
        return f"{int(number):,}".replace(",", NNBSP)
    whole, _, decimals = f"{number:,.2f}".rstrip("0").partition(".")
    return whole.replace(",", NNBSP) + "," + decimals


def with_unit(value: Any, unit: str) -> str:
    """A value and its unit as written in French: "29 %", "4,6/5", "163 personnes"."""
    text = number_text(value)
    if not text:
        return ""
    if unit == "/5":
        return f"{text}/5"
    if unit == "%":
        return f"{text}{NNBSP}%"
    return f"{text} {unit}".strip()


def date_text(iso: str | None) -> str:
    if not iso:
        return ""
    year, month, day = (int(p) for p in iso.split("-"))
    return f"{'1er' if day == 1 else day} {MONTHS[month - 1]} {year}"


def period_text(item: dict[str, Any]) -> str:
    start, end = item.get("period_start"), item.get("period_end")
    if start and end:
        return f"du {date_text(start)} au {date_text(end)}"
    if start:
        return f"depuis le {date_text(start)}"
    if end:
        return f"jusqu'au {date_text(end)}"
    return ""


def kind_label(key: str) -> str:
    return PARTS["kind"].choice_label(key or "autre")


def source_text(item: dict[str, Any]) -> str:
    """ "enquête de satisfaction, N = 48, 45 % de réponses" """
    parts = []
    if item.get("source_type"):
        parts.append(PARTS["source_type"].choice_label(item["source_type"]).lower())
    if item.get("population_n") is not None:
        parts.append(f"N = {number_text(item['population_n'])}")
    if item.get("response_rate") is not None:
        parts.append(f"{with_unit(item['response_rate'], '%')} de réponses")
    return ", ".join(parts)


def value_sentence(item: dict[str, Any]) -> str:
    """The text equivalent of a chart: "Sorties positives : 29 %, pour un objectif de 25 %"."""
    unit = item.get("unit") or ""
    text = f"{item.get('label', '')} : {with_unit(item.get('value'), unit)}"
    if item.get("target") is not None:
        text += f", pour un objectif de {with_unit(item['target'], unit)}"
    return text


def line(item: dict[str, Any]) -> str:
    """One indicator on one line: what diffs compare, indicator by indicator."""
    bits = [value_sentence(item), kind_label(item.get("kind", ""))]
    population = item.get("population") or ""
    if population:
        bits.append(f"population : {population}")
    for text in (period_text(item), source_text(item), item.get("source_url") or ""):
        if text:
            bits.append(text)
    return " · ".join(bits)


def as_text(value: Any) -> str:
    return "\n".join(line(item) for item in value or [] if isinstance(item, dict))


# --- charts --------------------------------------------------------------------------------

BAR = "#1d4f91"  # 8.6:1 on white
TRACK = "#e3e8ef"
TARGET = "#9b1c1c"  # the target mark, 7.6:1 on white


def _top(items: Iterable[dict[str, Any]], unit: str) -> float:
    """The end of the axis: the unit's bound, or the largest value or target plus a margin."""
    if unit in UNIT_MAXIMUM:
        return UNIT_MAXIMUM[unit]
    largest = max((float(n) for item in items for n in (item.get("value"), item.get("target"))
                   if n is not None), default=0.0)
    return largest * 1.15 or 1.0


def bar_svg(item: dict[str, Any]) -> Markup:
    """Value against target: a bar for the value, a mark for the target, on the unit's scale."""
    width, height, pad = 240, 26, 2
    inner = width - 2 * pad
    top = _top([item], item.get("unit") or "")
    value = float(item.get("value") or 0)
    x_value = pad + inner * min(value / top, 1.0)
    label = escape(value_sentence(item))
    out = [f'<svg class="indicator-bar" role="img" aria-label="{label}" viewBox="0 0 {width} '
           f'{height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
           f"<title>{label}</title>",
           f'<rect x="{pad}" y="7" width="{inner}" height="12" rx="2" fill="{TRACK}"/>',
           f'<rect x="{pad}" y="7" width="{x_value - pad:.1f}" height="12" rx="2" fill="{BAR}"/>']
    if item.get("target") is not None:
        x_target = pad + inner * min(float(item["target"]) / top, 1.0)
        out.append(f'<rect x="{x_target - 1.5:.1f}" y="1" width="3" height="24" fill="{TARGET}"/>')
    out.append("</svg>")
    return Markup("".join(out))


@dataclass
class Dot:
    label: str  # the row's name (the sheet's title)
    item: dict[str, Any]
    url: str = ""


def dot_plot_svg(dots: list[Dot], unit: str, title: str) -> Markup:
    """One kind of indicator across sheets: a row per indicator, a dot at its value, a mark at
    its target, on one axis. The table beside it is its text equivalent."""
    # A narrow drawing: read on a phone without zooming; a desktop shows it larger.
    row, left, width, right_pad = 30, 8, 420, 24
    axis_y = 20
    height = axis_y + row * len(dots) + 10
    top = _top((d.item for d in dots), unit)
    span = width - left - right_pad

    def x(number: float) -> float:
        return left + span * min(max(number, 0.0) / top, 1.0)

    values = [float(d.item["value"]) for d in dots]
    summary = (f"{title} : {len(dots)} valeur{'s' if len(dots) > 1 else ''}"
               + (f", de {with_unit(min(values), unit)} à {with_unit(max(values), unit)}"
                  if values else "") + ". Le détail suit dans le tableau.")
    label = escape(summary)
    out = [f'<svg class="dot-plot" role="img" aria-label="{label}" viewBox="0 0 {width} {height}" '
           f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">',
           f"<title>{label}</title>"]
    for tick in range(5):
        number = top * tick / 4
        tx = x(number)
        out.append(f'<line x1="{tx:.1f}" y1="{axis_y - 4}" x2="{tx:.1f}" y2="{height - 6}" '
                   f'stroke="#c5ccd6" stroke-width="1"/>')
        anchor = "start" if tick == 0 else "end" if tick == 4 else "middle"
        out.append(f'<text x="{tx:.1f}" y="{axis_y - 8}" font-size="11" text-anchor="{anchor}" '
                   f'fill="#333">{escape(with_unit(round(number, 2), unit))}</text>')
    for index, dot in enumerate(dots):
        y = axis_y + row * index + row / 2
        out.append(f'<text x="{left}" y="{y - 6:.1f}" font-size="11" fill="#333">'
                   f"{escape(_short(dot.label, 64))}</text>")
        if dot.item.get("target") is not None:
            tx = x(float(dot.item["target"]))
            out.append(f'<rect x="{tx - 1.5:.1f}" y="{y - 2:.1f}" width="3" height="12" '
                       f'fill="{TARGET}"/>')
        out.append(f'<circle cx="{x(float(dot.item["value"])):.1f}" cy="{y + 4:.1f}" r="5" '
                   f'fill="{BAR}"/>')
    out.append("</svg>")
    return Markup("".join(out))


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


# --- indicators found in the free text ------------------------------------------------------

# A number from its first digit only (the lookbehind), with bounded repeats: any text is read in
# linear time (a long run of digits once took minutes). "1 250", "4,6", "29".
_NUM = r"(?<![\d,.])\d{1,9}(?:[ \u00a0\u202f]\d{3}){0,3}(?:[,.]\d{1,3})?"
# The phrase after a number: up to punctuation or the next number (greedy, bounded: linear
# time), then cut in Python before a word that starts another clause ("contre 25 % attendues").
_PHRASE = r"[^\n.;:!?()«»\"“”\d]"
_STOP = re.compile(r"\s+(?:contre|pour|et|soit|sur|grâce|grace|pendant)\b", re.IGNORECASE)
_PERCENT = re.compile(rf"({_NUM})\s?%\s+(?:des?\s+|d['’]\s*)?({_PHRASE}{{3,70}})",
                      re.IGNORECASE)
_TARGET = re.compile(rf"\s*contre\s+({_NUM})\s?%\s+(?:attendu|visé|prévu|escompté)\w*",
                     re.IGNORECASE)
_SCORE = re.compile(rf"({_NUM})\s?/\s?5\b")
_PEOPLE = re.compile(rf"({_NUM})\s+(personnes|bénéficiaires|participants|participantes|habitants"
                     rf"|jeunes|familles|coachés|stagiaires)\b({_PHRASE}{{0,60}})",
                     re.IGNORECASE)
_COST = re.compile(rf"({_NUM})\s?(?:€|euros)\s+(par (?:personne|bénéficiaire|participant))",
                   re.IGNORECASE)
_MARKUP = re.compile(r"[*_`#>\[\]]")
FREE_TEXT_FIELDS = ("summary", "results", "context", "method", "strengths", "improvements")
MAX_SUGGESTIONS = 8
# Figures are read in the first characters of each text only: a sheet's results come early, and
# the editor page stays fast whatever is pasted (20,000 characters of figures: ~0.1 s).
SCANNED = 4_000


def _number(text: str) -> float:
    value = float(re.sub(r"[ \u00a0\u202f]", "", text).replace(",", "."))
    return int(value) if value.is_integer() else value


def _kind_of(words: str) -> str:
    key = fold(words)
    if "sortie" in key or "emploi" in key:
        return "sorties-positives"
    if "satisf" in key or "note" in key:
        return "satisfaction"
    if any(w in key for w in ("accompagn", "engag", "suivi", "accueilli", "coach")):
        return "personnes-accompagnees"
    return "autre"


@dataclass
class Suggestion:
    found: str  # the words as written in the sheet
    item: dict[str, Any]  # the indicator offered, the author completes it

    @property
    def json(self) -> str:
        import json

        return json.dumps(self.item, ensure_ascii=False)


_TRAILING = re.compile(r"(?:\s+(?:un|une|le|la|les|des|de|du|vers|à|au|aux|en|dans))+$",
                       re.IGNORECASE)
_RATIO = re.compile(r"\s*sur\s*\d")  # "3 coachés sur 10": a share, not a count


def _words(text: str) -> str:
    """The phrase after a number, as a label: spaces folded, dangling small words dropped."""
    return _TRAILING.sub("", " ".join(text.split()))


def _plausible(words: str) -> bool:
    """A label of words in lower case (OCR'd titles in capitals and digit runs are noise)."""
    return bool(re.search(r"[a-zà-ÿ]{3}", words)) and not words[:1].isdigit()


def _cut(m: re.Match[str], group: int) -> tuple[str, int]:
    """The phrase of `group` up to a clause word, and where it then ends in the text."""
    phrase = m.group(group)
    stop = _STOP.search(phrase)
    if stop:
        phrase = phrase[:stop.start()]
    phrase = phrase.rstrip(" ,")
    return phrase, m.start(group) + len(phrase)


def _found(text: str) -> Iterator[tuple[int, Suggestion]]:
    taken_until = -1  # the end of the last span read (a target is not an indicator)
    for m in _PERCENT.finditer(text):
        phrase, end = _cut(m, 2)
        words = _words(phrase)
        if not _plausible(words) or m.start() < taken_until:
            continue
        item: dict[str, Any] = {"label": words[:1].upper() + words[1:], "kind": _kind_of(words),
                                "value": _number(m.group(1)), "unit": "%"}
        target = _TARGET.match(text, end)
        if target:
            item["target"] = _number(target.group(1))
            end = target.end()
        taken_until = end
        yield m.start(), Suggestion(" ".join(text[m.start():end].split()), item)
    for m in _SCORE.finditer(text):
        yield m.start(), Suggestion(m.group(0), {"label": "Note de satisfaction",
                                                 "kind": "satisfaction",
                                                 "value": _number(m.group(1)), "unit": "/5"})
    for m in _PEOPLE.finditer(text):
        if _RATIO.match(text, m.end(2)):
            continue
        phrase, end = _cut(m, 3)
        words = _words(f"{m.group(2)}{phrase}")
        yield m.start(), Suggestion(" ".join(text[m.start():end].split()), {
            "label": words[:1].upper() + words[1:], "kind": _kind_of(words) if
            _kind_of(words) != "autre" else "personnes-accompagnees",
            "value": _number(m.group(1)), "unit": "personnes"})
    for m in _COST.finditer(text):
        yield m.start(), Suggestion(" ".join(m.group(0).split()), {
            "label": f"Coût {m.group(2)}", "kind": "cout-par-personne",
            "value": _number(m.group(1)), "unit": "€"})


def suggestions(data: dict[str, Any]) -> list[Suggestion]:
    """Indicators written in the sheet's texts ("29 % de sorties positives contre 25 %
    attendues") that its indicators do not hold yet: offered to the author, who adds each one
    (or not) and completes its period, population and source. Never added by themselves."""
    have = set()
    for i in indicators_of(data):  # as typed in the form: maybe not a number yet
        try:
            have.add((float(str(i.get("value")).replace(",", ".")), i.get("unit") or ""))
        except ValueError:
            continue
    out: list[Suggestion] = []
    seen: set[tuple[float, str]] = set()
    for name in FREE_TEXT_FIELDS:
        text = _MARKUP.sub(" ", str(data.get(name) or "")[:SCANNED])
        for _, found in sorted(_found(text), key=lambda pair: pair[0]):
            key = (float(found.item["value"]), found.item["unit"])
            if key in have or key in seen:
                continue
            seen.add(key)
            out.append(found)
            if len(out) >= MAX_SUGGESTIONS:
                return out
    return out


def form_suggestions(form: Any) -> list[Suggestion]:
    """Suggestions for the sheet form as it is filled (template global)."""
    try:
        data = form.sheet_data()
    except Exception:  # a form without the sheet's fields (never in practice)
        return []
    return suggestions(data)


# --- CSV -----------------------------------------------------------------------------------

CSV_COLUMNS = ("sheet_slug", "sheet_title", "sheet_url", "position", *PART_NAMES,
               "kind_label", "source_type_label")


def csv_rows(obj: dict[str, Any]) -> Iterator[list[str]]:
    """A sheet object's indicators, one row each (cells not yet spreadsheet-safe)."""
    for position, item in enumerate(obj.get("indicators") or [], start=1):
        cells = [obj.get("slug", ""), obj.get("title", ""), obj.get("url", ""), str(position)]
        for name in PART_NAMES:
            value = item.get(name)
            cells.append("" if value is None else str(value))
        cells.append(kind_label(item.get("kind", "")))
        cells.append(PARTS["source_type"].choice_label(item["source_type"])
                     if item.get("source_type") else "")
        yield cells
