"""CORS for the read-only API: any site may read published sheets from a browser; never write.

Only GET/HEAD answers and preflights for GET carry Access-Control-Allow-Origin. No credentials
and no Authorization header are allowed cross-origin, so a foreign page can neither use a
reader's session nor send a token: it sees exactly what an anonymous reader sees.
"""

from __future__ import annotations

from flask import request
from werkzeug.wrappers import Response

READ_METHODS = ("GET", "HEAD")
SAFE_REQUEST_HEADERS = "Accept, Accept-Language, Content-Language, If-None-Match, If-Modified-Since"


def add_cors_headers(response: Response) -> Response:
    if request.method in READ_METHODS:
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Expose-Headers"] = "ETag, Last-Modified"
    elif request.method == "OPTIONS" and _preflight_for_read():
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = SAFE_REQUEST_HEADERS
        response.headers["Access-Control-Max-Age"] = "86400"
    return response


def _preflight_for_read() -> bool:
    wanted = request.headers.get("Access-Control-Request-Method", "").upper()
    rule = request.url_rule
    return wanted in READ_METHODS and rule is not None and "GET" in (rule.methods or ())
