"""Small helpers shared by every JSON endpoint (kb.api and the domains' API modules)."""

from __future__ import annotations

from typing import Any

from flask import abort, jsonify, request
from werkzeug.wrappers import Response


def error(status: int, error: str, message: str, **extra: Any) -> Response:
    response = jsonify({"error": error, "message": message, **extra})
    response.status_code = status
    return response


class BodyError(Exception):
    """A JSON body value of the wrong type: `field` and a French message (answer 400)."""

    def __init__(self, field: str, problem: str, message: str):
        super().__init__(message)
        self.field, self.problem, self.message = field, problem, message

    def response(self) -> Response:
        return error(400, "validation", self.message, fields={self.field: self.problem})


def body_int(body: dict[str, Any], name: str, meaning: str) -> int:
    """A required integer of a JSON body: absent is "obligatoire", "abc", 1.5 or true is "doit
    être un entier" (BodyError), so that the caller learns which mistake was made."""
    value = body.get(name)
    if value is None:
        raise BodyError(name, "obligatoire",
                        f"« {name} » (entier) est obligatoire : {meaning}.")
    if not isinstance(value, int) or isinstance(value, bool):
        raise BodyError(name, "doit être un entier",
                        f"« {name} » doit être un entier ({meaning}), pas {_json_kind(value)}.")
    return value


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "un booléen"
    if isinstance(value, float):
        return "un nombre décimal"
    if isinstance(value, str):
        return "un texte"
    if isinstance(value, list):
        return "une liste"
    return "un objet"


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, "Le corps de la requête doit être un objet JSON.")
    return body
