"""Request size limits, answered in French (HTML, or JSON under /api/).

- The body: `MAX_CONTENT_LENGTH` (KB_MAX_BODY, default 1 Mo). Werkzeug refuses a larger
  announced Content-Length before reading anything, and stops a streamed body at the limit;
  one multipart text part is capped by `MAX_FORM_MEMORY_SIZE` (KB_MAX_FORM_MEMORY) and the
  number of parts by `MAX_FORM_PARTS` (KB_MAX_FORM_PARTS). Beyond: 413.
  A body without Content-Length (chunked, when the server sets `wsgi.input_terminated`) is
  read up to the limit and refused if more follows: Werkzeug alone would cut it silently.
- The query string: KB_MAX_QUERY bytes (default 32 Kio: the longest parameters the API
  documents, whatever their characters, and below the development server's 64 Kio request
  line, so that the application, not the server, answers). Beyond: 414, before any other hook.
  gunicorn refuses request lines over --limit-request-line itself (README).
- NUL characters (PostgreSQL refuses them in text, which made a server error of any slug or
  search containing "%00"): removed from query parameters, a 404 in the path (no such page),
  a 400 in a form or a JSON body.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, jsonify, render_template, request
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import BadRequest, NotFound, RequestEntityTooLarge, RequestURITooLarge


def parse_size(value: str) -> int:
    """Bytes from "1048576", "512K" or "1M" (powers of 1024)."""
    text = value.strip().upper().removesuffix("O").removesuffix("B")
    factor = {"K": 1024, "M": 1024 * 1024}.get(text[-1:], 1)
    number = text[:-1] if factor > 1 else text
    if not number.isascii() or not number.isdigit():
        raise ValueError(f"taille invalide : {value!r} (exemples : 1048576, 512K, 1M)")
    return int(number) * factor


def human_size(size: int) -> str:
    if size >= 1024 * 1024 and size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} Mio"
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} Kio"
    return f"{size} octets"


def _answer(code: int, error: str, message: str) -> Any:
    from kb import wants_json  # the app's rule: JSON under /api/ and for oEmbed

    if wants_json():
        return jsonify({"error": error, "message": message}), code
    return render_template("error.html", code=code, message=message), code


def check_query_length() -> Any:
    limit = int(current_app.config.get("KB_MAX_QUERY") or 0)
    if limit and len(request.query_string) > limit:
        raise RequestURITooLarge()
    return None


def check_streamed_body() -> None:
    limit = request.max_content_length
    if not limit or request.content_length is not None \
            or "chunked" not in request.headers.get("Transfer-Encoding", "").lower() \
            or not request.environ.get("wsgi.input_terminated"):
        return
    request.get_data(cache=True)  # at most `limit` bytes, kept for the form or JSON parser
    if request.stream.tell() >= limit and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def refuse_nul() -> None:
    if "\x00" in request.path:
        raise NotFound()
    if any(_has_nul(k) or _has_nul(v) for k, v in request.args.items(multi=True)):
        request.args = ImmutableMultiDict(
            (k.replace("\x00", ""), v.replace("\x00", ""))
            for k, v in request.args.items(multi=True))
    found = False
    if request.method in ("POST", "PUT", "PATCH"):
        if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            found = any(_has_nul(k) or _has_nul(v) for k, v in request.form.items(multi=True))
        elif request.is_json:
            found = _has_nul(request.get_json(silent=True))
    if found:
        raise BadRequest("Caractère nul (%00) refusé dans les données envoyées.")


def init_app(app: Flask) -> None:
    # Before all other hooks: nothing else parses what will be refused.
    hooks = app.before_request_funcs.setdefault(None, [])
    hooks[:0] = [check_query_length, check_streamed_body, refuse_nul]

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge) -> Any:
        body = current_app.config.get("MAX_CONTENT_LENGTH")
        part = current_app.config.get("MAX_FORM_MEMORY_SIZE")
        limits = f"au plus {human_size(body)} par envoi" if body else "envoi limité"
        if part:
            limits += f" et {human_size(part)} par champ de formulaire"
        return _answer(413, "request_entity_too_large",
                       f"Envoi trop volumineux : {limits}. Raccourcissez le texte ou "
                       "découpez l'envoi.")

    @app.errorhandler(RequestURITooLarge)
    def uri_too_long(exc: RequestURITooLarge) -> Any:
        limit = int(current_app.config.get("KB_MAX_QUERY") or 0)
        return _answer(414, "request_uri_too_large",
                       f"Adresse trop longue : les paramètres de la requête font au plus "
                       f"{human_size(limit)}. Raccourcissez la recherche ou le texte envoyé.")


def document_limits(document: dict[str, Any], max_query: int, max_body: int | None) -> None:
    """State the 400 (parameters), 413 and 414 answers on every operation of the document."""
    json_error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    html_error = {"text/html": {"schema": {"type": "string"}}}
    for path, operations in document.get("paths", {}).items():
        # Errors are JSON under /api/ (kb.wants_json), an HTML page elsewhere.
        error = json_error if path.startswith("/api/") or path == "/oembed" else html_error
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            if any(p.get("in") == "query" for p in operation.get("parameters", [])):
                operation["responses"].setdefault("400", {
                    "description": "Paramètre invalide (message en français)", "content": error})
            operation["responses"].setdefault("414", {
                "description": f"Adresse trop longue : paramètres de plus de "
                               f"{human_size(max_query)} (message en français)",
                "content": error})
            if "requestBody" in operation and max_body:
                operation["responses"].setdefault("413", {
                    "description": f"Corps de plus de {human_size(max_body)} "
                                   "(message en français)",
                    "content": error})
