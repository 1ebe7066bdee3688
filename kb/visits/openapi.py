"""OpenAPI paths of the learning visits endpoints (registered into /api/openapi.json at init)."""

from __future__ import annotations

from typing import Any


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR = {"$ref": "#/components/schemas/Error"}
SLUG = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}
SLOT_ID = {"name": "slot_id", "in": "path", "required": True,
           "schema": {"type": "integer", "minimum": 1}}
STATUSES = ["open", "confirmed", "cancelled", "done"]
FORMATS = ["visite", "atelier", "immersion"]
TIME = {"type": "string", "format": "date-time"}
DAY = {"type": "string", "maxLength": 40}


def _input(partial: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "campaign_id": {"type": ["integer", "null"], "description": "Parcours de visites"},
        "starts_at": TIME, "ends_at": TIME,
        "place": {"type": "string", "maxLength": 300, "description": "Adresse du rendez-vous"},
        "commune_code": {"type": "string", "description": "Code INSEE (par défaut : celui de "
                                                          "la fiche)"},
        "format": {"type": "string", "enum": FORMATS, "default": "visite"},
        "capacity": {"type": "integer", "minimum": 1, "maximum": 500},
        "min_participants": {"type": "integer", "minimum": 1, "maximum": 500, "default": 1},
        "decide_by": {**TIME, "description": "Date de décision (par défaut : 3 jours avant)"},
        "host_name": {"type": "string", "maxLength": 120},
        "host_phone": {"type": "string", "maxLength": 40},
        "bring": {"type": "string", "maxLength": 2000, "description": "À prévoir"},
        "accessibility": {"type": "string", "maxLength": 2000}}
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False,
                              "properties": properties}
    if partial:
        properties["status"] = {"type": "string", "enum": ["confirmed", "cancelled", "done"]}
    else:
        schema["required"] = ["starts_at", "ends_at", "place", "capacity", "host_name"]
    return schema


def visit_paths() -> dict[str, Any]:
    slot = {"type": "object", "properties": {
        "id": {"type": "integer"}, "sheet": {"type": "string"}, "sheet_title": {"type": "string"},
        "status": {"type": "string", "enum": STATUSES}, "starts_at": TIME, "ends_at": TIME,
        "place": {"type": "string"}, "commune_code": {"type": "string"},
        "commune": {"type": "string"}, "department": {"type": "string"},
        "format": {"type": "string", "enum": FORMATS}, "capacity": {"type": "integer"},
        "seats_left": {"type": "integer"}, "min_participants": {"type": "integer"},
        "decide_by": TIME, "host_name": {"type": "string"}, "host_phone": {"type": "string"},
        "bring": {"type": "string"}, "accessibility": {"type": "string"},
        "url": {"type": "string"}}}
    registrant = {"type": "object", "properties": {
        "id": {"type": "integer", "description": "L'inscription (ce que nomme « present »)"},
        "name": {"type": "string"}, "structure": {"type": "string"},
        "phone": {"type": "string"}, "status": {"type": "string",
                                                "enum": ["registered", "waitlisted"]},
        "registered_at": TIME, "position": {"type": ["integer", "null"]},
        "attended": {"type": ["boolean", "null"],
                     "description": "Présent·e (null : pas encore noté)"},
        "rating": {"type": ["integer", "null"], "minimum": 1, "maximum": 5},
        "comment": {"type": "string"}}}
    registrants = _json("Inscrits puis liste d'attente", {
        "type": "object", "properties": {"items": {"type": "array", "items": registrant}}})
    refusals = {"401": _json("Sans jeton", ERROR), "404": _json("Introuvable", ERROR)}
    return {
        "/api/v1/sheets/{slug}/visits": {"post": {
            "summary": "Proposer un créneau de visite (contributeur de la fiche ou modérateur)",
            "security": [{"bearer": []}], "parameters": [SLUG],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": _input(partial=False)}}},
            "responses": {"201": _json("Créneau ouvert (status « open »)", slot), **refusals,
                          "403": _json("Ni contributeur de la fiche ni modérateur", ERROR),
                          "422": _json("Champ manquant ou invalide", ERROR)}}},
        "/api/v1/visits": {"get": {
            "summary": "Créneaux ouverts aux inscriptions, avec les places restantes",
            "description": "Public ; aucune donnée sur les inscrits.",
            "parameters": [
                {"name": "from", "in": "query", "schema": DAY,
                 "description": "Créneaux commençant à partir de (date ou date et heure ISO)"},
                {"name": "to", "in": "query", "schema": DAY,
                 "description": "Créneaux commençant avant"},
                {"name": "territory", "in": "query", "schema": {"type": "string", "maxLength": 5},
                 "description": "Code de département (29) ou de commune (29019)"},
                {"name": "format", "in": "query", "schema": {"type": "string", "enum": FORMATS}}],
            "responses": {"200": _json("Créneaux, les plus proches d'abord", {
                "type": "object", "properties": {"items": {"type": "array", "items": slot}}}),
                "400": _json("Filtre invalide", ERROR)}}},
        "/api/v1/visits/{slot_id}": {
            "get": {"summary": "Un créneau", "parameters": [SLOT_ID],
                    "responses": {"200": _json("Le créneau", slot),
                                  "404": _json("Introuvable", ERROR)}},
            "patch": {
                "summary": "Modifier, confirmer ou annuler un créneau (les inscrits reçoivent "
                           "l'invitation mise à jour ou l'annulation)",
                "security": [{"bearer": []}], "parameters": [SLOT_ID],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _input(partial=True)}}},
                "responses": {"200": _json("Le créneau modifié", slot), **refusals,
                              "403": _json("Ni contributeur de la fiche ni modérateur", ERROR),
                              "409": _json("Créneau annulé ou passé ; capacité sous le nombre "
                                           "d'inscrits", ERROR),
                              "422": _json("Champ invalide", ERROR)}}},
        "/api/v1/visits/{slot_id}/registrations": {
            "post": {
                "summary": "S'inscrire (compte confirmé) : une place, ou la liste d'attente",
                "security": [{"bearer": []}], "parameters": [SLOT_ID],
                "requestBody": {"required": False, "content": {"application/json": {"schema": {
                    "type": "object", "properties": {
                        "phone": {"type": "string", "maxLength": 40,
                                  "description": "Mobile professionnel, montré à l'accueil seul"},
                        "structure": {"type": "string", "maxLength": 200}}}}}},
                "responses": {
                    "201": _json("Inscrit·e, ou en liste d'attente à la position donnée", {
                        "type": "object", "required": ["status"], "properties": {
                            "id": {"type": "integer"},
                            "status": {"type": "string", "enum": ["registered", "waitlisted"]},
                            "position": {"type": "integer"}}}),
                    **refusals, "403": _json("Adresse non confirmée", ERROR),
                    "409": _json("Déjà inscrit·e, ou créneau fermé", ERROR),
                    "422": _json("Champ invalide", ERROR)}},
            "get": {"summary": "Les inscrits (accueil et modérateurs ; 404 pour les autres)",
                    "security": [{"bearer": []}], "parameters": [SLOT_ID],
                    "responses": {"200": registrants, **refusals}}},
        "/api/v1/visits/{slot_id}/attendance": {"post": {
            "summary": "Noter les présences (accueil et modérateurs ; 404 pour les autres)",
            "description": "Une fois la visite commencée. Les inscrits non nommés sont notés "
                           "absents ; les personnes en liste d'attente ne sont pas notées.",
            "security": [{"bearer": []}], "parameters": [SLOT_ID],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["present"], "properties": {
                    "present": {"type": "array", "items": {"type": "integer"},
                                "description": "Identifiants des inscriptions présentes"}}}}}},
            "responses": {"200": registrants, **refusals,
                          "409": _json("Visite pas encore commencée, ou annulée", ERROR),
                          "422": _json("Liste invalide, ou inscription d'un autre créneau",
                                       ERROR)}}},
        "/api/v1/visits/{slot_id}/rating": {"post": {
            "summary": "Noter une visite faite (1 à 5) et la commenter pour l'accueil",
            "description": "Une fois la visite commencée, par une personne inscrite que "
                           "l'accueil n'a pas notée absente ; peut être changé ensuite.",
            "security": [{"bearer": []}], "parameters": [SLOT_ID],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["score"], "additionalProperties": False,
                "properties": {"score": {"type": "integer", "minimum": 1, "maximum": 5},
                               "comment": {"type": "string", "maxLength": 2000}}}}}},
            "responses": {"200": _json("L'avis enregistré", {
                "type": "object", "properties": {
                    "score": {"type": "integer"}, "comment": {"type": "string"},
                    "rated_at": TIME}}),
                **refusals, "409": _json("Visite pas encore commencée, annulée, ou noté·e "
                                         "absent·e", ERROR),
                "422": _json("Note ou commentaire invalide", ERROR)}}},
        "/api/v1/visits/{slot_id}/registrations.csv": {"get": {
            "summary": "Les inscrits en CSV pour tableur français (« ; », BOM UTF-8)",
            "security": [{"bearer": []}], "parameters": [SLOT_ID],
            "responses": {"200": {"description": "CSV", "content": {"text/csv": {"schema": {
                "type": "string"}}}}, **refusals}}},
        "/api/v1/visits/{slot_id}/registrations/me": {"delete": {
            "summary": "Se désinscrire : la place revient à la première personne en attente",
            "security": [{"bearer": []}], "parameters": [SLOT_ID],
            "responses": {"204": {"description": "Désinscrit·e"}, **refusals}}},
    }
