"""Freshness pages: the moderators' freshness queue, archiving, "toujours à jour" and intervals."""

from __future__ import annotations

from typing import Any

from babel.numbers import format_percent
from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from kb.auth.identity import login_required
from kb.auth.permissions import Capability, require
from kb.errors import KbError, LinkError
from kb.extensions import db
from kb.freshness import letters, operations, readers, signs
from kb.freshness.forms import ReaderCheckForm
from kb.freshness.stats import update_rate
from kb.mail.outbox import mails_per_person_per_month
from kb.moderation.forms import ReasonForm
from kb.moderation.models import Report
from kb.moderation.queries import reachable_contributors
from kb.moderation.spam import client_fingerprint
from kb.sheets.models import Sheet, SheetState
from kb.sheets.visibility import PUBLISHED, get_sheet_or_404
from kb.transaction import commit

bp = Blueprint("freshness", __name__)


def _checked_form() -> ReasonForm:
    form = ReasonForm()
    if not form.validate_on_submit():
        abort(400, "Formulaire expiré ou invalide, rechargez la page.")
    return form


@bp.get("/moderation/fraicheur")
@require(Capability.MODERATE)
def queue() -> str:
    due = operations.due_sheets()
    contributors = reachable_contributors(s.id for s in due)
    archived = db.session.scalars(select(Sheet).where(
        Sheet.state == SheetState.ARCHIVED.value).order_by(Sheet.archived_at.desc())).all()
    return render_template("freshness/queue.html", due=due, contributors=contributors,
                           stale=[s for s in due if not contributors.get(s.id)],
                           candidates=operations.archive_candidates(due=due), archived=archived,
                           form=ReasonForm())


@bp.post("/moderation/fiches/<slug>/<any(archiver, desarchiver):action>")
@require(Capability.MODERATE)
def archive(slug: str, action: str) -> Response:
    sheet = get_sheet_or_404(slug, current_user)
    form = _checked_form()
    try:
        if action == "archiver":
            operations.archive_sheet(sheet, current_user, form.reason.data or "",
                                     public=bool(form.public_reason.data))
        else:
            operations.unarchive_sheet(sheet, current_user, form.reason.data or "",
                                       public=bool(form.public_reason.data))
    except ValueError as exc:  # not from this state
        db.session.rollback()
        flash(str(exc).capitalize() + ".", "error")
    else:
        commit()
        flash("Fiche archivée." if action == "archiver" else "Fiche remise en ligne.", "success")
    return redirect(url_for("freshness.queue"))


@bp.post("/moderation/signalements/<int:report_id>/a-actualiser")
@require(Capability.MODERATE)
def mark_due(report_id: int) -> Response:
    """"À actualiser" on an "Informations périmées" report (templates/moderation/reports.html)."""
    report = db.session.get(Report, report_id)
    if report is None:
        abort(404, "Ce signalement n'existe pas.")
    _checked_form()
    try:
        operations.mark_due(report, current_user)
    except ValueError as exc:
        db.session.rollback()
        flash(str(exc).capitalize() + ".", "error")
    else:
        commit()
        flash("Fiche à actualiser : elle entre dans la liste de fraîcheur et la prochaine lettre "
              "de ses contributeurs.", "success")
    return redirect(url_for("moderation.reports"))


@bp.post("/fiches/<slug>/toujours-a-jour")
@login_required
def confirm(slug: str) -> Response:
    sheet = get_sheet_or_404(slug, current_user)
    _checked_form()
    operations.confirm_fresh(sheet, current_user, via="page de la fiche")
    commit()
    flash("Merci : la fiche est confirmée à jour.", "success")
    return redirect(url_for("sheets.show", slug=sheet.slug))


@bp.post("/fiches/<slug>/frequence")
@login_required
def interval(slug: str) -> Response:
    sheet = get_sheet_or_404(slug, current_user)
    _checked_form()
    months = request.form.get("months", type=int)
    operations.set_interval(sheet, current_user, months or 0)
    commit()
    flash(f"Fréquence de relecture : tous les {sheet.review_interval_months} mois.", "success")
    return redirect(url_for("sheets.show", slug=sheet.slug))


@bp.route("/fraicheur/confirmer/<token>", methods=["GET", "POST"])
def confirm_link(token: str) -> Any:
    """GET shows the sheet and one button; POST confirms. Mail scanners that pre-open links
    (Outlook Safe Links…) would otherwise burn the single-use token before the person clicks."""
    try:
        row = operations.load_token(token)
    except LinkError as exc:
        return render_template("freshness/confirm.html", error=str(exc), row=None), \
            exc.status
    if request.method == "POST":
        _checked_form()
        sheet = row.sheet
        try:
            operations.use_token(token)
        except KbError as exc:
            db.session.rollback()
            return render_template("freshness/confirm.html", error=str(exc), row=None), 410
        commit()
        return render_template("freshness/confirm.html", error=None, row=None, done=sheet)
    return render_template("freshness/confirm.html", error=None, row=row, form=ReasonForm())


ACTION_DONE = {letters.CONFIRM: "Merci : la fiche est confirmée à jour.",
               letters.ARCHIVE: "La fiche est archivée : elle n'apparaît plus dans la recherche ni "
                                "dans les listes ; sa page reste, avec un bandeau, et un modérateur "
                                "peut la remettre en ligne.",
               letters.RELAUNCH: "Relance enregistrée : la fiche revient dans la prochaine lettre "
                                 "de la personne qui la tient."}


@bp.route("/fraicheur/action/<token>", methods=["GET", "POST"])
def action_link(token: str) -> Any:
    """A letter's one-click link: GET shows what it will do, POST does it (mail scanners open
    links; they do not submit forms). No sign-in needed, but only its addressee may use it."""
    try:
        link = letters.load_action(token, current_user)
    except LinkError as exc:
        return render_template("freshness/action.html", error=str(exc), link=None), exc.status
    if request.method == "POST":
        _checked_form()
        try:
            sheet, action = operations.use_action(token, current_user)
        except KbError as exc:
            db.session.rollback()
            return render_template("freshness/action.html", error=exc.message, link=None), exc.status
        commit()
        return render_template("freshness/action.html", error=None, link=None, done=sheet,
                               message=ACTION_DONE[action])
    return render_template("freshness/action.html", error=None, link=link,
                           label=letters.ACTION_LABELS[link.action], form=ReasonForm())


@bp.post("/fiches/<slug>/toujours-juste")
@login_required
def reader_check(slug: str) -> Response:
    sheet = get_sheet_or_404(slug, PUBLISHED)
    form = ReaderCheckForm()
    if not form.validate_on_submit():
        abort(400, "Répondez « Oui » ou « Non » (commentaire de 2000 caractères au plus).")
    readers.answer(sheet, current_user, form.answer.data == "oui", form.comment.data or "",
                   client_fingerprint())
    commit()
    flash("Merci : votre réponse est enregistrée." if form.answer.data == "oui" else
          "Merci : les contributeurs de la fiche et les modérateurs sont prévenus.", "success")
    return redirect(url_for("sheets.show", slug=sheet.slug) + "#toujours-juste")


# --- the update rate -----------------------------------------------------------------------

def freshness_stats() -> dict[str, Any]:
    """The update rate, and mails per person per month by kind (mean, max) over 3 months."""
    return {"rate": update_rate(), "mails": dict(mails_per_person_per_month(months=3))}


@bp.get("/statistiques")
def statistics() -> str:
    return render_template("freshness/statistics.html")


def percent_fr(value: float | None) -> str:
    """0.875 → "87,5 %" (French: comma, non-breaking space); None → "—"."""
    return "—" if value is None else format_percent(value, "#,##0.0\u00a0%", locale="fr_FR")


def _reader_check(sheet: Any) -> dict[str, Any] | None:
    """What the sheet page shows of the readers' question to the current visitor."""
    if not current_user.is_authenticated or not readers.may_answer(current_user, sheet):
        return None
    return {"answer": readers.answer_of(current_user, sheet), "form": ReaderCheckForm()}


def init_app(app: Flask) -> None:
    signs.install()
    app.jinja_env.globals.update(freshness_stats=freshness_stats, reader_check=_reader_check)
    app.jinja_env.filters.update(percent_fr=percent_fr)
