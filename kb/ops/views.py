"""`GET /sante`: for load balancers and uptime monitors. JSON, 200 when every cheap check
passes, else 503 naming what fails; never cached, never rate-limited, no personal data."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, jsonify

from kb.ops import checks, reporting

bp = Blueprint("ops", __name__)


@bp.get("/sante")
def health() -> Any:
    results = checks.run_checks(cheap=True)
    failing = [c.name for c in results if not c.ok]
    body = {"status": "erreur" if failing else "ok", "failing": failing,
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in results}}
    response = jsonify(body)
    response.status_code = 503 if failing else 200
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    # Rate limits wrap only the endpoints listed in kb/moderation/spam.py (no default limit):
    # monitors may poll /sante as often as they like.
    reporting.init_app(app)
