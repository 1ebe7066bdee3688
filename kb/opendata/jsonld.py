"""schema.org description of a sheet page (JSON-LD), from its approved revision only."""

from __future__ import annotations

import json
from typing import Any

from markupsafe import Markup

from kb.sheets.fields import FIELDS_BY_NAME
from kb.sheets.indicators import indicators_of, kind_label, value_sentence
from kb.sheets.models import Sheet
from kb.sheets.serialize import sheet_url
from kb.territories.places import derive
from kb.timeutil import isoformat
from kb.urls import base_url


def sheet_schema(sheet: Sheet) -> dict[str, Any]:
    revision = sheet.approved_revision
    assert revision is not None, "only published sheets are described"
    data = revision.data
    base = base_url()
    obj: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "Article",
        "@id": sheet_url(sheet),
        "url": sheet_url(sheet),
        "headline": data.get("title", "")[:110],
        "name": data.get("title", ""),
        "inLanguage": "fr",
        "dateCreated": isoformat(sheet.created_at),
        "dateModified": isoformat(sheet.updated_at),
        "isAccessibleForFree": True,
        "publisher": {"@type": "Organization", "name": "Fiches initiatives", "url": base + "/"},
    }
    if data.get("summary"):
        obj["description"] = data["summary"]
    if data.get("tags"):
        obj["keywords"] = ", ".join(data["tags"])
        obj["about"] = [{"@type": "Thing", "name": tag} for tag in data["tags"]]
    if data.get("actor_name"):
        author: dict[str, Any] = {"@type": "Organization", "name": data["actor_name"]}
        if data.get("website"):
            author["url"] = data["website"]
        obj["author"] = author
    place = _place(data)
    if place:
        obj["spatialCoverage"] = place
    observations = [_observation(item) for item in indicators_of(data)]
    if observations:
        obj["mentions"] = observations
    return obj


def _observation(item: dict[str, Any]) -> dict[str, Any]:
    """A measured indicator as a schema.org Observation (value, unit, period, population)."""
    out: dict[str, Any] = {"@type": "Observation", "name": item.get("label", ""),
                           "value": item.get("value"),
                           "measuredProperty": {"@type": "Property", "name": kind_label(
                               item.get("kind", "")), "identifier": item.get("kind") or "autre"}}
    if item.get("unit"):
        out["unitText"] = item["unit"]
    if item.get("target") is not None:
        out["description"] = value_sentence(item)
    start, end = item.get("period_start"), item.get("period_end")
    if start or end:
        out["observationPeriod"] = f"{start or '..'}/{end or '..'}"
    if item.get("population"):
        out["observationAbout"] = {"@type": "Thing", "name": item["population"]}
    if item.get("population_n") is not None:  # the sample size, said as the page says it
        out["variableMeasured"] = f"N = {item['population_n']}"
    if item.get("source_url"):
        out["url"] = item["source_url"]
    return out


def _place(data: dict[str, Any]) -> dict[str, Any] | None:
    found = derive(data)
    city = found.city
    department = found.department.name if found.department else ""
    if not city and not department and not found.region:
        return None
    address: dict[str, Any] = {"@type": "PostalAddress", "addressCountry": "FR"}
    if city:
        address["addressLocality"] = city
    if department or found.region:
        address["addressRegion"] = department or (found.region.name if found.region else "")
    if found.commune and len(found.commune.postcodes) == 1:
        address["postalCode"] = found.commune.postcodes[0]
    scale = FIELDS_BY_NAME["scale"].choice_label(data.get("scale", ""))
    name = city or address["addressRegion"]
    place: dict[str, Any] = {"@type": "Place", "name": name, "address": address}
    if scale:
        place["description"] = f"Échelle : {scale}"
    return place


def sheet_jsonld(sheet: Sheet) -> Markup:
    """JSON for a <script type="application/ld+json">: '<', '>' and '&' escaped so that no
    text of the sheet can close the script element."""
    text = json.dumps(sheet_schema(sheet), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)
