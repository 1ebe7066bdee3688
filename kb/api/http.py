"""Small helpers shared by every JSON endpoint (kb.api and the domains' API modules)."""

from __future__ import annotations

from typing import Any

from flask import abort, jsonify, request
from werkzeug.wrappers import Response


def error(status: int, error: str, message: str, **extra: Any) -> Response:
    response = jsonify({"error": error, "message": message, **extra})
    response.status_code = status
    return response


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, "Le corps de la requête doit être un objet JSON.")
    return body
