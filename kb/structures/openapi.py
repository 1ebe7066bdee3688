"""OpenAPI paths of the structures endpoints (registered into /api/openapi.json at init)."""

from __future__ import annotations

from typing import Any


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def structure_ref_schema() -> dict[str, Any]:
    """`structure` in every sheet object: the structure that carries it, or null."""
    return {"type": ["object", "null"], "description": "La structure qui porte la fiche.",
            "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                           "siret": {"type": ["string", "null"], "pattern": "^[0-9]{14}$"},
                           "url": {"type": "string", "format": "uri"}}}


def structure_paths() -> dict[str, Any]:
    structure = {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"},
        "siret": {"type": ["string", "null"], "pattern": "^[0-9]{14}$"},
        "type": {"type": ["string", "null"]},
        "networks": {"type": "array", "items": {"type": "string"},
                     "description": "Valeurs `reseaux_porteurs` du schéma data·inclusion."},
        "commune_code": {"type": ["string", "null"]},
        "website": {"type": ["string", "null"], "format": "uri"},
        "verified": {"type": "boolean"}, "url": {"type": "string", "format": "uri"}}}
    detail = {"allOf": [structure, {"type": "object", "properties": {
        "sheets": {"type": "array", "items": {"type": "object", "properties": {
            "slug": {"type": "string"}, "title": {"type": "string"}, "fresh": {"type": "boolean"},
            "review_due_at": {"type": "string", "format": "date-time"}}}},
        "members": {"type": "array", "items": {"type": "string"},
                    "description": "Noms publics des membres qui choisissent de s'afficher."}}}]}
    return {
        "/api/v1/structures": {"get": {
            "summary": "Les structures (données publiques)",
            "responses": {"200": _json("Structures", {"type": "object", "properties": {
                "items": {"type": "array", "items": structure}, "total": {"type": "integer"}}})}}},
        "/api/v1/structures/{id}": {"get": {
            "summary": "Une structure, ses fiches publiées et ses membres affichés",
            "parameters": [{"name": "id", "in": "path", "required": True,
                            "schema": {"type": "integer"}}],
            "responses": {"200": _json("La structure", detail),
                          "404": _json("Structure inconnue",
                                       {"$ref": "#/components/schemas/Error"})}}}}
