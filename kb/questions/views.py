"""Pages and API of questions to an initiative's team. Thin: parse, call operations, render."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import BooleanField, TextAreaField
from wtforms.validators import DataRequired, Length

from kb.auth.identity import api_user, token_required
from kb.auth.permissions import Capability, require
from kb.errors import Conflict, Invalid, TooManyRequests
from kb.extensions import csrf, db
from kb.questions import operations
from kb.questions.models import Question
from kb.sheets.visibility import PUBLISHED, get_sheet_or_404
from kb.timeutil import isoformat
from kb.transaction import commit

bp = Blueprint("questions", __name__)


class AskForm(FlaskForm):
    question = TextAreaField("Votre question", validators=[
        DataRequired(), Length(min=15, max=operations.QUESTION_MAX)],
        description="Une seule question, précise : la situation, ce que vous avez déjà essayé.")
    purpose = TextAreaField("Ce que je cherche à débloquer", validators=[
        DataRequired(), Length(min=10, max=operations.PURPOSE_MAX)],
        description="Par exemple : « convaincre notre CCAS d'ouvrir un accueil sans rendez-vous ».")
    consents = BooleanField("J'accepte que ma question et la réponse soient publiées sur la fiche "
                            "(après accord de l'équipe et relecture par un modérateur)")


class AnswerForm(FlaskForm):
    answer = TextAreaField("Votre réponse", validators=[
        DataRequired(), Length(min=2, max=operations.ANSWER_MAX)])
    consents = BooleanField("Nous acceptons que cette question et notre réponse soient publiées "
                            "sur la fiche (si la personne l'accepte aussi, après relecture)")


class ReportForm(FlaskForm):
    reason = TextAreaField("Pourquoi signalez-vous cette question ?",
                           validators=[DataRequired(), Length(max=2000)])


# --- asking -----------------------------------------------------------------------------------

@bp.route("/fiches/<slug>/questions/nouvelle", methods=["GET", "POST"])
@login_required
def ask(slug: str) -> Any:
    sheet = get_sheet_or_404(slug, PUBLISHED)
    form = AskForm()
    error = None
    if form.validate_on_submit():
        try:
            operations.ask(sheet, current_user, form.question.data or "", form.purpose.data or "",
                           bool(form.consents.data))
            commit()
        except (Invalid, Conflict, TooManyRequests) as exc:
            error = exc.message  # shown beside the kept text: nothing the person wrote is lost
        else:
            flash("Votre question a été transmise à l'équipe. Vous recevrez sa réponse par e-mail "
                  "et dans « Mes questions ».", "success")
            return redirect(url_for("questions.mine"))
    status = 422 if request.method == "POST" else 200
    # Said before anything is written: a sheet nobody can be reached for offers a report.
    return render_template("questions/ask.html", sheet=sheet, form=form, error=error,
                           may_ask=operations.may_ask(current_user),
                           reachable=operations.reachable(sheet, current_user)), status


@bp.get("/mes-questions")
@login_required
def mine() -> str:
    return render_template("questions/mine.html", questions=operations.questions_of(current_user))


@bp.post("/mes-questions/<int:question_id>/publication")
@login_required
def consent(question_id: int) -> Response:
    question = db.session.get(Question, question_id)
    if question is None or question.asker_id != current_user.id:
        abort(404, "Cette question n'existe pas.")
    FlaskForm().validate_on_submit() or abort(400, "Formulaire expiré : rechargez la page.")
    operations.set_asker_consent(question, current_user, request.form.get("consents") == "y")
    commit()
    flash("Votre choix de publication est enregistré.", "success")
    return redirect(url_for("questions.mine"))


# --- answering (no account needed: the signed link is the key) --------------------------------

@bp.route("/questions/repondre/<token>", methods=["GET", "POST"])
def answer(token: str) -> Any:
    question = operations.question_for_token(token)
    form = AnswerForm()
    report_form = ReportForm(prefix="report")
    if request.method == "POST" and question.is_open:
        if "report-reason" in request.form:
            if report_form.validate_on_submit():
                operations.report(question, report_form.reason.data or "")
                commit()
                flash("Question signalée et close. Merci : les modérateurs en sont informés.",
                      "success")
                return redirect(url_for("questions.answer", token=token))
        elif form.validate_on_submit():
            operations.answer(question, form.answer.data or "", bool(form.consents.data))
            commit()
            flash("Merci ! Votre réponse a été transmise à la personne.", "success")
            return redirect(url_for("questions.answer", token=token))
        return render_template("questions/answer.html", question=question, form=form,
                               report_form=report_form), 422
    return render_template("questions/answer.html", question=question, form=form,
                           report_form=report_form)


@bp.route("/questions/ne-plus-recevoir/<token>", methods=["GET", "POST"])
def opt_out(token: str) -> Any:
    if request.method == "POST":
        FlaskForm().validate_on_submit() or abort(400, "Formulaire expiré : rechargez la page.")
        address = operations.opt_out_contact(token)
        commit()
        return render_template("questions/opt_out.html", done=True, address=address, token=token)
    return render_template("questions/opt_out.html", done=False, address=None, token=token)


# --- readers report a published question -------------------------------------------------------

@bp.route("/fiches/<slug>/questions/<int:question_id>/signaler", methods=["GET", "POST"])
def report(slug: str, question_id: int) -> Any:
    sheet = get_sheet_or_404(slug, PUBLISHED)
    question = next((q for q in operations.published_questions(sheet) if q.id == question_id), None)
    if question is None:
        abort(404, "Cette question n'existe pas.")
    form = ReportForm()
    if form.validate_on_submit():
        operations.report(question, form.reason.data or "")
        commit()
        flash("Merci : la question est retirée en attendant un modérateur.", "success")
        return redirect(url_for("sheets.show", slug=slug))
    return render_template("questions/report.html", sheet=sheet, question=question, form=form)


# --- moderators -------------------------------------------------------------------------------

@bp.get("/moderation/questions")
@require(Capability.REVIEW)
def queue() -> str:
    return render_template("questions/queue.html", questions=operations.pending_publication(),
                           stats=operations.stats())


@bp.post("/moderation/questions/<int:question_id>/<any(publier, refuser):decision>")
@require(Capability.REVIEW)
def decide(question_id: int, decision: str) -> Response:
    question = db.session.get(Question, question_id) or abort(404)
    FlaskForm().validate_on_submit() or abort(400, "Formulaire expiré : rechargez la page.")
    operations.decide_publication(question, current_user, decision == "publier")
    commit()
    flash("Question publiée sur la fiche." if decision == "publier" else "Publication refusée.",
          "success")
    return redirect(url_for("questions.queue"))


# --- API --------------------------------------------------------------------------------------

def _qa_object(question: Question) -> dict[str, Any]:
    return {"id": question.id, "question": question.question, "purpose": question.purpose,
            "answer": question.answer, "asked_at": isoformat(question.created_at),
            "answered_at": isoformat(question.answered_at)}


@bp.get("/api/v1/sheets/<slug>/questions")
def api_list(slug: str) -> Any:
    sheet = get_sheet_or_404(slug, PUBLISHED)
    return jsonify({"items": [_qa_object(q) for q in operations.published_questions(sheet)]})


@bp.post("/api/v1/sheets/<slug>/questions")
@csrf.exempt
@token_required
def api_ask(slug: str) -> Any:
    sheet = get_sheet_or_404(slug, PUBLISHED)
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not all(isinstance(body.get(k), str)
                                              for k in ("question", "purpose")):
        return jsonify({"error": "invalid", "message": "Attendu : un objet JSON avec « question » "
                        "et « purpose » (textes)."}), 422
    user = api_user()
    assert user is not None  # token_required
    question = operations.ask(sheet, user, body["question"], body["purpose"],
                              bool(body.get("publish_consent", False)))
    commit()
    return jsonify({"id": question.id, "status": question.status}), 201


# --- wiring -----------------------------------------------------------------------------------

_URL = re.compile(r"\bhttp(s?)://", re.IGNORECASE)


def defang(text: str) -> str:
    """Relayed text keeps its links readable but not clickable ("hxxps://…"): nobody can use
    our mails to send a clickable link to a team."""
    return _URL.sub(lambda m: f"hxxp{m.group(1)}://", str(text))


def init_app(app: Flask) -> None:
    app.jinja_env.filters["defang"] = defang
    app.jinja_env.globals["published_questions"] = operations.published_questions
    app.jinja_env.globals["team_reachable"] = operations.reachable
    app.jinja_env.globals["question_stats"] = operations.stats
    from kb.search.documents import EXTRA_TEXT

    app.extensions.setdefault(EXTRA_TEXT, []).append(operations.published_text)
    from kb.questions.openapi import question_paths

    app.extensions.setdefault("kb_openapi_paths", []).append(question_paths)
