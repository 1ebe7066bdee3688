from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from kb import cache
from kb.auth.identity import login_required
from kb.auth.permissions import Capability, can, require
from kb.auth.preferences import set_commune
from kb.duplicates.operations import check_before_create
from kb.errors import Conflict, NotFound
from kb.extensions import db
from kb.moderation import operations as moderation
from kb.params import db_id
from kb.redirects import safe_next
from kb.sheets import operations, submissions
from kb.sheets.diff import diff_data
from kb.sheets.fields import FIELDS_BY_NAME, SCALES, ValidationError
from kb.sheets.forms import ReviewForm, SheetForm
from kb.sheets.listing import Listing, render_listing
from kb.sheets.models import (
    Revision,
    RevisionStatus,
    Sheet,
    SheetState,
    Tag,
    published_sheets,
    sheet_keys,
    sheet_tags,
)
from kb.sheets.proximity import COOKIE, COOKIE_DAYS, proximity_rank, reader_commune
from kb.sheets.queries import contributions, family_counts, tag_counts
from kb.sheets.visibility import (
    SHEET_NOT_FOUND,
    awaiting_first_review,
    editing_base,
    find_sheet,
    get_revision_or_404,
    get_sheet_or_404,
    pending_for,
    visible_revision,
)
from kb.territories import forms as places
from kb.territories.places import commune_key
from kb.territories.register import Commune
from kb.transaction import commit

bp = Blueprint("sheets", __name__)
# "menées à l'échelle …" (the scale labels are nouns; the sentence needs an article).
SCALE_PHRASES = {"quartier": "d'un quartier", "commune": "d'une commune",
                 "intercommunalite": "d'une intercommunalité", "departement": "d'un département",
                 "region": "d'une région", "national": "nationale"}
NOT_YET_REVIEWED = ("cette fiche attend sa première relecture : approuvez ou refusez la "
                    "proposition avant de la modifier")


@bp.route("/")
def home() -> str:
    # Cards need the revision and tags: loaded for all eight at once, not per card.
    latest = db.session.scalars(
        published_sheets().order_by(Sheet.updated_at.desc()).limit(8)
        .options(selectinload(Sheet.approved_revision), selectinload(Sheet.tags))
    ).all()
    from kb.territories.views import national_map  # the territories domain draws it

    return render_template("sheets/home.html", latest=latest, tags=tag_counts()[:30],
                           scales=SCALES, map=national_map(), families=family_counts())


@bp.route("/fiches")
def index() -> str | Response:
    return render_listing(Listing(
        heading="Toutes les fiches",
        description="Les initiatives publiées, à filtrer par échelle, porteur, mot-clé ou lieu.",
        base=published_sheets(), endpoint="sheets.index",
        feed_url=url_for("opendata.feed_new"), feed_title="Nouvelles fiches"))


@bp.route("/tags/<slug>")
def tag_page(slug: str) -> str | Response:
    tag = db.session.scalar(select(Tag).where(Tag.slug == slug))
    if tag is None:
        abort(404, f"Aucune fiche ne porte le mot-clé « {slug[:80]} ». "
                   "Retrouvez les mots-clés existants sur la page d'accueil.")
    cache.narrow_to_tag(tag.slug)  # kept across publishes of sheets that neither carry nor carried it
    return render_listing(Listing(
        heading=f"Mot-clé : {tag.name}",
        description=f"Les fiches publiées avec le mot-clé « {tag.name} ».",
        base=published_sheets().where(Sheet.id.in_(
            select(sheet_tags.c.sheet_id).where(sheet_tags.c.tag_id == tag.id))),
        endpoint="sheets.tag_page", endpoint_args={"slug": tag.slug},
        fixed=frozenset({"tag"}), all_url=url_for("sheets.index"), follow={"tag": tag.slug},
        feed_url=url_for("opendata.feed_tag", slug=tag.slug),
        feed_title=f"Mot-clé « {tag.name} »"))


@bp.route("/thematiques/<value>")
def thematique(value: str) -> str | Response:
    """A family of thématiques ("mobilite") or one thématique: its sheets, by proximity to the
    reader's commune when one is chosen (kb/sheets/proximity.py)."""
    field = FIELDS_BY_NAME["thematiques"]
    if value not in field.choice_values and value not in dict(field.groups):
        abort(404, f"Aucune thématique « {value[:80]} ». Les familles sont sur la page d'accueil.")
    label = field.choice_label(value)
    family = field.group_of(value)
    commune, cookie = _reader_commune()
    page = render_listing(Listing(
        heading=label,
        description=(f"Les initiatives publiées pour lever ce frein ({field.choice_label(family)})."
                     if family != value else "Les initiatives publiées pour lever ce frein."),
        base=published_sheets().where(Sheet.id.in_(select(sheet_keys.c.sheet_id).where(
            sheet_keys.c.field == field.name, sheet_keys.c.key == value))),
        endpoint="sheets.thematique", endpoint_args={"value": value},
        fixed=frozenset({"thematique", "pres"}), all_url=url_for("sheets.home"),
        follow={"thematique": value}, place_form=True,
        place_label=commune.label if commune else "",
        order_first=(proximity_rank(commune),) if commune else ()))
    if cookie is None:
        return page
    response = make_response(page)
    if cookie:
        response.set_cookie(COOKIE, cookie, max_age=COOKIE_DAYS * 86400, samesite="Lax",
                            httponly=True)
    else:
        response.delete_cookie(COOKIE)
    return response


def _reader_commune() -> tuple[Commune | None, str | None]:
    """The reader's commune (?pres=, else the cookie, else the signed-in reader's account) and
    the cookie to set: a code, "" to forget it, None to leave it. A commune that cannot be read
    is a 400 in French. A signed-in reader's choice is kept on their account too."""
    given = " ".join(request.args.get("pres", "").split())[:120]
    if given == "-":
        _keep_on_account("")
        return None, ""
    if given:
        try:
            code = commune_key(given)
        except ValueError as exc:
            abort(400, f"Votre commune : {exc}.")
        _keep_on_account(code)
        return reader_commune(code), code
    cookie = request.cookies.get(COOKIE, "")[:5]
    if not cookie and current_user.is_authenticated:
        cookie = current_user.commune_code or ""
    return reader_commune(cookie), None


def _keep_on_account(code: str) -> None:
    # The reader's own preference, like the cookie set by the same GET (never cached: signed in).
    if current_user.is_authenticated and set_commune(current_user, code):
        commit()


@bp.route("/echelle/<scale>")
def scale_page(scale: str) -> str | Response:
    field = FIELDS_BY_NAME["scale"]
    if scale not in field.choice_values:
        abort(404, "Cette échelle n'existe pas. Échelles possibles : "
                   + ", ".join(label.lower() for _, label in SCALES) + ".")
    label = field.choice_label(scale)
    phrase = SCALE_PHRASES.get(scale, f"« {label.lower()} »")
    return render_listing(Listing(
        heading=f"Échelle : {label.lower()}",
        description=f"Les fiches publiées d'initiatives menées à l'échelle {phrase}.",
        base=published_sheets().where(Sheet.scale == scale),
        endpoint="sheets.scale_page", endpoint_args={"scale": scale},
        fixed=frozenset({"scale"}), all_url=url_for("sheets.index"), follow={"scale": scale},
        feed_url=url_for("opendata.feed_scale", scale=scale),
        feed_title=f"Échelle : {label.lower()}"))


@bp.route("/fiches/<slug>")
def show(slug: str) -> Any:
    sheet = find_sheet(slug, current_user)
    if sheet is None:
        if awaiting_first_review(slug) is None:
            raise NotFound(SHEET_NOT_FOUND)
        # Not a broken link: a new sheet not yet reviewed. Nothing of it is shown.
        return render_template("sheets/awaiting_review.html"), 200
    revision_id = request.args.get("revision", type=db_id)
    if sheet.state == SheetState.MERGED and sheet.merged_into is not None and not revision_id:
        return redirect(url_for("sheets.show", slug=sheet.merged_into.slug), 301)
    shown = get_revision_or_404(sheet, revision_id, current_user) if revision_id \
        else visible_revision(sheet, current_user)
    assert shown is not None  # get_sheet_or_404 checked that this person sees a revision
    revision: Revision = shown
    pending = pending_for(sheet, current_user)
    if pending is not None and pending.id == revision.id:
        pending = None
    # Built only for a reviewer: a form's CSRF token writes the session, and an anonymous
    # reader's page must name nobody to be cached (kb/cache).
    review_form = ReviewForm() if revision.status == RevisionStatus.PENDING \
        and can(current_user, Capability.REVIEW) else None
    return render_template("sheets/show.html", sheet=sheet, revision=revision, data=revision.data,
                           pending=pending, review_form=review_form)


@bp.route("/fiches/nouvelle", methods=["GET", "POST"])
@require(Capability.CONTRIBUTE)
def create() -> Any:
    form = SheetForm()
    similar = None  # sheets like this one: shown, and confirmed when very close
    choice = None  # communes to choose from, when the name is ambiguous or unknown
    if form.validate_on_submit():
        # Before the similarity check: a second send would find the first one's sheet.
        sent = submissions.claim(form.token(), current_user.id, form.sent_data())
        if sent.previous is not None:
            return _sent_before(form, sent)
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
                sent.done(revision)
                similar.record(revision.sheet, current_user)
                commit()
                _flash_saved(revision, created=True)
                return redirect(url_for("sheets.show", slug=revision.sheet.slug,
                                        revision=revision.id))
        db.session.rollback()  # nothing saved: the token stays free for the next send
    status = 422 if form.errors or (similar and similar.errors) else 200
    return render_template("duplicates/sheet_form.html", form=form, sheet=None,
                           duplicates=similar, place_choice=choice), status


@bp.route("/fiches/<slug>/modifier", methods=["GET", "POST"])
@require(Capability.CONTRIBUTE)
def edit(slug: str) -> Any:
    # The same visibility rule for GET and POST: a sheet this person may not open is 404.
    sheet = get_sheet_or_404(slug, current_user)
    head = editing_base(sheet, current_user)
    if head is None:
        raise Conflict(NOT_YET_REVIEWED)  # a reviewer on someone else's first proposal
    form = SheetForm()
    choice = None  # communes to choose from, when the name is ambiguous or unknown
    if request.method == "GET":
        form.fill(head.data)
        form.base_revision.data = str(head.id)
    elif form.validate_on_submit() and (choice := _ask_unknown_place(
            form, *places.read_place(form.sheet_data()), base=head.data)) is None:
        base_id = form.base_revision.data or ""
        sent = submissions.claim(form.token(), current_user.id, form.sent_data())
        if sent.previous is not None and sent.same_content:
            return _sent_before(form, sent)
        try:
            revision = operations.edit_sheet(
                sheet, places.read_place(form.sheet_data())[0], current_user,
                int(base_id) if base_id.isascii() and base_id.isdigit() else head.id,
                form.comment.data or "")
        except ValidationError as exc:
            db.session.rollback()
            _attach_errors(form, exc.errors)
            choice = places.place_choice(exc)
        except operations.EditConflict as conflict:
            db.session.rollback()
            form.fill(conflict.mine)
            form.base_revision.data = str(conflict.theirs.id)
            return render_template("sheets/conflict.html", form=form, sheet=sheet,
                                   conflict=conflict), 409
        else:
            sent.done(revision)
            commit()
            _flash_saved(revision)
            return redirect(url_for("sheets.show", slug=sheet.slug, revision=revision.id))
    status = 422 if form.errors else 200
    return render_template("sheets/form.html", form=form, sheet=sheet, head=head,
                           others_pending=_others_pending(sheet, head),
                           place_choice=choice), status


def _others_pending(sheet: Sheet, head: Revision) -> int:
    """Proposals of other people a reviewer sees; saving never publishes them."""
    if not can(current_user, Capability.VIEW_REVISION):
        return 0
    return db.session.scalar(select(func.count(Revision.id)).where(
        Revision.sheet_id == sheet.id, Revision.status == RevisionStatus.PENDING.value,
        Revision.author_id != current_user.id)) or 0


@bp.route("/fiches/<slug>/historique")
def history(slug: str) -> str:
    sheet = get_sheet_or_404(slug, current_user)
    revisions = [r for r in db.session.scalars(
        select(Revision).where(Revision.sheet_id == sheet.id).order_by(Revision.id.desc())
    ) if can(current_user, Capability.VIEW_REVISION, r)]
    if not revisions:
        abort(404, "Cette fiche n'existe pas.")
    current = editing_base(sheet, current_user)
    # Restoring what the sheet already says would only add an empty revision.
    restorable = {r.id for r in revisions
                  if current is None or (r.id != current.id and r.data != current.data)}
    return render_template("sheets/history.html", sheet=sheet, revisions=revisions,
                           current=current, restorable=restorable)


def _revision_id(value: str) -> int | None:
    try:
        return db_id(value)
    except ValueError:
        return None  # get_revision_or_404 answers 404


@bp.route("/fiches/<slug>/diff")
def diff(slug: str) -> str:
    sheet = get_sheet_or_404(slug, current_user)
    if not request.args.get("to"):
        abort(400, "Précisez la révision à comparer (paramètre « to »).")
    # A given revision that is no id ("abc", 0, beyond the ids' range) is a revision that does
    # not exist, as a wrong id is: 404, never another comparison than the one asked for.
    new = get_revision_or_404(sheet, _revision_id(request.args["to"]), current_user)
    old = get_revision_or_404(sheet, _revision_id(request.args["from"]), current_user) \
        if request.args.get("from") else None
    return render_template("sheets/diff.html", sheet=sheet, old=old, new=new,
                           diffs=diff_data(old.data if old else None, new.data))


@bp.route("/fiches/<slug>/revisions/<int:revision_id>/restaurer", methods=["POST"])
@require(Capability.CONTRIBUTE)
def restore(slug: str, revision_id: int) -> Response:
    sheet = get_sheet_or_404(slug, current_user)
    revision = get_revision_or_404(sheet, revision_id, current_user)
    if not FlaskForm().validate_on_submit():
        abort(400, "Formulaire expiré, rechargez la page.")
    current = editing_base(sheet, current_user)
    if current is not None and revision.data == current.data:
        flash("Cette révision est déjà la version actuelle de la fiche : rien à restaurer.",
              "info")
        return redirect(url_for("sheets.history", slug=sheet.slug))
    new = operations.restore_revision(revision, current_user)
    commit()
    _flash_saved(new)
    return redirect(url_for("sheets.history", slug=sheet.slug))


@bp.route("/revisions/<int:revision_id>/<any(approuver, refuser):decision>", methods=["POST"])
@require(Capability.REVIEW)
def review(revision_id: int, decision: str) -> Response:
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
            moderation.reject(revision, current_user, form.reason.data or "",
                              public=bool(form.public_reason.data))
    except operations.ReviewConflict:
        db.session.rollback()
        flash("La version publiée a changé depuis cette proposition et les mêmes champs ont "
              "changé des deux côtés : choisissez champ par champ.", "error")
        return redirect(url_for("moderation.revision", revision_id=revision.id))
    except ValueError as exc:
        db.session.rollback()
        flash(str(exc).capitalize() + ".", "error")
    else:
        commit()
        flash("Révision approuvée." if decision == "approuver" else "Révision refusée.", "success")
    return redirect(safe_next(request.form.get("next"),
                              url_for("sheets.history", slug=revision.sheet.slug)))


@bp.route("/mes-fiches")
@login_required
def mine() -> str:
    return render_template("sheets/mine.html", rows=contributions(current_user))


def _attach_errors(form: SheetForm, errors: dict[str, str]) -> None:
    for name, message in errors.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = [*field.errors, message.capitalize() + "."]


def _ask_unknown_place(form: SheetForm, data: dict[str, Any], keep_as_written: bool,
                       base: dict[str, Any] | None = None) -> places.PlaceChoice | None:
    """A commune name outside the register: the writer confirms it or picks a commune (an
    edit that leaves the place of `base` as it was is not asked)."""
    choice = places.unknown_place(data, keep_as_written, base)
    if choice is not None:
        form.city.errors = [*form.city.errors, choice.legend]
    return choice


def _sent_before(form: SheetForm, sent: submissions.Claim) -> Any:
    """This form was sent before. The same content again (double click, re-post): the answer
    the first send got. Other content (back, then changed): the user's text, as an edit of the
    sheet the first send created, nothing lost and nothing saved twice."""
    previous = sent.previous
    assert previous is not None
    db.session.rollback()
    if sent.same_content:
        _flash_saved(previous, created=previous.base_revision_id is None)
        return redirect(url_for("sheets.show", slug=previous.sheet.slug, revision=previous.id))
    sheet = previous.sheet
    form.base_revision.data = str(previous.id)
    form.submission.data = submissions.new_token()
    flash(f"Ce formulaire a déjà été envoyé : la fiche « {previous.title} » existe. Vos "
          "derniers changements, ci-dessous, ne sont pas encore enregistrés : vérifiez-les puis "
          "enregistrez-les comme une modification de cette fiche.", "info")
    return render_template("sheets/form.html", form=form, sheet=sheet,
                           form_action=url_for("sheets.edit", slug=sheet.slug)), 409


def _flash_saved(revision: Revision, created: bool = False) -> None:
    if created:
        if revision.status == RevisionStatus.APPROVED:
            flash("Fiche créée et publiée.", "success")
        else:
            flash("Fiche créée : elle sera publiée après relecture par un modérateur.", "info")
    elif revision.status == RevisionStatus.APPROVED:
        flash("Modification publiée.", "success")
    else:
        flash("Modification enregistrée : elle sera visible après relecture par un modérateur.",
              "info")
