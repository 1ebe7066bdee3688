"""OpenAPI paths of the questions endpoints (registered into /api/openapi.json at init)."""

from __future__ import annotations

from typing import Any


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR = {"$ref": "#/components/schemas/Error"}
SLUG = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}


def question_paths() -> dict[str, Any]:
    qa = {"type": "object", "properties": {
        "id": {"type": "integer"}, "question": {"type": "string"}, "purpose": {"type": "string"},
        "answer": {"type": "string"}, "asked_at": {"type": "string", "format": "date-time"},
        "answered_at": {"type": ["string", "null"], "format": "date-time"}}}
    return {"/api/v1/sheets/{slug}/questions": {
        "get": {"summary": "Questions et réponses publiées d'une fiche", "parameters": [SLUG],
                "responses": {"200": _json("Questions publiées (avec l'accord des deux parties, "
                                           "après modération)", {"type": "object", "properties": {
                                               "items": {"type": "array", "items": qa}}}),
                              "404": _json("Fiche introuvable", ERROR)}},
        "post": {"summary": "Poser une question précise à l'équipe (compte confirmé)",
                 "description": "La question est transmise par e-mail aux contributeurs de la "
                                "fiche et à son adresse de contact, sans révéler d'adresse. Une "
                                "question ouverte par personne et par fiche.",
                 "security": [{"bearer": []}], "parameters": [SLUG],
                 "requestBody": {"required": True, "content": {"application/json": {"schema": {
                     "type": "object", "required": ["question", "purpose"], "properties": {
                         "question": {"type": "string", "minLength": 15, "maxLength": 2000},
                         "purpose": {"type": "string", "minLength": 10, "maxLength": 1000,
                                     "description": "Ce que je cherche à débloquer"},
                         "publish_consent": {"type": "boolean", "default": False}}}}}},
                 "responses": {
                     "201": _json("Question transmise", {"type": "object", "properties": {
                         "id": {"type": "integer"}, "status": {"type": "string"}}}),
                     "401": _json("Sans jeton", ERROR),
                     "403": _json("Compte non confirmé ou bloqué", ERROR),
                     "404": _json("Fiche introuvable", ERROR),
                     "409": _json("Question déjà ouverte, ou personne à joindre", ERROR),
                     "422": _json("Champs manquants ou trop courts", ERROR),
                     "429": _json("Trop de questions en 24 heures", ERROR)}}}}
