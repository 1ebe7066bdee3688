"""Query parameters of the JSON API checked against the OpenAPI document itself.

The document declares each parameter's type, bounds, enum and length; the same declaration
refuses what it does not allow, with a French 400, so that the API and its documentation cannot
disagree (schemathesis checks both ways: tests/test_abuse_openapi.py). Only /api/ routes; the
HTML pages stay lenient (an unknown sort falls back to the default).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, current_app, request
from werkzeug.exceptions import BadRequest

from kb.params import ascii_int

_PATH_ARGUMENT = re.compile(r"<(?:[a-z_]+(?:\([^)]*\))?:)?([a-z_]+)>")


def openapi_path(rule: str) -> str:
    """/api/v1/sheets/<slug> -> /api/v1/sheets/{slug}"""
    return _PATH_ARGUMENT.sub(r"{\1}", rule)


def _parameters() -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(path, method) -> declared query parameters, built once per app."""
    cached = current_app.extensions.get("kb_api_query")
    if cached is None:
        from kb.api.openapi import openapi_document

        cached = {(path, method.upper()): [p for p in operation.get("parameters", [])
                                           if p.get("in") == "query"]
                  for path, operations in openapi_document()["paths"].items()
                  for method, operation in operations.items() if isinstance(operation, dict)}
        current_app.extensions["kb_api_query"] = cached
    return cached


def _problem(schema: dict[str, Any], value: str) -> str | None:
    """What is wrong with `value` for `schema`, in French, or None."""
    kind = schema.get("type")
    if kind == "integer":
        try:
            number = ascii_int(value, maximum=10**12)
        except ValueError:
            return "nombre entier attendu"
        low, high = schema.get("minimum"), schema.get("maximum")
        if (low is not None and number < low) or (high is not None and number > high):
            bounds = f"de {low} à {high}" if low is not None and high is not None \
                else f"au moins {low}" if low is not None else f"au plus {high}"
            return f"nombre entier {bounds} attendu"
        return None
    if kind == "boolean":
        return None if value in ("true", "false") else "true ou false attendu"
    if "enum" in schema and value not in schema["enum"]:
        return "valeurs possibles : " + ", ".join(str(v) for v in schema["enum"])
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        return f"au plus {schema['maxLength']} caractères"
    return None


def check_api_query() -> None:
    if not request.path.startswith("/api/") or request.url_rule is None:
        return
    declared = _parameters().get((openapi_path(request.url_rule.rule), request.method))
    for parameter in declared or ():
        for value in request.args.getlist(parameter["name"]):
            problem = _problem(parameter.get("schema", {}), value)
            if problem:
                raise BadRequest(f"Paramètre « {parameter['name']} » invalide : {problem}.")


def init_app(app: Flask) -> None:
    app.before_request(check_api_query)
