"""Pages of structures (issue 24): the public page, the moderators' form and list of likely
matches, joining (invitation, request), leaving; and API v1's read-only structures."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from kb.api.http import error
from kb.auth.models import User
from kb.auth.permissions import Capability, require
from kb.auth.signals import oidc_signed_in
from kb.errors import Conflict, Invalid
from kb.extensions import csrf, db
from kb.sheets.serialize import structure_url
from kb.sheets.visibility import PUBLISHED, get_sheet_or_404
from kb.structures import operations
from kb.structures.models import Membership, Structure
from kb.territories.register import register
from kb.timeutil import isoformat
from kb.transaction import commit

bp = Blueprint("structures", __name__)
api = Blueprint("structures_api", __name__)
csrf.exempt(api)


def init_app(app: Flask) -> None:
    from kb.structures.openapi import structure_paths

    operations.init_rules()  # members of a verified structure publish on its sheets
    # A ProConnect sign-in creates or joins the structure of its SIRET, in the sign-in's
    # transaction (blinker keeps one connection for this one function, whatever the apps).
    oidc_signed_in.connect(_on_oidc_signed_in)
    app.register_blueprint(api)
    app.extensions.setdefault("kb_openapi_paths", []).append(structure_paths)


def _on_oidc_signed_in(sender: Any, user: User, claims: dict[str, Any], **_: Any) -> None:
    operations.on_oidc_signed_in(user, claims)


def _checked_form() -> None:
    if not FlaskForm().validate_on_submit():
        abort(400, "Formulaire expiré : rechargez la page et réessayez.")


def _structure_or_404(structure_id: int) -> Structure:
    structure = db.session.get(Structure, structure_id)
    if structure is None:
        abort(404, "Structure introuvable.")
    return structure


def _page(structure: Structure) -> Response:
    return redirect(url_for("structures.show", structure_id=structure.id, slug=structure.slug))


def commune_label(code: str) -> str:
    commune = register().commune(code) if code else None
    return commune.label if commune else ""


# --- public page ----------------------------------------------------------------------------

@bp.get("/structures/<int:structure_id>")
@bp.get("/structures/<int:structure_id>-<slug>")
def show(structure_id: int, slug: str = "") -> Any:
    structure = _structure_or_404(structure_id)
    if slug != structure.slug:
        return redirect(url_for("structures.show", structure_id=structure.id,
                                slug=structure.slug), 301)
    sheets = operations.sheets_of(structure)
    mine = operations.membership(structure, current_user)
    manager = operations.may_manage(structure, current_user)
    return render_template(
        "structures/show.html", structure=structure, sheets=sheets,
        members=operations.members_public(structure), mine=mine, manager=manager,
        requests=operations.pending_requests(structure) if manager else [],
        matches=operations.page_matches(structure, current_user),
        networks=[operations.NETWORKS.get(n, n) for n in structure.networks or []],
        type_label=operations.TYPES.get(structure.type, ""),
        commune=commune_label(structure.commune_code),
        stale=sum(1 for s in sheets if not s.fresh), form=FlaskForm())


# --- moderators: create, verify, link sheets ------------------------------------------------

@bp.route("/structures/nouvelle", methods=["GET", "POST"])
@require(Capability.MODERATE)
def create() -> Any:
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    if request.method == "POST":
        _checked_form()
        values = {**request.form.to_dict(), "networks": request.form.getlist("networks")}
        try:
            structure = operations.create_structure(values, current_user)
            commit()
        except (Invalid, Conflict) as exc:  # Conflict: the SIRET is taken
            db.session.rollback()
            errors = exc.extra.get("fields") or {"name": str(exc)}
        else:
            flash(f"Structure « {structure.name} » créée.", "success")
            return _page(structure)
    status = 422 if errors else 200
    return render_template("structures/form.html", values=values, errors=errors,
                           types=operations.TYPES, networks=operations.NETWORKS,
                           form=FlaskForm()), status


@bp.route("/structures/<int:structure_id>/modifier", methods=["GET", "POST"])
@login_required
def edit(structure_id: int) -> Any:
    """Its administrators and the moderators edit it (MANAGE_STRUCTURE)."""
    structure = _structure_or_404(structure_id)
    operations.check_manager(structure, current_user)
    errors: dict[str, str] = {}
    values: dict[str, Any] = operations.form_values(structure)
    if request.method == "POST":
        _checked_form()
        values = {**request.form.to_dict(), "networks": request.form.getlist("networks")}
        try:
            operations.update_structure(structure, values, current_user)
            commit()
        except (Invalid, Conflict) as exc:  # Conflict: another structure carries the SIRET
            db.session.rollback()
            errors = exc.extra.get("fields") or {"name": str(exc)}
        else:
            flash("Structure enregistrée.", "success")
            return _page(structure)
    status = 422 if errors else 200
    return render_template("structures/form.html", values=values, errors=errors,
                           types=operations.TYPES, networks=operations.NETWORKS,
                           structure=structure, form=FlaskForm()), status


@bp.post("/structures/<int:structure_id>/verifier")
@require(Capability.MODERATE)
def verify(structure_id: int) -> Response:
    _checked_form()
    structure = _structure_or_404(structure_id)
    operations.verify(structure, current_user)
    commit()
    flash("Structure vérifiée : ses membres publient sans relecture sur ses fiches.", "success")
    return _page(structure)


@bp.get("/moderation/structures")
@require(Capability.MODERATE)
def matches() -> str:
    return render_template("structures/matches.html", matches=operations.likely_matches(),
                           commune_label=commune_label, form=FlaskForm())


@bp.post("/fiches/<slug>/structure")
@login_required
def link_sheet(slug: str) -> Response:
    """Name the structure that carries a sheet (or none): moderators, or its people
    (operations.may_link)."""
    _checked_form()
    sheet = get_sheet_or_404(slug, PUBLISHED)
    raw = request.form.get("structure_id", "")
    structure = None
    if raw:
        if not raw.isdigit():
            abort(400, "Structure invalide.")
        structure = _structure_or_404(int(raw))
    operations.link_sheet(sheet, structure, current_user)
    commit()
    flash("Structure de la fiche enregistrée." if structure else "Fiche détachée de sa structure.",
          "success")
    next_url = request.form.get("next", "")
    if next_url == "matches":
        return redirect(url_for("structures.matches"))
    if next_url == "structure" and structure is not None:
        return _page(structure)
    return redirect(url_for("sheets.show", slug=sheet.slug))


# --- joining and leaving --------------------------------------------------------------------

@bp.post("/structures/<int:structure_id>/rejoindre")
@login_required
def ask(structure_id: int) -> Response:
    _checked_form()
    structure = _structure_or_404(structure_id)
    operations.request_to_join(structure, current_user)
    commit()
    flash("Demande envoyée : un administrateur de la structure ou un modérateur y répondra.",
          "success")
    return _page(structure)


@bp.post("/structures/<int:structure_id>/demandes/<int:membership_id>")
@login_required
def decide(structure_id: int, membership_id: int) -> Response:
    _checked_form()
    row = db.session.get(Membership, membership_id)
    if row is None or row.structure_id != structure_id:
        abort(404, "Demande introuvable.")
    accept = request.form.get("decision") == "accepter"
    operations.decide(row, current_user, accept)
    commit()
    flash(f"Demande de {row.user.name} {'acceptée' if accept else 'refusée'}.", "success")
    return _page(row.structure)


@bp.post("/structures/<int:structure_id>/quitter")
@login_required
def leave(structure_id: int) -> Response:
    _checked_form()
    structure = _structure_or_404(structure_id)
    operations.leave(structure, current_user)
    commit()
    flash(f"Vous avez quitté « {structure.name} ». Ses fiches gardent le reste de l'équipe.",
          "success")
    return _page(structure)


@bp.post("/structures/<int:structure_id>/affichage")
@login_required
def shown(structure_id: int) -> Response:
    _checked_form()
    structure = _structure_or_404(structure_id)
    operations.set_shown(structure, current_user, request.form.get("shown") == "oui")
    commit()
    return _page(structure)


@bp.post("/structures/<int:structure_id>/inviter")
@login_required
def invite(structure_id: int) -> Response:
    _checked_form()
    structure = _structure_or_404(structure_id)
    email = request.form.get("email", "")
    operations.invite(structure, current_user, email)
    commit()
    flash(f"Invitation envoyée à {email.strip()}.", "success")
    return _page(structure)


@bp.route("/structures/invitation/<token>", methods=["GET", "POST"])
@login_required
def accept_invitation(token: str) -> Any:
    invitation = operations.load_invitation(token)  # 404 / 409 with a French message
    if request.method == "GET":  # opening the link changes nothing (mail scanners open links)
        return render_template("structures/invitation.html", invitation=invitation,
                               form=FlaskForm())
    _checked_form()
    row = operations.accept_invitation(token, current_user)
    commit()
    flash(f"Bienvenue dans « {row.structure.name} ».", "success")
    return _page(row.structure)


# --- API v1 (public data only) --------------------------------------------------------------

def structure_json(structure: Structure, full: bool = False) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": structure.id, "name": structure.name, "siret": structure.siret,
        "type": structure.type or None, "networks": list(structure.networks or []),
        "commune_code": structure.commune_code or None, "website": structure.website or None,
        "verified": structure.verified, "url": structure_url(structure)}
    if full:
        sheets = operations.sheets_of(structure)
        obj["sheets"] = [{"slug": s.slug, "title": s.title, "fresh": s.fresh,
                          "review_due_at": isoformat(s.review_due_at)} for s in sheets]
        obj["members"] = [u.name for u in operations.members_public(structure)]
    return obj


@api.get("/api/v1/structures")
def api_list() -> Response:
    rows = db.session.scalars(db.select(Structure).order_by(Structure.name, Structure.id))
    items = [structure_json(s) for s in rows]
    return jsonify({"items": items, "total": len(items)})


@api.get("/api/v1/structures/<int:structure_id>")
def api_show(structure_id: int) -> Any:
    structure = db.session.get(Structure, structure_id)
    if structure is None:
        return error(404, "not_found", "Structure introuvable.")
    return jsonify(structure_json(structure, full=True))

