"""Follow buttons, "Mes suivis", one-click unsubscribe and the follows API."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from kb.auth.identity import api_user, token_required
from kb.auth.models import User
from kb.auth.preferences import LETTER_PERIODS, letter_sections, set_letter_section
from kb.errors import Invalid
from kb.extensions import csrf, db
from kb.follows import operations
from kb.follows.models import Follow
from kb.redirects import safe_next
from kb.sheets.models import Sheet
from kb.sheets.visibility import get_sheet_or_404
from kb.timeutil import isoformat
from kb.transaction import commit

bp = Blueprint("follows", __name__)


def init_app(app: Flask) -> None:
    from kb.follows.openapi import follow_paths

    app.extensions.setdefault("kb_openapi_paths", []).append(follow_paths)
    app.jinja_env.globals["sheet_follow"] = _sheet_follow


def _checked_form() -> None:
    if not FlaskForm().validate_on_submit():
        abort(400, "Formulaire expiré : rechargez la page et réessayez.")


@bp.post("/suivre")
@login_required
def follow() -> Response:
    _checked_form()
    row = operations.follow(current_user, request.form.to_dict())
    commit()
    flash(f"Vous suivez maintenant : {row.label}. Les nouveautés arrivent dans « La lettre des "
          "fiches », une par période, seulement quand il y a du nouveau.", "success")
    return redirect(safe_next(request.form.get("next"), url_for("follows.mine")))


@bp.post("/fiches/<slug>/suivre")
@login_required
def follow_sheet(slug: str) -> Response:
    _checked_form()
    sheet = get_sheet_or_404(slug, current_user)
    operations.follow_sheet(current_user, sheet)
    commit()
    flash("Vous suivez cette fiche : « La lettre des fiches » vous dira quand elle change "
          "(une lettre par période, pour tous vos suivis).", "success")
    return redirect(url_for("sheets.show", slug=sheet.slug))


@bp.post("/fiches/<slug>/ne-plus-suivre")
@login_required
def unfollow_sheet(slug: str) -> Response:
    _checked_form()
    sheet = get_sheet_or_404(slug, current_user)
    row = operations.sheet_follow(current_user, sheet)
    if row is not None:
        operations.unfollow(current_user, row.id)
        commit()
    flash("Vous ne suivez plus cette fiche.", "success")
    return redirect(url_for("sheets.show", slug=sheet.slug))


def _sheet_follow(sheet: Sheet) -> Follow | None:
    """For the sheet page: the reader's follow of this sheet (None when anonymous)."""
    if not current_user.is_authenticated:
        return None
    return operations.sheet_follow(current_user, sheet)


@bp.get("/mes-suivis")
@login_required
def mine() -> str:
    follows = operations.follows_of(current_user)
    return render_template("follows/mine.html", follows=follows,
                           sheets=operations.followed_sheets(follows),
                           period=LETTER_PERIODS.get(current_user.letter_period, ""),
                           in_letter="suivis" in letter_sections(current_user))


@bp.post("/mes-suivis/<int:follow_id>/supprimer")
@login_required
def remove(follow_id: int) -> Response:
    _checked_form()
    operations.unfollow(current_user, follow_id)
    commit()
    flash("Suivi retiré.", "success")
    return redirect(url_for("follows.mine"))


@bp.route("/suivis/desabonner/<token>", methods=["GET", "POST"])
@csrf.exempt  # RFC 8058: the mail client POSTs "List-Unsubscribe=One-Click" with no cookie
def unsubscribe(token: str) -> Any:
    """Links of the former follows digest: they now turn off the letter's "Vos suivis"."""
    user = operations.user_for_unsubscribe(token)
    if request.method == "POST":
        set_letter_section(user, "suivis", False)
        commit()
        return render_template("follows/unsubscribe.html", done=True, token=token)
    # GET only shows a button: link scanners in mail gateways must not unsubscribe anyone.
    return render_template("follows/unsubscribe.html", done=False, token=token)


@bp.route("/suivis/ne-plus-suivre/<token>", methods=["GET", "POST"])
@csrf.exempt  # the signed link from the letter stands for the sign-in and the CSRF token
def unfollow_from_letter(token: str) -> Any:
    row = operations.follow_for_unfollow(token)
    if row is None:
        return render_template("follows/unfollow.html", row=None, done=True, label=None)
    if request.method == "POST":
        label = row.label
        owner = db.session.get(User, row.user_id)
        assert owner is not None  # the follow's foreign key
        operations.unfollow(owner, row.id)
        commit()
        return render_template("follows/unfollow.html", row=None, done=True, label=label)
    # GET only shows a button: link scanners in mail gateways must not unfollow anything.
    return render_template("follows/unfollow.html", row=row, done=False, label=row.label)


# --- API --------------------------------------------------------------------------------------

def _follow_object(row: Follow) -> dict[str, Any]:
    return {"id": row.id, "kind": row.kind, "label": row.label, "params": row.params,
            "created_at": isoformat(row.created_at)}


@bp.get("/api/v1/follows")
@token_required
def api_list() -> Any:
    user = api_user()
    assert user is not None
    return jsonify({"items": [_follow_object(f) for f in operations.follows_of(user)]})


@bp.post("/api/v1/follows")
@csrf.exempt
@token_required
def api_create() -> Any:
    user = api_user()
    assert user is not None
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not any(isinstance(body.get(k), str) and body[k].strip()
                                             for k in ("tag", "territory", "q")):
        raise Invalid("Attendu : un objet JSON avec « tag », « territory » ou « q » (texte).")
    if isinstance(body.get("territory"), str) and body["territory"].strip():
        params: dict[str, Any] = operations.territory_params(body["territory"].strip())
    else:
        params = {k: v for k, v in body.items() if k in operations.PARAMS and isinstance(v, str)}
    row = operations.follow(user, params)
    commit()
    return jsonify(_follow_object(row)), 201


@bp.delete("/api/v1/follows/<int:follow_id>")
@csrf.exempt
@token_required
def api_delete(follow_id: int) -> Any:
    user = api_user()
    assert user is not None
    operations.unfollow(user, follow_id)
    commit()
    return "", 204
