"""The OpenAPI 3.1 document, with the sheet schema built from the field declaration."""

from __future__ import annotations

from typing import Any

from flask import current_app

from kb.availability.serialize import openapi_schema as availability_schema
from kb.duplicates.openapi import similar_path
from kb.sheets.fields import FIELDS, FIELDS_BY_NAME, Field, Kind
from kb.sheets.filters import PARAMS, openapi_parameters
from kb.structures.openapi import structure_ref_schema
from kb.territories.openapi import sheet_place_properties, territory_paths


def _part_schema(part: Field) -> dict[str, Any]:
    schema: dict[str, Any]
    if part.kind is Kind.NUMBER:
        schema = {"type": ["number", "null"]}
        if part.integer:
            schema["type"] = ["integer", "null"]
        if part.minimum is not None:
            schema["minimum"] = part.minimum
        if part.maximum is not None:
            schema["maximum"] = part.maximum
    elif part.kind is Kind.DATE:
        schema = {"type": ["string", "null"], "format": "date"}
    elif part.kind is Kind.CHOICE:
        schema = {"type": "string", "enum": ["", *part.choice_values]}
    else:
        schema = {"type": "string", "maxLength": part.max_length}
    schema["title"] = part.label
    if part.hint:
        schema["description"] = part.hint
    return schema


def _field_schema(f: Field) -> dict[str, Any]:
    schema: dict[str, Any]
    if f.kind is Kind.RECORDS:
        # Each item as declared (kb/sheets/fields.py); a bad one answers 422 naming the item
        # and its part, in French. Empty optional parts: "" for texts, null for numbers/dates.
        schema = {"type": "array", "maxItems": 30, "items": {
            "type": "object", "additionalProperties": False,
            "required": [p.name for p in f.parts if p.required],
            "properties": {p.name: _part_schema(p) for p in f.parts}},
            "description": f.hint + " Un pourcentage ne dépasse pas 100, une note sur 5 pas 5 ; "
                           "la fin de la période n'est pas avant son début."}
        schema["title"] = f.label
        return schema
    if f.kind is Kind.MULTI and f.choices:
        # Written as their value or their French label; sheet objects hold the values.
        schema = {"type": "array", "items": {"type": "string", "examples": list(f.choice_values)},
                  "description": "Valeurs : " + ", ".join(f.choice_values) + "."}
    elif f.is_list:
        schema = {"type": "array", "items": {"type": "string", "maxLength": f.max_length}}
    elif f.kind is Kind.CHOICE:
        schema = {"type": "string", "enum": ["", *f.choice_values]}
    elif f.kind is Kind.URL:
        # null when empty in sheet objects; in writes, null (or "") clears it.
        schema = {"type": ["string", "null"], "format": "uri", "maxLength": f.max_length}
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
        ("q", {"type": "string"},
         "Mots cherchés (sans accents possible, fautes de frappe tolérées) ; \"expression\", "
         "-mot pour exclure, OR entre deux mots. Au-delà de 500 caractères, la suite est "
         "ignorée."),
        ("sort", {"type": "string", "enum": ["relevance", "updated", "freshness"]},
         "Pertinence (défaut), dernière mise à jour, ou fraîcheur (relue récemment)."),
        ("page", {"type": "integer", "minimum": 1, "maximum": 500},
         "Page (20 résultats par page)."),
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
        "thematiques": {"type": "array", "description": "Les thématiques (ou familles) que la "
                        "requête nomme (« mobilité », « garde d'enfants ») et leur page.",
                        "items": {"type": "object", "properties": {
                            "value": {"type": "string"}, "label": {"type": "string"},
                            "url": {"type": "string", "format": "uri"}}}},
        "page": {"type": "integer"}, "per_page": {"type": "integer"},
        "message": {"type": ["string", "null"]},
        "unmatched_terms": {
            "type": "array", "items": {"type": "string"},
            "description": "Mots de la recherche (tels que tapés ; « a OR b » pour des "
                           "alternatives) qu'aucune fiche ne contient, quand aucune fiche n'a "
                           "tous les mots : « accueil Lille » donne [\"Lille\"] et les fiches "
                           "qui contiennent « accueil » (voir `message`). Vide sinon."},
        "elsewhere": {
            "type": "array",
            "description": "Quand aucune fiche n'a tous les mots tels que tapés : la même "
                           "recherche dans la région puis dans toute la France (si un filtre de "
                           "territoire est actif), et sans les mots qu'aucune fiche ne contient, "
                           "chacune avec son nombre de fiches. Vide sinon.",
            "items": {"type": "object", "properties": {
                "scope": {"type": "string"}, "q": {"type": "string"},
                "filters": {"type": "object", "additionalProperties": {"type": "string"}},
                "total": {"type": "integer"}, "url": {"type": "string", "format": "uri"}}}},
        "total_is_estimate": {
            "type": "boolean",
            "description": "Vrai quand plus de fiches correspondent que la borne du décompte "
                           "exact (KB_SEARCH_EXACT_COUNT, 1 000 par défaut) : `total` et les "
                           "nombres des facettes sont alors des estimations (« environ »)."}}}
    return {"summary": "Rechercher dans les fiches publiées", "parameters": params,
            "responses": {"200": json_response("Résultats, nombre et facettes", result),
                          "400": json_response("Filtre invalide", ref("Error")),
                          "503": json_response("Index en reconstruction", ref("Error"))}}


def _data_inclusion_paths(json_response: Any) -> dict[str, Any]:
    """Services and structures in data·inclusion's schema (its package's JSON schemas)."""
    from data_inclusion.schema import v1 as di

    paging = [{"name": "page", "in": "query", "required": False,
               "schema": {"type": "integer", "minimum": 1, "maximum": 10_000}},
              {"name": "per_page", "in": "query", "required": False,
               "schema": {"type": "integer", "minimum": 1, "maximum": 100}}]
    paths = {}
    for name, model, summary in (
            ("services", di.Service, "Les fiches publiées, en services data·inclusion"),
            ("structures", di.Structure, "Leurs porteurs, en structures data·inclusion")):
        item = model.model_json_schema(ref_template="#/components/schemas/DI{model}")
        item.pop("$defs", None)
        item = {"type": "object", "description": f"Schéma data·inclusion v1 ({model.__name__}).",
                "properties": {k: {"description": v.get("description", "")}
                               for k, v in item.get("properties", {}).items()},
                "required": item.get("required", [])}
        paths[f"/api/v1/data-inclusion/{name}"] = {"get": {
            "summary": summary, "parameters": paging, "responses": {"200": json_response(
                "Une page", {"type": "object", "properties": {
                    "items": {"type": "array", "items": item}, "total": {"type": "integer"},
                    "page": {"type": "integer"}, "per_page": {"type": "integer"}}})}}}
    return paths


def openapi_document() -> dict[str, Any]:
    sheet = {
        "type": "object",
        "properties": {
            **{f.name: _field_schema(f) for f in FIELDS},
            "slug": {"type": "string"},
            "url": {"type": "string", "format": "uri"},
            "structure": structure_ref_schema(),
            "status": {"type": "string",
                       "enum": ["approved", "pending", "rejected", "merged",
                                "superseded"]},
            "revision": {"type": "integer"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "last_reviewed_at": {"type": "string", "format": "date-time"},
            "review_due_at": {"type": "string", "format": "date-time"},
            "fresh": {"type": "boolean"},
            "state": {"type": "string", "enum": ["active", "hidden", "archived", "merged"]},
            **sheet_place_properties(),
            "availability": availability_schema(),
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
    update_responses = {"200": json_response("Publiée", write),
                        "202": json_response("En attente", write),
                        "409": json_response("Conflit", ref("Error")),
                        "422": json_response("Invalide, ou révision de départ qui n'est ni une "
                                             "version publiée ni l'une des vôtres", ref("Error"))}
    query = [{"name": n, "in": "query", "schema": s} for n, s in (
        ("page", {"type": "integer", "minimum": 1, "maximum": 10_000}),
        ("per_page", {"type": "integer", "minimum": 1, "maximum": 100}))] + openapi_parameters()
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
            "/api/v1/sheets/similar": similar_path(json_response, ref),
            "/api/v1/sheets/{slug}": {
                "get": {"summary": "Une fiche",
                        "description": "La version publiée ; avec `revision`, une révision que "
                                       "l'appelant peut lire (publiée, ou la sienne avec son "
                                       "jeton ; toutes pour les modérateurs).",
                        "parameters": [slug_param, {"name": "revision", "in": "query",
                                                    "schema": {"type": "integer", "minimum": 1}}],
                        "responses": {
                    "200": json_response("La fiche", ref("Sheet")),
                    "301": {"description": "Fiche fusionnée dans une autre"},
                    "404": json_response("Introuvable", ref("Error"))}},
                "patch": {"summary": "Modifier une fiche", "security": [{"bearer": []}],
                          "parameters": [slug_param],
                          "requestBody": {"required": True, "content": {
                              "application/json": {"schema": ref("SheetPatch")}}},
                          "responses": update_responses},
                "put": {"summary": "Remplacer une fiche",
                        "description": "Comme PATCH, mais la fiche entière : un champ absent "
                                       "est vidé (un champ obligatoire absent est refusé).",
                        "security": [{"bearer": []}], "parameters": [slug_param],
                        "requestBody": {"required": True, "content": {
                            "application/json": {"schema": ref("SheetPatch")}}},
                        "responses": update_responses},
            },
            "/api/v1/sheets/{slug}/availability": {"put": {
                "summary": "Mettre à jour la disponibilité d'une fiche",
                "description": "Ses contributeurs, les membres de sa structure et les "
                               "modérateurs ; sans relecture, inscrit au journal de "
                               "modération. `status` : places, attente, complet ou ferme ; "
                               "`entry_delay` (jours) et `until` (date) facultatifs.",
                "security": [{"bearer": []}], "parameters": [slug_param],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["status"], "properties": {
                        "status": {"type": "string",
                                   "enum": ["places", "attente", "complet", "ferme"]},
                        "entry_delay": {"type": ["integer", "null"], "minimum": 0,
                                        "maximum": 365},
                        "until": {"type": ["string", "null"], "format": "date"}}}}}},
                "responses": {
                    "200": json_response("Mise à jour", {"type": "object", "properties": {
                        "slug": {"type": "string"}, "availability": availability_schema()}}),
                    "401": json_response("Sans jeton", ref("Error")),
                    "403": json_response("Ni de l'équipe de la fiche ni modérateur",
                                         ref("Error")),
                    "404": json_response("Introuvable", ref("Error")),
                    "422": json_response("Invalide", ref("Error"))}}},
            "/api/v1/revisions/{id}/approve": {"post": {
                "summary": "Approuver (modérateurs)",
                "description": "Une proposition partie d'une version publiée plus ancienne est "
                               "fusionnée champ par champ avec la version publiée actuelle. "
                               "Si les mêmes champs ont changé des deux côtés, la réponse 409 "
                               "les liste (`fields`, avec `proposal` et `published`) : "
                               "renvoyez `choices` avec, pour chacun, « proposal » ou "
                               "« published ».",
                "security": [{"bearer": []}],
                "parameters": [{"name": "id", "in": "path", "required": True,
                                "schema": {"type": "integer"}}],
                "requestBody": {"content": {"application/json": {"schema": {
                    "type": "object", "properties": {"choices": {
                        "type": "object", "additionalProperties": {
                            "type": "string", "enum": ["proposal", "published"]}}}}}}},
                "responses": {"200": {"description": "Approuvée ; `published_revision` est "
                                                     "la révision désormais publiée"},
                              "403": json_response("Interdit", ref("Error")),
                              "409": json_response("Déjà traitée, ou choix par champ "
                                                   "nécessaire", ref("Error")),
                              "422": json_response("Choix invalide", ref("Error"))}}},
            "/api/v1/revisions/{id}/reject": {"post": {
                "summary": "Refuser avec un motif (modérateurs)", "security": [{"bearer": []}],
                "parameters": [{"name": "id", "in": "path", "required": True,
                                "schema": {"type": "integer"}}],
                "requestBody": {"content": {"application/json": {"schema": {
                    "type": "object", "properties": {
                        "reason": {"type": "string"},
                        "public_reason": {"type": "boolean", "default": False,
                                          "description": "Motif visible dans l'historique "
                                                         "public (sinon interne)"}},
                    "required": ["reason"]}}}},
                "responses": {"200": {"description": "Refusée"},
                              "403": json_response("Interdit", ref("Error"))}}},
            "/api/v1/search": {"get": search_operation(json_response, ref)},
            **_data_inclusion_paths(json_response),
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
    # Higher domains (questions, follows) register their paths at init: the API never imports them.
    for paths in current_app.extensions.get("kb_openapi_paths", []):
        document["paths"].update(paths())
    from kb.limits import document_limits

    document_limits(document, current_app.config["KB_MAX_QUERY"],
                    current_app.config["MAX_CONTENT_LENGTH"])
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
        "/donnees/fiches-tableur.csv": export(
            "Les mêmes lignes pour un tableur en français : colonnes séparées par « ; », "
            "précédées d'une marque d'ordre des octets UTF-8", "text/csv", text),
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
