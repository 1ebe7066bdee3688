""""Mon compte" (/compte): one page, one small form per setting, each posting to its own URL."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from kb.accounts import operations
from kb.accounts.forms import (
    CommuneForm,
    DeleteForm,
    EmailChangeForm,
    NameForm,
    NotificationsForm,
    PasswordChangeForm,
    TokenForm,
)
from kb.auth import operations as auth
from kb.auth.forms import ButtonForm
from kb.auth.link_pages import link_refused
from kb.auth.models import TokenPurpose, User
from kb.auth.preferences import LETTER_SECTIONS, set_commune, wants_moderation_section
from kb.errors import LinkError
from kb.extensions import db
from kb.mail import outbox as mail_outbox
from kb.sheets.models import Revision, RevisionStatus, Sheet
from kb.structures import operations as structures
from kb.territories.places import commune_key
from kb.territories.register import register
from kb.transaction import commit
from kb.wording import plural

bp = Blueprint("accounts", __name__)
bp.register_error_handler(LinkError, link_refused)

FORM_PREFIXES = {"name": "nom", "email": "adresse", "password": "mdp", "notifications": "notif",
                 "token": "jeton", "commune": "commune"}
FORM_CLASSES: dict[str, Any] = {"name": NameForm, "commune": CommuneForm, "email": EmailChangeForm,
                                "password": PasswordChangeForm,
                                "notifications": NotificationsForm, "token": TokenForm}


def _user() -> User:
    user = db.session.get(User, current_user.id)
    assert user is not None
    return user


def _blank_forms(user: User) -> dict[str, Any]:
    forms = {key: cls(prefix=FORM_PREFIXES[key], formdata=None)
             for key, cls in FORM_CLASSES.items()}
    forms["name"].display_name.data = user.display_name
    commune = register().commune(user.commune_code) if user.commune_code else None
    forms["commune"].commune.data = commune.label if commune else ""
    notif = forms["notifications"]
    notif.contributions.data = user.notify_contributions
    notif.letter_period.data = user.letter_period
    notif.letter_weekday.data = str(user.letter_weekday)
    off = set((user.letter_sections_off or "").split(","))
    for key in LETTER_SECTIONS:
        getattr(notif, f"section_{key}").data = key not in off
    return forms


def _my_work(user: User) -> tuple[list[tuple[Sheet, int]], list[Revision]]:
    """The sheets this account wrote on (with its number of revisions) and its pending
    proposals."""
    sheets = db.session.execute(
        select(Sheet, func.count(Revision.id)).join(Revision, Revision.sheet_id == Sheet.id)
        .where(Revision.author_id == user.id).group_by(Sheet.id)
        .order_by(func.max(Revision.id).desc()).limit(50)).all()
    pending = db.session.scalars(select(Revision).where(
        Revision.author_id == user.id, Revision.status == RevisionStatus.PENDING.value)
        .order_by(Revision.id.desc()).limit(50)).all()
    return [(sheet, int(n)) for sheet, n in sheets], list(pending)


def _page(status: int = 200, new_token: str | None = None, **forms: Any) -> tuple[str, int]:
    user = _user()
    all_forms = {**_blank_forms(user), **forms}
    sheets, pending = _my_work(user)
    return render_template("accounts/index.html", user=user, forms=all_forms,
                           tokens=auth.list_tokens(user), sheets=sheets, pending=pending,
                           memberships=list(structures.structures_of(user)),
                           new_token=new_token, button=ButtonForm(),
                           suppressed=mail_outbox.suppression(user.email)), status


def _form(key: str) -> Any:
    return FORM_CLASSES[key](prefix=FORM_PREFIXES[key])


def _error(form: Any, exc: Exception, default: str) -> None:
    """Show `exc` under the field it names (AccountError.field), else under `default`."""
    field = getattr(form, getattr(exc, "field", "") or default, None)
    field = field if field is not None else getattr(form, default)
    text = str(exc)
    field.errors = [*field.errors, text[:1].upper() + text[1:] + "."]


@bp.get("/compte")
@login_required
def index() -> tuple[str, int]:
    return _page()


@bp.post("/compte/nom")
@login_required
def rename() -> Any:
    form = _form("name")
    if form.validate_on_submit():
        try:
            operations.rename(_user(), form.display_name.data or "")
        except auth.AccountError as exc:
            _error(form, exc, "display_name")
        else:
            commit()
            flash("Nom enregistré.", "success")
            return redirect(url_for("accounts.index"))
    return _page(422, name=form)


@bp.post("/compte/commune")
@login_required
def commune() -> Any:
    form = _form("commune")
    if form.validate_on_submit():
        given = " ".join((form.commune.data or "").split())
        try:
            code = commune_key(given) if given else ""
        except ValueError as exc:
            _error(form, exc, "commune")
        else:
            set_commune(_user(), code)
            commit()
            chosen = register().commune(code) if code else None
            flash(f"Commune enregistrée : {chosen.label}." if chosen else "Commune oubliée.",
                  "success")
            return redirect(url_for("accounts.index") + "#identite")
    return _page(422, commune=form)


@bp.post("/compte/adresse")
@login_required
def change_email() -> Any:
    form = _form("email")
    if form.validate_on_submit():
        try:
            auth.request_email_change(_user(), form.password.data or "",
                                      form.new_email.data or "")
        except auth.AccountError as exc:
            db.session.rollback()
            _error(form, exc, "new_email")
        else:
            commit()
            flash("Un lien de confirmation est parti vers la nouvelle adresse : l'adresse du "
                  "compte changera quand il sera ouvert. Votre adresse actuelle est prévenue.",
                  "success")
            return redirect(url_for("accounts.index"))
    return _page(422, email=form)


@bp.route("/compte/adresse/confirmer/<token>", methods=["GET", "POST"])
def confirm_email_change(token: str) -> Any:
    """GET shows one button, POST changes the address (mail scanners must not spend links)."""
    row = auth.load_link(token, TokenPurpose.EMAIL)
    form = ButtonForm()
    if form.validate_on_submit():
        auth.confirm_email_change(token)
        commit()
        flash("Votre nouvelle adresse est confirmée.", "success")
        return redirect(url_for("accounts.index" if current_user.is_authenticated
                                else "auth.login"))
    return render_template("accounts/confirm_email.html", row=row, form=form), \
        400 if form.is_submitted() else 200


@bp.post("/compte/mot-de-passe")
@login_required
def change_password() -> Any:
    form = _form("password")
    if form.validate_on_submit():
        user = _user()
        try:
            revoked = auth.change_password(user, form.current.data or "",
                                           form.password.data or "",
                                           revoke_tokens=bool(form.revoke_tokens.data))
        except auth.AccountError as exc:
            db.session.rollback()
            _error(form, exc, "password")
        else:
            commit()
            login_user(user)  # this session goes on under the new session version
            tokens = " et " + plural(revoked, "jeton d'API révoqué", "jetons d'API révoqués") \
                if revoked else ""
            flash(f"Mot de passe changé ; vos autres sessions sont fermées{tokens}.", "success")
            return redirect(url_for("accounts.index"))
    return _page(422, password=form)


@bp.post("/compte/notifications")
@login_required
def notifications() -> Any:
    form = _form("notifications")
    if form.validate_on_submit():
        user = _user()
        # A section not offered to this person (moderation, for a contributor) keeps its value.
        offered = [k for k in LETTER_SECTIONS if k != "moderation" or wants_moderation_section(user)]
        try:
            operations.set_notifications(
                user, contributions=bool(form.contributions.data),
                period=form.letter_period.data or "month",
                weekday=int(form.letter_weekday.data or 2),
                sections={k: bool(getattr(form, f"section_{k}").data) for k in offered},
                nothing=bool(form.nothing.data))
        except auth.AccountError as exc:
            _error(form, exc, "letter_period")
        else:
            commit()
            flash("Préférences de courriel enregistrées.", "success")
            return redirect(url_for("accounts.index", _anchor="notifications"))
    return _page(422, notifications=form)


@bp.post("/compte/jetons")
@login_required
def create_token() -> Any:
    form = _form("token")
    if form.validate_on_submit():
        try:
            token = operations.new_api_token(_user(), form.name.data or "",
                                             int(form.expires.data or 90))
        except auth.AccountError as exc:
            _error(form, exc, "name")
        else:
            commit()
            # Shown once, in this answer only: never stored in clear, nor put in the session.
            return _page(201, new_token=token)
    return _page(422, token=form)


@bp.post("/compte/jetons/<int:token_id>/revoquer")
@login_required
def revoke_token(token_id: int) -> Any:
    if not ButtonForm().validate_on_submit():
        return _page(400)
    try:
        row = auth.revoke_token(token_id, owner=_user())
    except auth.AccountError:
        return _page(404)
    commit()
    flash(f"Jeton « {row.name or 'sans nom'} » révoqué.", "success")
    return redirect(url_for("accounts.index", _anchor="jetons"))


@bp.post("/compte/renvoyer-le-lien")
@login_required
def resend_confirmation() -> Response:
    if ButtonForm().validate_on_submit():
        auth.resend_confirmation(_user().email)
        commit()
        flash("Un nouveau lien de confirmation est parti vers votre adresse.", "success")
    return redirect(url_for("accounts.index"))


def data_download(user: User) -> Response:
    body = json.dumps(operations.personal_data(user), ensure_ascii=False, indent=2)
    return Response(body, mimetype="application/json", headers={
        "Content-Disposition": f'attachment; filename="mes-donnees-fiches-{user.id}.json"',
        "Cache-Control": "no-store"})


@bp.get("/compte/donnees")
@login_required
def my_data() -> Response:
    return data_download(_user())


@bp.route("/compte/supprimer", methods=["GET", "POST"])
@login_required
def delete() -> Any:
    form = DeleteForm()
    if form.validate_on_submit():
        user = _user()
        if not user.check_password(form.password.data or ""):
            form.password.errors = ["Le mot de passe est incorrect."]
        else:
            try:
                operations.delete_account(user, user)
            except auth.AccountError as exc:
                db.session.rollback()
                _error(form, exc, "understood")
            else:
                commit()
                logout_user()
                flash("Votre compte est supprimé. Vos contributions restent, signées "
                      "« ancien contributeur ». Merci d'avoir participé.", "success")
                return redirect(url_for("sheets.home"))
    return render_template("accounts/delete.html", form=form), 422 if form.errors else 200


def init_app(app: Any) -> None:
    from kb.auth.models import role_label

    app.jinja_env.globals.update(role_label=role_label)
