from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response

from kb.auth.permissions import can_see_revision, is_moderator
from kb.duplicates.operations import check_before_create
from kb.extensions import db
from kb.moderation import operations as moderation
from kb.redirects import safe_next
from kb.sheets import operations
from kb.sheets.diff import diff_data
from kb.sheets.fields import SCALES, ValidationError
from kb.sheets.filters import (
    FilterError,
    Filters,
    apply_filters,
    count_facets,
    facet_blocks,
    parse_filters,
    published_ids,
)
from kb.sheets.forms import ReviewForm, SheetForm
from kb.sheets.models import (
    Revision,
    RevisionStatus,
    Sheet,
    SheetState,
    published_sheets,
)
from kb.sheets.queries import paginate, tag_counts
from kb.templating import search_endpoint
from kb.territories import forms as places
from kb.transaction import commit

bp = Blueprint("sheets", __name__)
PER_PAGE = 20


def _sheet_or_404(slug: str) -> Sheet:
    sheet = db.session.scalar(select(Sheet).where(Sheet.slug == slug))
    if sheet is None:
        abort(404, "Cette fiche n'existe pas.")
    if sheet.state == SheetState.HIDDEN and not is_moderator(current_user):
        abort(404, "Cette fiche n'existe pas.")
    return sheet


def _revision_or_404(sheet: Sheet, revision_id: int) -> Revision:
    revision = db.session.get(Revision, revision_id)
    if revision is None or revision.sheet_id != sheet.id \
            or not can_see_revision(current_user, revision):
        abort(404, "Cette révision n'existe pas ou n'est pas visible.")
    return revision


def _editing_base(sheet: Sheet) -> Revision | None:
    """Where the current user's edit starts: the head if they may see it, else the approved one."""
    head = operations.head_revision(sheet)
    if head is not None and can_see_revision(current_user, head):
        return head
    return sheet.approved_revision


@bp.route("/")
def home() -> str:
    latest = db.session.scalars(
        published_sheets().order_by(Sheet.updated_at.desc()).limit(8)
    ).all()
    from kb.territories.views import national_map  # the territories domain draws it

    return render_template("sheets/home.html", latest=latest, tags=tag_counts()[:30],
                           scales=SCALES, map=national_map())


@bp.route("/fiches")
def index() -> str:
    try:
        filters = parse_filters(request.args)
    except FilterError as exc:
        abort(400, exc.message)
    query = apply_filters(published_sheets(), filters)
    page = paginate(query.order_by(Sheet.updated_at.desc(), Sheet.id.desc()),
                    request.args.get("page"), PER_PAGE)
    _, counts = count_facets(published_ids(filters))
    return render_template("sheets/index.html", page=page, filters=filters,
                           filter_labels=filters.labels(),
                           facets=facet_blocks(filters, counts, _index_link))


def _index_link(filters: Filters) -> str:
    args: dict[str, Any] = filters.active()
    return url_for("sheets.index", **args)


@bp.route("/tags/<slug>")
def tag_page(slug: str) -> Response:
    return redirect(url_for(search_endpoint(), tag=slug))


@bp.route("/echelle/<scale>")
def scale_page(scale: str) -> Response:
    return redirect(url_for(search_endpoint(), scale=scale))


@bp.route("/fiches/<slug>")
def show(slug: str) -> str | Response:
    sheet = _sheet_or_404(slug)
    revision_id = request.args.get("revision", type=int)
    if sheet.state == SheetState.MERGED and sheet.merged_into is not None and not revision_id:
        return redirect(url_for("sheets.show", slug=sheet.merged_into.slug), 301)
    head = operations.head_revision(sheet)
    if revision_id:
        revision = _revision_or_404(sheet, revision_id)
    elif sheet.approved_revision is not None:
        revision = sheet.approved_revision
    else:
        # Never approved: only its author and moderators may see the pending version.
        if head is None or not can_see_revision(current_user, head):
            abort(404, "Cette fiche n'existe pas.")
        revision = head
    pending = head if head and head.status == RevisionStatus.PENDING \
        and head.id != revision.id and can_see_revision(current_user, head) else None
    return render_template("sheets/show.html", sheet=sheet, revision=revision, data=revision.data,
                           pending=pending, review_form=ReviewForm())


@bp.route("/fiches/nouvelle", methods=["GET", "POST"])
@login_required
def create() -> Any:
    form = SheetForm()
    similar = None  # sheets like this one: shown, and confirmed when very close
    choice = None  # communes to choose from, when the name is ambiguous or unknown
    if form.validate_on_submit():
        data, keep_as_written = places.read_place(form.sheet_data())
        choice = _ask_unknown_place(form, data, keep_as_written)
        similar = check_before_create(data, request.form)
        if choice is None and not similar.must_stop:
            try:
                revision = operations.create_sheet(data, current_user,
                                                   form.comment.data or "Création")
            except ValidationError as exc:
                _attach_errors(form, exc.errors)
                choice = places.place_choice(exc)
            else:
                similar.record(revision.sheet, current_user)
                commit()
                _flash_saved(revision)
                return redirect(url_for("sheets.show", slug=revision.sheet.slug,
                                        revision=revision.id))
    status = 422 if form.errors or (similar and similar.errors) else 200
    return render_template("duplicates/sheet_form.html", form=form, sheet=None,
                           duplicates=similar, place_choice=choice), status


@bp.route("/fiches/<slug>/modifier", methods=["GET", "POST"])
@login_required
def edit(slug: str) -> Any:
    sheet = _sheet_or_404(slug)
    form = SheetForm()
    choice = None  # communes to choose from, when the name is ambiguous or unknown
    if request.method == "GET":
        base = _editing_base(sheet)
        if base is None:
            abort(404, "Cette fiche n'existe pas.")
        form.fill(base.data)
        form.base_revision.data = str(base.id)
    elif form.validate_on_submit() and (choice := _ask_unknown_place(
            form, *places.read_place(form.sheet_data()))) is None:
        try:
            revision = operations.edit_sheet(
                sheet, places.read_place(form.sheet_data())[0], current_user,
                int(form.base_revision.data or 0) or None, form.comment.data or "")
        except ValidationError as exc:
            _attach_errors(form, exc.errors)
            choice = places.place_choice(exc)
        except operations.EditConflict as conflict:
            db.session.rollback()
            form.fill(conflict.mine)
            form.base_revision.data = str(conflict.head.id)
            return render_template("sheets/conflict.html", form=form, sheet=sheet,
                                   conflict=conflict), 409
        except ValueError as exc:
            abort(400, str(exc))
        else:
            commit()
            _flash_saved(revision)
            return redirect(url_for("sheets.show", slug=sheet.slug, revision=revision.id))
    status = 422 if form.errors else 200
    return render_template("sheets/form.html", form=form, sheet=sheet,
                           place_choice=choice), status


@bp.route("/fiches/<slug>/historique")
def history(slug: str) -> str:
    sheet = _sheet_or_404(slug)
    revisions = [r for r in db.session.scalars(
        select(Revision).where(Revision.sheet_id == sheet.id).order_by(Revision.id.desc())
    ) if can_see_revision(current_user, r)]
    if not revisions:
        abort(404, "Cette fiche n'existe pas.")
    return render_template("sheets/history.html", sheet=sheet, revisions=revisions)


@bp.route("/fiches/<slug>/diff")
def diff(slug: str) -> str:
    sheet = _sheet_or_404(slug)
    new_id = request.args.get("to", type=int)
    old_id = request.args.get("from", type=int)
    if not new_id:
        abort(400, "Précisez la révision à comparer (paramètre « to »).")
    new = _revision_or_404(sheet, new_id)
    old = _revision_or_404(sheet, old_id) if old_id else None
    return render_template("sheets/diff.html", sheet=sheet, old=old, new=new,
                           diffs=diff_data(old.data if old else None, new.data))


@bp.route("/fiches/<slug>/revisions/<int:revision_id>/restaurer", methods=["POST"])
@login_required
def restore(slug: str, revision_id: int) -> Response:
    sheet = _sheet_or_404(slug)
    revision = _revision_or_404(sheet, revision_id)
    if not FlaskForm().validate_on_submit():
        abort(400, "Formulaire expiré, rechargez la page.")
    new = operations.restore_revision(revision, current_user)
    commit()
    _flash_saved(new)
    return redirect(url_for("sheets.history", slug=sheet.slug))


@bp.route("/revisions/<int:revision_id>/<any(approuver, refuser):decision>", methods=["POST"])
@login_required
def review(revision_id: int, decision: str) -> Response:
    if not is_moderator(current_user):
        abort(403, "Réservé aux modérateurs.")
    revision = db.session.get(Revision, revision_id)
    if revision is None:
        abort(404, "Cette révision n'existe pas.")
    form = ReviewForm()
    if not form.validate_on_submit():
        abort(400, "Formulaire expiré, rechargez la page.")
    try:
        # Through moderation: audit log and e-mail to the author.
        if decision == "approuver":
            moderation.approve(revision, current_user)
        else:
            moderation.reject(revision, current_user, form.reason.data or "")
    except ValueError as exc:
        flash(str(exc).capitalize() + ".", "error")
    else:
        commit()
        flash("Révision approuvée." if decision == "approuver" else "Révision refusée.", "success")
    return redirect(safe_next(request.form.get("next"),
                              url_for("sheets.history", slug=revision.sheet.slug)))


@bp.route("/mes-fiches")
@login_required
def mine() -> str:
    revisions = db.session.scalars(
        select(Revision).where(Revision.author_id == current_user.id)
        .order_by(Revision.id.desc()).limit(200)
    ).all()
    return render_template("sheets/mine.html", revisions=revisions)


def _attach_errors(form: SheetForm, errors: dict[str, str]) -> None:
    for name, message in errors.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = [*field.errors, message.capitalize() + "."]


def _ask_unknown_place(form: SheetForm, data: dict[str, Any],
                       keep_as_written: bool) -> places.PlaceChoice | None:
    """A commune name outside the register: the writer confirms it or picks a commune."""
    choice = places.unknown_place(data, keep_as_written)
    if choice is not None:
        form.city.errors = [*form.city.errors, choice.legend]
    return choice


def _flash_saved(revision: Revision) -> None:
    if revision.status == RevisionStatus.APPROVED:
        flash("Modification publiée.", "success")
    else:
        flash("Modification enregistrée : elle sera visible après relecture par un modérateur.",
              "info")
