from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from kb.auth import operations
from kb.auth.forms import LoginForm, RegisterForm
from kb.auth.models import User
from kb.extensions import db, login_manager
from kb.params import db_id
from kb.redirects import safe_next
from kb.transaction import commit

bp = Blueprint("auth", __name__)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    try:
        return db.session.get(User, db_id(user_id))
    except ValueError:
        return None


@bp.route("/connexion", methods=["GET", "POST"])
def login() -> str | Response:
    form = LoginForm()
    if form.validate_on_submit():
        user = operations.find_user(form.email.data or "")
        if user is None or not user.check_password(form.password.data or ""):
            form.password.errors = ["Adresse ou mot de passe incorrect."]
        elif user.blocked:
            form.email.errors = ["Ce compte est bloqué."]
        else:
            login_user(user)
            flash("Vous êtes connecté·e.", "success")
            return redirect(safe_next(request.args.get("next"), url_for("sheets.home")))
    return render_template("auth/login.html", form=form)


@bp.route("/inscription", methods=["GET", "POST"])
def register() -> str | Response:
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = operations.create_user(form.email.data or "", form.password.data or "",
                                          display_name=form.display_name.data or "")
        except operations.AccountError as exc:
            form.email.errors = [str(exc).capitalize() + "."]
        else:
            commit()
            login_user(user)
            flash("Bienvenue ! Vos premières fiches seront relues avant publication.", "success")
            return redirect(url_for("sheets.home"))
    return render_template("auth/register.html", form=form)


@bp.route("/deconnexion", methods=["POST"])
@login_required
def logout() -> Response:
    logout_user()
    flash("Vous êtes déconnecté·e.", "success")
    return redirect(url_for("sheets.home"))


@bp.app_context_processor
def inject_user() -> dict[str, object]:
    return {"current_user": current_user}
