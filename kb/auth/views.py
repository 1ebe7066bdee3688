"""Login, logout, registration with a confirmed address, password reset.

Pages that take an address answer the same whatever the address (kb.auth.operations).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from kb.auth import oidc_views, operations
from kb.auth.forms import ButtonForm, EmailForm, LoginForm, NewPasswordForm, RegisterForm
from kb.auth.link_pages import link_refused
from kb.auth.models import TokenPurpose, User
from kb.errors import LinkError
from kb.extensions import db, login_manager
from kb.params import ascii_int, db_id
from kb.redirects import safe_next
from kb.transaction import commit
from kb.wording import plural

bp = Blueprint("auth", __name__)

bp.register_error_handler(LinkError, link_refused)


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """`<id>:<session version>` (User.get_id): a cookie from before the version was bumped
    (logout, password change or reset, block) loads nobody."""
    user_id, _, version = session_id.partition(":")
    try:
        user = db.session.get(User, db_id(user_id))
        current = ascii_int(version)
    except ValueError:  # "²".isdigit() is true: ids are read with ASCII digits only
        return None
    if user is None or not user.is_active or (user.session_version or 0) != current:
        return None
    return user


def _form_error(form: Any, exc: Exception, default: str = "password") -> None:
    field = getattr(form, getattr(exc, "field", "") or default)
    field.errors = [*field.errors, str(exc)[:1].upper() + str(exc)[1:] + "."]


# Why the login page is shown, by the page the reader was going to: "Connectez-vous pour
# accéder à cette page" alone reads like a locked door.
LOGIN_REASONS = {
    "questions.ask": "Pour poser une question à l'équipe de cette fiche, connectez-vous : sa "
                     "réponse vous arrive par courriel, votre adresse ne lui est pas montrée. "
                     "Vous revenez ensuite à votre question.",
    "sheets.create": "Pour publier une fiche, connectez-vous. Vous revenez ensuite au "
                     "formulaire.",
    "sheets.edit": "Pour proposer une modification de cette fiche, connectez-vous. Vous revenez "
                   "ensuite au formulaire.",
}


def _next_and_reason() -> tuple[str | None, str | None]:
    """The safe `next` path of this request, and why the page it names asks for an account."""
    target = safe_next(request.args.get("next"), "")
    if not target:
        return None, None
    try:
        endpoint, _ = current_app.url_map.bind("").match(urlsplit(target).path, method="GET")
    except HTTPException:
        return target, None
    return target, LOGIN_REASONS.get(endpoint)


@bp.route("/connexion", methods=["GET", "POST"])
def login() -> str | Response:
    form = LoginForm()
    if form.validate_on_submit():
        user = operations.authenticate(form.email.data or "", form.password.data or "")
        if user is None:
            form.password.errors = ["Adresse ou mot de passe incorrect."]
        elif not user.is_active:
            form.email.errors = ["Ce compte est bloqué."]
        else:
            login_user(user)
            session.pop(oidc_views.ID_TOKEN, None)  # no provider session to end at logout
            if user.is_confirmed:
                flash("Vous êtes connecté·e.", "success")
            else:
                flash("Vous êtes connecté·e. Confirmez votre adresse avec le lien reçu par "
                      "courriel : d'ici là, vos propositions ne sont pas transmises aux "
                      "modérateurs.", "info")
            return redirect(safe_next(request.args.get("next"), url_for("sheets.home")))
    target, reason = _next_and_reason()
    if reason and session.get("_flashes"):
        # The reason says it better than flask-login's generic message.
        session["_flashes"] = [f for f in session["_flashes"]
                               if f[1] != login_manager.login_message]
    return render_template("auth/login.html", form=form, reason=reason, next_path=target)


AFTER_CONFIRM = "kb_after_confirm"


@bp.route("/inscription", methods=["GET", "POST"])
def register() -> Any:
    form = RegisterForm()
    destination = safe_next(request.args.get("next"), "")
    if request.method == "GET" and destination:
        # Where the person was going ("Publier une fiche"): confirming the address in this
        # browser brings them there, signed in. Kept at GET, so that the answer to the POST
        # never differs between a known and an unknown address.
        session[AFTER_CONFIRM] = destination
    if form.validate_on_submit():
        try:
            operations.register(form.email.data or "", form.password.data or "",
                                form.display_name.data or "")
        except operations.AccountError as exc:
            _form_error(form, exc)
        else:
            commit()
            # The page the person was going to (a question to ask) stays one click away.
            return redirect(url_for("auth.mail_sent", objet="inscription",
                                    next=_next_and_reason()[0]))
    return render_template("auth/register.html", form=form,
                           next_path=_next_and_reason()[0]), 422 if form.errors else 200


MAIL_SENT_PAGES = {
    "inscription": ("Vérifiez votre messagerie",
                    "Un courriel vient de partir vers l'adresse indiquée. Ouvrez le lien qu'il "
                    "contient pour confirmer votre adresse et activer votre compte."),
    "lien": ("Lien envoyé",
             "Un courriel vient de partir vers l'adresse indiquée, avec ce qu'il faut faire "
             "pour confirmer votre adresse."),
    "mot-de-passe": ("Vérifiez votre messagerie",
                     "Un courriel vient de partir vers l'adresse indiquée. S'il contient un "
                     "lien, il permet de choisir un nouveau mot de passe pendant une heure."),
}


@bp.get("/courriel-envoye/<any(inscription, lien, 'mot-de-passe'):objet>")
def mail_sent(objet: str) -> str:
    title, text = MAIL_SENT_PAGES[objet]
    return render_template("auth/mail_sent.html", title=title, text=text,
                           next_path=_next_and_reason()[0])


def _mail_a_link(send: Callable[[str], object], objet: str, template: str) -> Any:
    """A form of one address that mails a link; the same answer whether an account has it or not."""
    form = EmailForm()
    if form.validate_on_submit():
        send(form.email.data or "")
        commit()
        return redirect(url_for("auth.mail_sent", objet=objet))
    return render_template(template, form=form), 422 if form.errors else 200


@bp.route("/inscription/renvoyer", methods=["GET", "POST"])
def resend_confirmation() -> Any:
    return _mail_a_link(operations.resend_confirmation, "lien", "auth/resend.html")


@bp.route("/inscription/confirmer/<token>", methods=["GET", "POST"])
def confirm(token: str) -> Any:
    """GET shows one button, POST confirms: mail scanners that open links must not spend them."""
    row = operations.load_link(token, TokenPurpose.CONFIRM)
    form = ButtonForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            return render_template("auth/confirm.html", row=row, form=form), 400
        user = operations.confirm_email(token)
        commit()
        flash("Merci : votre adresse est confirmée. Vos propositions seront transmises aux "
              "modérateurs.", "success")
        if current_user.is_authenticated and current_user.id != user.id:
            return redirect(url_for("sheets.home"))  # someone else's session stays theirs
        if not current_user.is_authenticated:
            if not user.is_active:
                return redirect(url_for("auth.login"))
            # The link came to their mailbox and was used once, by a POST: it proves the
            # address as a login link would. No second step between confirming and writing.
            login_user(user)
            session.pop(oidc_views.ID_TOKEN, None)
        return redirect(safe_next(session.pop(AFTER_CONFIRM, None), url_for("sheets.home")))
    return render_template("auth/confirm.html", row=row, form=form)


@bp.route("/connexion/mot-de-passe-oublie", methods=["GET", "POST"])
def forgot_password() -> Any:
    return _mail_a_link(operations.request_password_reset, "mot-de-passe", "auth/forgot.html")


@bp.route("/connexion/nouveau-mot-de-passe/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> Any:
    operations.load_link(token, TokenPurpose.RESET)
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            _, revoked = operations.reset_password(token, form.password.data or "")
        except operations.AccountError as exc:
            db.session.rollback()
            _form_error(form, exc)
        else:
            commit()
            if current_user.is_authenticated:
                logout_user()
            tokens = " et " + plural(revoked, "jeton d'API révoqué", "jetons d'API révoqués") \
                if revoked else ""
            flash("Votre mot de passe est changé : toutes les sessions ouvertes de votre compte "
                  f"sont fermées{tokens}. Connectez-vous avec le nouveau mot de passe.", "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/reset.html", form=form), 422 if form.errors else 200


@bp.route("/deconnexion", methods=["POST"])
@login_required
def logout() -> Response:
    # Every copy of the session cookie (another device, or one captured) stops working.
    user = db.session.get(User, current_user.id)
    if user is not None:
        user.end_sessions()
        commit()
    logout_user()
    flash("Vous êtes déconnecté·e.", "success")
    # Signed in through ProConnect (or another provider): its session ends too.
    return oidc_views.end_session() or redirect(url_for("sheets.home"))


@bp.app_context_processor
def inject_user() -> dict[str, object]:
    return {"current_user": current_user}


def _strict_transport_security(response: Response) -> Response:
    response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def init_app(app: Flask) -> None:
    # "S'identifier avec ProConnect" (kb/auth/oidc_views.py), when configured.
    app.register_blueprint(oidc_views.bp)
    oidc_views.init_app(app)
    # Behind TLS (KB_BASE_URL https://…), browsers must never come back over plain HTTP;
    # kb.config makes the session and remember cookies Secure in the same case.
    if str(app.config.get("KB_BASE_URL", "")).startswith("https://"):
        app.after_request(_strict_transport_security)
