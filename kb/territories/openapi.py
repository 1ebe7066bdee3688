"""The territories' part of the OpenAPI document (kb/api/openapi.py merges it)."""

from __future__ import annotations

from typing import Any

from kb.territories.places import PLACE_NAMES

NAME_TITLES = {"epci_name": "Nom de l'intercommunalité", "department_name": "Nom du département",
               "region_name": "Nom de la région"}


def sheet_place_properties() -> dict[str, Any]:
    """Beside the codes (commune_code, epci, department, region), their names."""
    return {name: {"type": "string", "title": NAME_TITLES[name], "readOnly": True,
                   "description": "Déduit du code officiel (registre INSEE/DGCL)."}
            for name in PLACE_NAMES}


def territory_paths() -> dict[str, Any]:
    item = {"type": "object", "properties": {
        "code": {"type": "string", "description": "Code INSEE de la commune ou SIREN de l'EPCI"},
        "name": {"type": "string"}, "label": {"type": "string"},
        "postcodes": {"type": "array", "items": {"type": "string"}},
        "population": {"type": "integer"}, "department": {"type": "string"},
        "department_name": {"type": "string"}, "region": {"type": "string"},
        "region_name": {"type": "string"}, "epci": {"type": "string"},
        "epci_name": {"type": "string"}}}
    return {"/api/v1/territories": {"get": {
        "summary": "Communes ou intercommunalités du registre officiel (autocomplétion)",
        "description": "Communes dont le nom commence par `q` (ou de ce code postal ou code "
                       "INSEE), la plus peuplée d'abord ; intercommunalités dont le nom contient "
                       "les mots de `q`. Registre : @etalab/decoupage-administratif (Licence "
                       "Ouverte). Pages des territoires : /territoires/<code>-<nom>.",
        "parameters": [
            {"name": "q", "in": "query", "schema": {"type": "string"},
             "description": "Début du nom, ou code postal ; vide : aucune proposition."},
            {"name": "kind", "in": "query", "schema": {"type": "string",
                                                       "enum": ["commune", "epci"],
                                                       "default": "commune"}}],
        "responses": {"200": {"description": "Au plus 10 propositions", "content": {
            "application/json": {"schema": {"type": "object", "properties": {
                "items": {"type": "array", "items": item}}}}}},
            "400": {"description": "`kind` inconnu"}}}}}
