"""OpenAPI description of the similar-sheets endpoint (merged by kb/api/openapi.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kb.duplicates.similarity import FINGERPRINT_FIELDS, HIGH
from kb.sheets.fields import FIELDS_BY_NAME
from kb.wording import french_number


def _properties() -> dict[str, Any]:
    props: dict[str, Any] = {
        "title": {"type": "string", "maxLength": 300, "description": "Titre"},
        "text": {"type": "string", "maxLength": 20000,
                 "description": "Texte libre, lu comme la description (« context »)"},
    }
    for name in FINGERPRINT_FIELDS:
        if name != "title":
            f = FIELDS_BY_NAME[name]
            props[name] = {"type": "string", "maxLength": f.max_length, "description": f.label}
    props["limit"] = {"type": "integer", "minimum": 1, "maximum": 20, "default": 5}
    return props


def similar_path(json_response: Callable[[str, dict[str, Any]], dict[str, Any]],
                 ref: Callable[[str], dict[str, str]]) -> dict[str, Any]:
    props = _properties()
    responses = {
        "200": json_response("Fiches semblables", {"type": "object", "properties": {
            "items": {"type": "array", "items": {"type": "object", "properties": {
                "slug": {"type": "string"}, "title": {"type": "string"},
                "url": {"type": "string", "format": "uri"},
                "score": {"type": "number", "minimum": 0, "maximum": 1}}}}}}),
        "400": json_response("Un texte trop long", ref("Error"))}
    description = (
        "Les fiches publiées les plus proches, la plus proche d'abord ; score de 0 à 1, le "
        "même que celui de la file des doublons et de la relecture (affiché en %). Au-dessus "
        f"de {french_number(HIGH)}, il faut confirmer qu'il s'agit d'une autre initiative. Donnez le titre "
        "et le texte (« title », « text »), ou les champs de la fiche par leur nom : avec "
        "tous les champs, le score est exactement celui calculé à l'envoi de la fiche.")
    return {
        "get": {"summary": "Fiches publiées semblables (doublons)", "description": description,
                "parameters": [{"name": name, "in": "query", "schema": schema}
                               for name, schema in props.items()],
                "responses": responses},
        "post": {"summary": "Fiches publiées semblables, champs dans le corps",
                 "description": description + " POST : les mêmes paramètres dans un "
                                "formulaire (textes longs) ; n'enregistre rien.",
                 "requestBody": {"required": True, "content": {
                     "application/x-www-form-urlencoded": {
                         "schema": {"type": "object", "properties": props}}}},
                 "responses": responses},
    }
