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
- JSON bodies are where text that is not UTF-8 can enter: a lone surrogate ("\\ud800", or the
  bytes ED A0 80) decodes to a Python string that no page, feed or file can encode. Refused
  with a 400 naming the field, as is a body nested deeper than MAX_JSON_DEPTH (no recursion
  error, no traceback in the log). Forms and query strings cannot carry one: Werkzeug decodes
  them with replacement characters.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, jsonify, render_template, request
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import BadRequest, NotFound, RequestEntityTooLarge, RequestURITooLarge

from kb.urls import wants_json


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


# Deeper than any body the application reads (a sheet is an object of lists of objects): a
# bound that keeps the walk below, and whatever reads the body after it, far from Python's
# recursion limit.
MAX_JSON_DEPTH = 32
TOO_DEEP = f"Document JSON trop imbriqué : au plus {MAX_JSON_DEPTH} niveaux de listes et d'objets."


def _field_name(path: str) -> str:
    """The field as the message names it ("racine du document": the body itself), never a
    character the answer could not encode."""
    name = path.lstrip(".") or "racine du document"
    name = name.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return name if len(name) <= 80 else name[:79] + "…"


def _text_problem(text: str) -> str:
    if "\x00" in text:
        return "caractère nul (%00) refusé"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate ("\ud800" in JSON): stored, it would make every page, feed and
            # file that shows it fail.
            return ("texte qui n'est pas de l'UTF-8 valide (demi-codet Unicode isolé, "
                    "comme \\ud800)")
    return ""


# Where an item sits: (parent's place, key or index), None for the body; spelt out only when
# a message needs it.
Place = tuple["Place", str | int] | None


def _path(place: Place) -> str:
    parts: list[str] = []
    while place is not None:
        place, key = place
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return "".join(reversed(parts))


def json_problem(value: Any) -> str:
    """What makes a decoded JSON body unacceptable, as a French sentence naming the field,
    or "". Walked with an explicit stack: a deeply nested body must not exhaust Python's."""
    stack: list[tuple[Any, int, Place]] = [(value, 0, None)]
    while stack:
        item, depth, place = stack.pop()
        if isinstance(item, str):
            problem = _text_problem(item)
            if problem:
                return f"Champ « {_field_name(_path(place))} » : {problem}."
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                return TOO_DEEP
            if isinstance(item, list):
                stack.extend((v, depth + 1, (place, i)) for i, v in enumerate(item))
                continue
            for key, v in item.items():
                problem = _text_problem(key)
                if problem:
                    return f"Nom de champ dans « {_field_name(_path(place))} » : {problem}."
                stack.append((v, depth + 1, (place, key)))
    return ""


def _form_problem() -> str:
    # Werkzeug decodes forms with replacement characters: only NUL can get through.
    for key, value in request.form.items(multi=True):
        if "\x00" in key or "\x00" in value:
            return f"Champ « {_field_name(key)} » : caractère nul (%00) refusé."
    return ""


def refuse_bad_text() -> None:
    """Text enters the application here: a form or JSON body with a character no database or
    output can hold (NUL, a lone surrogate), or a JSON body too deep to walk, is a 400 that
    names the field, before any view reads it."""
    if "\x00" in request.path:
        raise NotFound()
    if any("\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)):
        request.args = ImmutableMultiDict(
            (k.replace("\x00", ""), v.replace("\x00", ""))
            for k, v in request.args.items(multi=True))
    if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
        return
    problem = ""
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        problem = _form_problem()
    elif request.is_json:
        try:
            problem = json_problem(request.get_json(silent=True))
        except RecursionError:  # the parser's own limit: far deeper than MAX_JSON_DEPTH
            problem = TOO_DEEP
    if problem:
        raise BadRequest(problem)


def init_app(app: Flask) -> None:
    # Before all other hooks: nothing else parses what will be refused.
    hooks = app.before_request_funcs.setdefault(None, [])
    hooks[:0] = [check_query_length, check_streamed_body, refuse_bad_text]

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
    """State the 400 (parameters, body), 413 and 414 answers on every operation of the
    document."""
    json_error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    html_error = {"text/html": {"schema": {"type": "string"}}}
    for path, operations in document.get("paths", {}).items():
        # Errors are JSON under /api/ (kb.urls.wants_json), an HTML page elsewhere.
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
            if "requestBody" in operation:
                operation["responses"].setdefault("400", {
                    "description": "Corps refusé : JSON illisible, texte qui n'est pas de "
                                   "l'UTF-8 valide ou caractère nul (le champ est nommé), "
                                   f"plus de {MAX_JSON_DEPTH} niveaux d'imbrication "
                                   "(message en français)",
                    "content": error})
            if "requestBody" in operation and max_body:
                operation["responses"].setdefault("413", {
                    "description": f"Corps de plus de {human_size(max_body)} "
                                   "(message en français)",
                    "content": error})
