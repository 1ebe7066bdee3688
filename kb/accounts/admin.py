"""The accounts page (/moderation/utilisateurs): moderators block (and undo what a blocked account
published since a day), unblock and trust accounts; admins also change roles, download an
account's data and delete accounts."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from kb.accounts import operations
from kb.accounts.forms import RoleForm
from kb.accounts.views import data_download
from kb.auth.models import ROLE_LABELS, User
from kb.auth.operations import AccountError
from kb.auth.permissions import ROLE_CAPABILITIES, Capability, require
from kb.extensions import db
from kb.moderation import operations as moderation
from kb.moderation import queries
from kb.moderation.forms import AccountActionForm, ReasonForm
from kb.moderation.views import undone_message
from kb.redirects import safe_next
from kb.transaction import commit

bp = Blueprint("accounts_admin", __name__)

USER_ACTIONS = ("bloquer", "debloquer", "confiance", "retirer-confiance", "annuler")


def _account(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404, "Ce compte n'existe pas.")
    return user


def _back() -> Response:
    return redirect(safe_next(request.form.get("next"), url_for("accounts_admin.users")))


def _refused(exc: Exception) -> None:
    db.session.rollback()
    text = str(exc)
    flash(text[:1].upper() + text[1:] + ".", "error")


@bp.get("/moderation/utilisateurs")
@require(Capability.MANAGE_USERS)
def users() -> str:
    search = request.args.get("q", "")
    return render_template("moderation/users.html", rows=queries.users_page(search),
                           search=search, form=ReasonForm(), role_form=RoleForm(formdata=None),
                           roles=[(r, ROLE_LABELS.get(r, r)) for r in ROLE_CAPABILITIES])


@bp.post("/moderation/utilisateurs/<int:user_id>/<any("
         + ", ".join(f"'{a}'" for a in USER_ACTIONS) + "):action>")
@require(Capability.MANAGE_USERS)
def user_action(user_id: int, action: str) -> Response:
    user = _account(user_id)
    form = AccountActionForm()
    if not form.validate_on_submit():
        if form.since.errors:
            abort(400, "Date « depuis le » invalide : choisissez un jour (AAAA-MM-JJ).")
        abort(400, "Formulaire expiré ou invalide, rechargez la page.")
    reason = form.reason.data or ""
    since = form.since_utc()
    try:
        if action == "bloquer":
            hidden = moderation.block_user(user, current_user, reason)
            message = f"Compte bloqué ; {len(hidden)} contribution(s) en attente refusée(s)."
            if since is not None:
                message += " " + undone_message(
                    moderation.revert_changes_since(user, current_user, since, reason))
        elif action == "annuler":
            if since is None:
                raise moderation.ModerationError("choisissez la date depuis laquelle annuler")
            message = undone_message(
                moderation.revert_changes_since(user, current_user, since, reason))
        elif action == "debloquer":
            moderation.unblock_user(user, current_user, reason)
            message = "Compte débloqué."
        else:
            moderation.set_trust(user, current_user, action == "confiance", reason)
            message = "Confiance accordée." if action == "confiance" else "Confiance retirée."
    except ValueError as exc:
        _refused(exc)
    else:
        commit()
        flash(message, "success")
    return _back()


@bp.post("/moderation/utilisateurs/<int:user_id>/role")
@require(Capability.ADMINISTER)
def set_role(user_id: int) -> Response:
    user = _account(user_id)
    form = RoleForm()
    if not form.validate_on_submit():
        abort(400, "Rôle inconnu : " + ", ".join(ROLE_CAPABILITIES) + ".")
    try:
        operations.set_role(user, form.role.data or "", current_user, form.reason.data or "")
    except AccountError as exc:
        _refused(exc)
    else:
        commit()
        flash(f"{user.name} est maintenant {ROLE_LABELS.get(user.role, user.role)}.", "success")
    return _back()


@bp.get("/moderation/utilisateurs/<int:user_id>/donnees")
@require(Capability.ADMINISTER)
def data(user_id: int) -> Response:
    return data_download(_account(user_id))


@bp.post("/moderation/utilisateurs/<int:user_id>/supprimer")
@require(Capability.ADMINISTER)
def delete(user_id: int) -> Any:
    user = _account(user_id)
    if not ReasonForm().validate_on_submit():
        abort(400, "Formulaire expiré ou invalide, rechargez la page.")
    if user.id == current_user.id:
        flash("Pour supprimer votre propre compte, passez par « Mon compte ».", "error")
        return _back()
    if request.form.get("confirmer") != "oui":
        flash("Cochez la case de confirmation pour supprimer un compte.", "error")
        return _back()
    try:
        operations.delete_account(user, current_user)
    except AccountError as exc:
        _refused(exc)
    else:
        commit()
        flash("Compte supprimé : données personnelles effacées, contributions conservées "
              "(« ancien contributeur »).", "success")
    return _back()
