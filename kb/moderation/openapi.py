"""OpenAPI paths of the moderation and freshness endpoints (merged by kb/api/openapi.py)."""

from __future__ import annotations

from typing import Any

from kb.moderation.models import ReportReason


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR = {"$ref": "#/components/schemas/Error"}
SLUG = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}
MODERATORS = {"401": _json("Sans jeton", ERROR), "403": _json("Réservé aux modérateurs", ERROR)}
TOO_MANY = {"429": _json("Trop de requêtes (limite par client ou par compte)", ERROR)}


def moderation_paths() -> dict[str, Any]:
    sheet_row = {"type": "object", "properties": {
        "sheet": {"type": "string"}, "title": {"type": "string"},
        "last_reviewed_at": {"type": "string", "format": "date-time"},
        "review_due_at": {"type": "string", "format": "date-time"}}}
    return {
        "/api/v1/sheets/{slug}/reports": {"post": {
            "summary": "Signaler une fiche (jeton facultatif)",
            "description": "Trois signalements « spam » de lecteurs distincts (comptes, ou "
                           "adresses anonymes hachées) masquent la fiche en attendant un "
                           "modérateur ; « outdated » prévient aussi ses contributeurs.",
            "parameters": [SLUG],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["reason"], "properties": {
                    "reason": {"type": "string", "enum": [r.value for r in ReportReason]},
                    "comment": {"type": "string", "maxLength": 2000,
                                "description": "Obligatoire pour « other »."}}}}}},
            "responses": {"201": _json("Signalement enregistré", {"type": "object", "properties": {
                "report": {"type": "integer"}, "sheet": {"type": "string"},
                "reason": {"type": "string"}, "sheet_state": {"type": "string"}}}),
                "404": _json("Fiche introuvable", ERROR),
                "422": _json("Motif inconnu, doublon de signalement", ERROR), **TOO_MANY}}},
        "/api/v1/sheets/{slug}/confirm": {"post": {
            "summary": "Confirmer « toujours à jour » (contributeurs de la fiche, modérateurs)",
            "security": [{"bearer": []}], "parameters": [SLUG],
            "responses": {"200": _json("Date de relecture remise à zéro", {
                "type": "object", "properties": {
                    "sheet": {"type": "string"}, "fresh": {"type": "boolean"},
                    "last_reviewed_at": {"type": "string", "format": "date-time"},
                    "review_due_at": {"type": "string", "format": "date-time"}}}),
                "401": _json("Sans jeton", ERROR),
                "403": _json("Ni contributeur de la fiche ni modérateur", ERROR)}}},
        "/api/v1/moderation/revisions": {"get": {
            "summary": "Révisions en attente, les plus anciennes d'abord (modérateurs)",
            "security": [{"bearer": []}],
            "parameters": [{"name": "type", "in": "query",
                            "schema": {"type": "string", "enum": ["new", "edit"]}},
                           {"name": "tag", "in": "query", "schema": {"type": "string"}},
                           {"name": "author", "in": "query", "schema": {"type": "string"}}],
            "responses": {"200": _json("File de relecture", {"type": "object", "properties": {
                "items": {"type": "array", "items": {"type": "object", "properties": {
                    "revision": {"type": "integer"}, "sheet": {"type": "string"},
                    "title": {"type": "string"},
                    "kind": {"type": "string", "enum": ["new", "edit"]},
                    "author": {"type": "string"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "comment": {"type": "string"}}}}}}), **MODERATORS}}},
        "/api/v1/moderation/reports": {"get": {
            "summary": "Signalements ouverts (modérateurs)", "security": [{"bearer": []}],
            "responses": {"200": _json("Signalements", {"type": "object", "properties": {
                "items": {"type": "array", "items": {"type": "object", "properties": {
                    "report": {"type": "integer"}, "sheet": {"type": "string"},
                    "sheet_state": {"type": "string"}, "reason": {"type": "string"},
                    "comment": {"type": "string"},
                    "created_at": {"type": "string", "format": "date-time"}}}}}}),
                **MODERATORS}}},
        "/api/v1/moderation/stale": {"get": {
            "summary": "Fiches à reprendre (aucun contributeur joignable) et à archiver "
                       "(délai de grâce dépassé) (modérateurs)",
            "security": [{"bearer": []}],
            "responses": {"200": _json("Files de fraîcheur", {"type": "object", "properties": {
                "stale": {"type": "array", "items": sheet_row},
                "archive_candidates": {"type": "array", "items": sheet_row}}}), **MODERATORS}}},
    }
