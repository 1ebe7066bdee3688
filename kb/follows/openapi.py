"""OpenAPI paths of the follows endpoints (registered into /api/openapi.json at init)."""

from __future__ import annotations

from typing import Any


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR = {"$ref": "#/components/schemas/Error"}


def follow_paths() -> dict[str, Any]:
    follow = {"type": "object", "properties": {
        "id": {"type": "integer"},
        "kind": {"type": "string", "enum": ["tag", "territory", "search", "sheet"]},
        "label": {"type": "string"}, "params": {"type": "object"},
        "created_at": {"type": "string", "format": "date-time"}}}
    auth = {"401": _json("Sans jeton", ERROR)}
    return {
        "/api/v1/follows": {
            "get": {"summary": "Mes suivis", "security": [{"bearer": []}], "responses": {
                "200": _json("Suivis", {"type": "object", "properties": {
                    "items": {"type": "array", "items": follow}}}), **auth}},
            "post": {"summary": "Suivre un mot-clé, un territoire ou une recherche",
                     "description": "Un seul e-mail récapitulatif par personne et par période "
                                    "(semaine par défaut), aucun quand rien n'a changé.",
                     "security": [{"bearer": []}],
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "type": "object", "properties": {
                             "tag": {"type": "string"}, "territory": {"type": "string"},
                             "q": {"type": "string"}}}}}},
                     "responses": {"201": _json("Suivi créé (ou déjà existant)", follow),
                                   "422": _json("Rien à suivre, ou territoire inconnu", ERROR),
                                   **auth}}},
        "/api/v1/follows/{id}": {"delete": {
            "summary": "Ne plus suivre", "security": [{"bearer": []}],
            "parameters": [{"name": "id", "in": "path", "required": True,
                            "schema": {"type": "integer"}}],
            "responses": {"204": {"description": "Suivi retiré"},
                          "404": _json("Suivi inconnu", ERROR), **auth}}}}
