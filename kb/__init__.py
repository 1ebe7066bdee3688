"""Knowledge base of initiative sheets. `create_app()` builds a fresh app: no module-level app."""

from __future__ import annotations

import logging
from importlib import import_module
from typing import Any

from flask import Flask, Response, jsonify, render_template
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from kb.config import INSTANCE_DIR, PROJECT_ROOT, load_config
from kb.errors import KbError
from kb.extensions import csrf, db, login_manager
from kb.params import IdConverter
from kb.urls import wants_json

# Each domain's blueprint; a new domain adds its module here.
BLUEPRINTS = (
    "kb.auth.views",
    "kb.sheets.views",
    "kb.sheets.writing",
    "kb.api.views",
    "kb.embed.views",
    "kb.opendata.views",
    "kb.search.views",
    "kb.duplicates.views",
    "kb.freshness.views",
    "kb.availability.views",
    "kb.importers.views",
    "kb.moderation.views",
    "kb.accounts.views",
    "kb.accounts.admin",
    "kb.pages.views",
    "kb.questions.views",
    "kb.follows.views",
    "kb.letters.views",
    "kb.territories.views",
    "kb.visits.views",
    "kb.structures.views",
    "kb.results.views",
    "kb.ops.views",  # /sante, request ids, error reports
    "kb.moderation.api",  # last: sets rate limits on endpoints registered above
)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
        instance_path=str(INSTANCE_DIR),
    )
    app.config.update(load_config(config))
    # Before any route is added: <int:…> only matches ids the columns can hold (kb/params.py).
    app.url_map.converters["int"] = IdConverter
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    db.init_app(app)
    login_manager.init_app(app)
    csrf.init_app(app)
    with app.app_context():
        _tune_sqlite(db.engine)

    for module_name in BLUEPRINTS:
        module = import_module(module_name)
        app.register_blueprint(module.bp)
        if hasattr(module, "init_app"):
            module.init_app(app)

    from kb.cli import register_cli
    from kb.limits import init_app as init_limits
    from kb.templating import register_templating

    register_cli(app)
    register_templating(app)
    _register_errors(app)
    init_limits(app)  # after: its 413/414 handlers are more specific than the generic one
    from kb.cache import init_app as init_cache

    init_cache(app)  # last before_request hook: requests refused above never reach the store
    app.after_request(_security_headers)
    if app.config["KB_PROXIES"]:
        # Behind a reverse proxy, the client address (rate limits, distinct reporters) and the
        # scheme come from X-Forwarded-* headers, trusted only from the configured hops.
        # Outermost: the readers' cache (kb/cache) keys answers on the scheme and host it gives.
        proxies = app.config["KB_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    return app


def _tune_sqlite(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


# Defence in depth behind the templates' escaping: scripts, styles, images and frames from this
# site only (no inline script or style: they live in static/), no plugin, no <base> rewriting
# the links, forms posted here only, and no other site may frame the page.
SITE_POLICY = ("default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
               "frame-ancestors 'none'")


def _security_headers(response: Response) -> Response:
    # Embed routes set their own policy (framable by the allowlist, kb/embed/http.py).
    if "Content-Security-Policy" not in response.headers:
        response.headers["Content-Security-Policy"] = SITE_POLICY
        response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    return response


FRENCH_ERRORS = {
    400: "La requête est invalide.",
    401: "Connexion requise.",
    403: "Vous n'avez pas accès à cette page.",
    404: "Cette page n'existe pas.",
    405: "Méthode non autorisée pour cette adresse.",
    413: "Envoi trop volumineux.",
    429: "Trop de requêtes : réessayez dans un instant.",
}


def _register_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        code = exc.code or 500
        # Werkzeug's default descriptions are English: readers get a French one.
        message = exc.description if exc.description != type(exc).description \
            else FRENCH_ERRORS.get(code, "La requête n'a pas pu être traitée.")
        if wants_json():
            return jsonify({"error": exc.name.lower().replace(" ", "_"), "message": message}), code
        return render_template("error.html", code=code, message=message), code

    @app.errorhandler(KbError)
    def domain_error(exc: KbError) -> Any:
        # The one mapping of domain errors (kb/errors.py) to HTTP: nothing half-done is kept.
        db.session.rollback()
        if wants_json():
            return jsonify({"error": exc.code, "message": exc.message, **exc.extra}), exc.status
        return render_template("error.html", code=exc.status, message=exc.message), exc.status

    @app.errorhandler(Exception)
    def server_error(exc: Exception) -> Any:
        from kb.ops.reporting import report_error

        report_error(app, exc)  # one JSON line with the request id; Sentry when configured
        db.session.rollback()
        if wants_json():
            return jsonify({"error": "server_error", "message": "Erreur interne."}), 500
        return render_template("error.html", code=500, message=None), 500
