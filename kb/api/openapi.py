"""The OpenAPI 3.1 document, with the sheet schema built from the field declaration."""

from __future__ import annotations

from typing import Any

from kb.sheets.fields import FIELDS, FIELDS_BY_NAME, Field, Kind
from kb.sheets.filters import PARAMS, openapi_parameters
from kb.territories.openapi import sheet_place_properties, territory_paths


def _field_schema(f: Field) -> dict[str, Any]:
    schema: dict[str, Any]
    if f.kind is Kind.LIST:
        schema = {"type": "array", "items": {"type": "string", "maxLength": f.max_length}}
    elif f.kind is Kind.CHOICE:
        schema = {"type": "string", "enum": ["", *f.choice_values]}
    elif f.kind is Kind.URL:
        schema = {"type": "string", "format": "uri", "maxLength": f.max_length}
    else:
        schema = {"type": "string", "maxLength": f.max_length}
    schema["title"] = f.label
    if f.kind is Kind.LONG:
        schema["description"] = "Markdown (CommonMark, sans HTML)."
    return schema


def sheet_input_schema(partial: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {f.name: _field_schema(f) for f in FIELDS},
    }
    schema["properties"]["comment"] = {"type": "string", "maxLength": 300}
    if partial:
        schema["properties"]["base_revision"] = {"type": "integer"}
        schema["required"] = ["base_revision"]
    else:
        schema["required"] = [f.name for f in FIELDS if f.required]
    return schema


def search_operation(json_response: Any, ref: Any) -> dict[str, Any]:
    """GET /api/v1/search (kb/search): French full-text search with facets."""
    params = [{"name": n, "in": "query", "schema": s, "description": d} for n, s, d in (
        ("q", {"type": "string", "maxLength": 500},
         "Mots cherchés (sans accents possible, fautes de frappe tolérées) ; \"expression\", "
         "-mot pour exclure, OR entre deux mots."),
        ("sort", {"type": "string", "enum": ["relevance", "updated", "freshness"]},
         "Pertinence (défaut), dernière mise à jour, ou fraîcheur (relue récemment)."),
        ("page", {"type": "integer", "minimum": 1}, "Page (20 résultats par page)."),
        ("per_page", {"type": "integer", "minimum": 1, "maximum": 100}, "Résultats par page."))]
    params += openapi_parameters()
    counts = {"type": "object", "additionalProperties": {"type": "integer"}}
    result = {"type": "object", "properties": {
        "items": {"type": "array", "items": {"type": "object", "properties": {
            "slug": {"type": "string"}, "title": {"type": "string"},
            "url": {"type": "string", "format": "uri"}, "score": {"type": "number"},
            "snippet": {"type": "string", "description": "Extrait HTML, <mark> autour des mots "
                                                         "trouvés (texte échappé)."},
            "fresh": {"type": "boolean", "description": "Faux quand la fiche est à actualiser."}}}},
        "total": {"type": "integer"},
        "facets": {"type": "object", "description": "Nombre de fiches par valeur, pour chaque "
                   "filtre (mêmes noms que les paramètres).", "properties": {
                       name: counts for name in PARAMS}},
        "facet_labels": {"type": "object", "description": "Libellé de chaque valeur de facette "
                         "(« Finistère (29) » pour department=29).", "properties": {
                             name: {"type": "object", "additionalProperties": {"type": "string"}}
                             for name in PARAMS}},
        "suggestion": {"type": ["string", "null"],
                       "description": "« Vouliez-vous dire » quand la recherche trouve peu."},
        "page": {"type": "integer"}, "per_page": {"type": "integer"},
        "message": {"type": ["string", "null"]}}}
    return {"summary": "Rechercher dans les fiches publiées", "parameters": params,
            "responses": {"200": json_response("Résultats, nombre et facettes", result),
                          "400": json_response("Filtre invalide", ref("Error")),
                          "503": json_response("Index en reconstruction", ref("Error"))}}


def openapi_document() -> dict[str, Any]:
    sheet = {
        "type": "object",
        "properties": {
            **{f.name: _field_schema(f) for f in FIELDS},
            "slug": {"type": "string"},
            "url": {"type": "string", "format": "uri"},
            "status": {"type": "string", "enum": ["approved", "pending", "rejected"]},
            "revision": {"type": "integer"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "last_reviewed_at": {"type": "string", "format": "date-time"},
            "review_due_at": {"type": "string", "format": "date-time"},
            "fresh": {"type": "boolean"},
            "state": {"type": "string", "enum": ["active", "hidden", "archived", "merged"]},
            **sheet_place_properties(),
        },
    }
    error = {"type": "object", "properties": {
        "error": {"type": "string"}, "message": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
        "choices": {"type": "object", "description": "Quand une commune est ambiguë : les "
                    "communes possibles (renvoyer l'une d'elles dans `commune_code`).",
                    "additionalProperties": {"type": "array", "items": {"type": "object"}}}}}

    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{name}"}

    def json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    slug_param = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}
    write = {"type": "object", "properties": {
        "slug": {"type": "string"}, "revision": {"type": "integer"},
        "status": {"type": "string"}}}
    query = [{"name": n, "in": "query", "schema": {"type": t}} for n, t in (
        ("page", "integer"), ("per_page", "integer"))] + openapi_parameters()
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Fiches initiatives — API", "version": "1.0.0",
                 "description": "Lecture publique des fiches publiées, ouverte à tout site "
                                "(CORS) ; écriture avec un jeton (`kb tokens create EMAIL`). "
                                "Données ouvertes : exports complets `/donnees/fiches.csv`, "
                                "`/donnees/fiches.json`, `/donnees/fiches.jsonl` et flux Atom "
                                "(voir `/donnees`)."},
        "externalDocs": {"description": "Données ouvertes : exports et flux",
                         "url": "/donnees"},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Sheet": sheet, "Error": error,
                        "SheetInput": sheet_input_schema(), "SheetPatch": sheet_input_schema(True)},
        },
        "paths": {
            "/api/v1/sheets": {
                "get": {"summary": "Fiches publiées", "parameters": query, "responses": {
                    "200": json_response("Une page de fiches", {"type": "object", "properties": {
                        "items": {"type": "array", "items": ref("Sheet")},
                        "total": {"type": "integer"}, "page": {"type": "integer"},
                        "per_page": {"type": "integer"}}}),
                    "400": json_response("Filtre invalide", ref("Error"))}},
                "post": {"summary": "Créer une fiche", "security": [{"bearer": []}],
                         "requestBody": {"required": True, "content": {
                             "application/json": {"schema": ref("SheetInput")}}},
                         "responses": {"201": json_response("Publiée", write),
                                       "202": json_response("En attente de relecture", write),
                                       "401": json_response("Sans jeton", ref("Error")),
                                       "422": json_response("Invalide", ref("Error"))}},
            },
            "/api/v1/sheets/similar": {"get": {
                "summary": "Fiches publiées semblables à un titre et un texte (doublons)",
                "description": "Pour le formulaire de création : les fiches publiées les plus "
                               "proches, la plus proche d'abord ; score de 0 à 1 (au-dessus de "
                               "0,4, il faut confirmer qu'il s'agit d'une autre initiative).",
                "parameters": [
                    {"name": "title", "in": "query", "schema": {"type": "string",
                                                               "maxLength": 300}},
                    {"name": "text", "in": "query", "schema": {"type": "string",
                                                              "maxLength": 20000}},
                    {"name": "limit", "in": "query",
                     "schema": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5}}],
                "responses": {
                    "200": json_response("Fiches semblables", {"type": "object", "properties": {
                        "items": {"type": "array", "items": {"type": "object", "properties": {
                            "slug": {"type": "string"}, "title": {"type": "string"},
                            "url": {"type": "string", "format": "uri"},
                            "score": {"type": "number", "minimum": 0, "maximum": 1}}}}}}),
                    "400": json_response("Ni titre ni texte", ref("Error"))}}},
            "/api/v1/sheets/{slug}": {
                "get": {"summary": "Une fiche", "parameters": [slug_param], "responses": {
                    "200": json_response("La fiche", ref("Sheet")),
                    "301": {"description": "Fiche fusionnée dans une autre"},
                    "404": json_response("Introuvable", ref("Error"))}},
                "patch": {"summary": "Modifier une fiche", "security": [{"bearer": []}],
                          "parameters": [slug_param],
                          "requestBody": {"required": True, "content": {
                              "application/json": {"schema": ref("SheetPatch")}}},
                          "responses": {"200": json_response("Publiée", write),
                                        "202": json_response("En attente", write),
                                        "409": json_response("Conflit", ref("Error")),
                                        "422": json_response("Invalide", ref("Error"))}},
            },
            "/api/v1/revisions/{id}/approve": {"post": {
                "summary": "Approuver (modérateurs)", "security": [{"bearer": []}],
                "parameters": [{"name": "id", "in": "path", "required": True,
                                "schema": {"type": "integer"}}],
                "responses": {"200": {"description": "Approuvée"},
                              "403": json_response("Interdit", ref("Error"))}}},
            "/api/v1/revisions/{id}/reject": {"post": {
                "summary": "Refuser avec un motif (modérateurs)", "security": [{"bearer": []}],
                "parameters": [{"name": "id", "in": "path", "required": True,
                                "schema": {"type": "integer"}}],
                "requestBody": {"content": {"application/json": {"schema": {
                    "type": "object", "properties": {"reason": {"type": "string"}},
                    "required": ["reason"]}}}},
                "responses": {"200": {"description": "Refusée"},
                              "403": json_response("Interdit", ref("Error"))}}},
            "/api/v1/search": {"get": search_operation(json_response, ref)},
            "/api/v1/tags": {"get": {"summary": "Mots-clés et nombre de fiches", "responses": {
                "200": json_response("Mots-clés", {"type": "array", "items": {
                    "type": "object", "properties": {"name": {"type": "string"},
                                                     "slug": {"type": "string"},
                                                     "count": {"type": "integer"}}}})}}},
            **_open_data_paths(ref),
        },
    }
    from kb.moderation.openapi import moderation_paths

    document["paths"].update(moderation_paths())
    document["paths"].update(territory_paths())
    return document


def _open_data_paths(ref: Any) -> dict[str, Any]:
    """Exports and feeds (kb/opendata): streamed, cacheable, same objects as the API."""
    def export(summary: str, mimetype: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"get": {"summary": summary, "tags": ["Données ouvertes"], "responses": {
            "200": {"description": summary, "content": {mimetype: {"schema": schema}}},
            "304": {"description": "Inchangé depuis If-None-Match / If-Modified-Since"}}}}

    def feed(summary: str, parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return {"get": {"summary": summary, "tags": ["Données ouvertes"],
                        "parameters": parameters or [], "responses": {
                            "200": {"description": "Flux Atom",
                                    "content": {"application/atom+xml": {}}},
                            "404": {"description": "Mot-clé ou échelle inconnus"}}}}

    text = {"type": "string"}
    return {
        "/donnees/fiches.csv": export(
            "Export CSV des fiches publiées (colonnes : les champs déclarés, slug, url, "
            "updated_at ; listes séparées par « | »)", "text/csv", text),
        "/donnees/fiches.json": export("Export JSON (tableau d'objets fiche)",
                                       "application/json",
                                       {"type": "array", "items": ref("Sheet")}),
        "/donnees/fiches.jsonl": export("Export JSON Lines (un objet fiche par ligne)",
                                        "application/x-ndjson", text),
        "/donnees/flux/modifications.atom": feed("Modifications approuvées récentes"),
        "/donnees/flux/nouvelles-fiches.atom": feed("Nouvelles fiches"),
        "/donnees/flux/fiches.atom": feed("Fiches filtrées (mêmes filtres que /api/v1/sheets)",
                                          openapi_parameters()),
        "/donnees/flux/mots-cles/{slug}.atom": feed("Fiches d'un mot-clé", [
            {"name": "slug", "in": "path", "required": True, "schema": text}]),
        "/donnees/flux/echelles/{scale}.atom": feed("Fiches d'une échelle", [
            {"name": "scale", "in": "path", "required": True,
             "schema": {"type": "string", "enum": list(FIELDS_BY_NAME["scale"].choice_values)}}]),
    }
