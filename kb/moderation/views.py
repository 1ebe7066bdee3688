"""Moderation pages (/moderation…) and the readers' report form (/fiches/<slug>/signaler)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from kb.auth.permissions import Capability, can, require
from kb.extensions import db
from kb.mail import outbox as mail_outbox
from kb.moderation import operations, queries, spam
from kb.moderation.forms import ReasonForm, ReportForm
from kb.moderation.models import Action, AuditEntry, Report, ReportReason
from kb.moderation.spam import HONEYPOT_FIELD, check_honeypot, client_fingerprint
from kb.moderation.standing import approval_makes_trusted, standing_days
from kb.params import db_id
from kb.redirects import safe_next
from kb.sheets import operations as sheet_ops
from kb.sheets.diff import as_text, diff_data
from kb.sheets.fields import FIELDS_BY_NAME
from kb.sheets.models import (
    REVIEW_INTERVALS,
    REVISION_STATUS_LABELS,
    Revision,
    RevisionStatus,
    Sheet,
    SheetState,
)
from kb.sheets.queries import results_share
from kb.sheets.visibility import PUBLISHED, get_sheet_or_404
from kb.templating import public_name
from kb.transaction import commit
from kb.wording import plural

bp = Blueprint("moderation", __name__)


def _checked_form() -> ReasonForm:
    form = ReasonForm()
    if not form.validate_on_submit():
        abort(400, "Formulaire expiré ou invalide, rechargez la page.")
    return form


def _back(default: str) -> Response:
    return redirect(safe_next(request.form.get("next"), default))


def _is_id(value: str) -> bool:
    try:
        db_id(value)
    except ValueError:
        return False
    return True


def _done(message: str) -> None:
    commit()
    flash(message, "success")


# --- queue ----------------------------------------------------------------------------------

@bp.get("/moderation")
@require(Capability.REVIEW)
def queue() -> str:
    filters = queries.QueueFilters(kind=request.args.get("type", ""),
                                   tag=request.args.get("tag", "").strip(),
                                   author=request.args.get("auteur", "").strip())
    if filters.kind not in ("", "new", "edit"):
        abort(400, "Filtre « type » inconnu : new ou edit.")
    revisions = queries.pending_revisions(filters)
    return render_template("moderation/queue.html", revisions=revisions, filters=filters,
                           is_new=queries.is_new_sheet, form=ReasonForm())


def _revision_or_404(revision_id: int) -> Revision:
    rev = db.session.get(Revision, revision_id)
    if rev is None:
        abort(404, "Cette révision n'existe pas.")
    return rev


def _preview(plan: sheet_ops.ReviewPlan, choices: dict[str, str]) -> dict[str, Any]:
    """What would be published with the choices made so far (the proposal's value otherwise)."""
    data = dict(plan.merged)
    for name in plan.conflicts:
        if choices.get(name) == "published":
            data[name] = plan.published_data.get(name)
    return data


def _review_page(rev: Revision, choices: dict[str, str] | None = None, error: str = "",
                 status: int = 200) -> Any:
    sheet = rev.sheet
    choices = choices or {}
    plan = None
    if rev.status == RevisionStatus.PENDING:
        # Pending work is compared with what readers see now (merged onto it when stale).
        plan = sheet_ops.review_plan(rev)
        base = sheet.approved_revision
        diffs = diff_data(base.data if base else None, _preview(plan, choices))
    else:
        # A decided revision with the one it was written from.
        base = db.session.get(Revision, rev.base_revision_id) if rev.base_revision_id else None
        diffs = diff_data(base.data if base else None, rev.data)
    stale = plan is not None and plan.stale
    start = plan.root.data if plan and plan.root else None
    # Fields changed on both sides, side by side: (field, published text, proposed text).
    overlaps = [] if plan is None else [
        (FIELDS_BY_NAME[name], as_text(FIELDS_BY_NAME[name], plan.published_data.get(name)),
         as_text(FIELDS_BY_NAME[name], rev.data.get(name))) for name in plan.conflicts]
    return render_template(
        "moderation/revision.html", rev=rev, sheet=sheet, base=base, diffs=diffs,
        form=ReasonForm(), plan=plan, stale=stale, choices=choices, error=error,
        overlaps=overlaps, proposed=diff_data(start, rev.data) if stale else [],
        published_since=diff_data(start, plan.published_data) if stale and plan else [],
        history=queries.audit_entries(sheet=sheet, limit=20),
        promotes=approval_makes_trusted(rev), standing_days=standing_days(),
        replaced_by=queries.replaced_by(rev)), status


@bp.get("/moderation/revisions/<int:revision_id>")
@require(Capability.REVIEW)
def revision(revision_id: int) -> Any:
    return _review_page(_revision_or_404(revision_id))


def _choices() -> dict[str, str]:
    """Per-field choices of the review form: `choice-<field>` = proposal | published."""
    return {name[len("choice-"):]: value for name, value in request.form.items()
            if name.startswith("choice-") and name[len("choice-"):] in FIELDS_BY_NAME}


@bp.post("/moderation/revisions/<int:revision_id>/<any(approuver, refuser):decision>")
@require(Capability.REVIEW)
def decide(revision_id: int, decision: str) -> Any:
    rev = _revision_or_404(revision_id)
    form = _checked_form()
    choices = _choices()
    try:
        if decision == "approuver":
            operations.approve(rev, current_user, choices)
        else:
            operations.reject(rev, current_user, form.reason.data or "",
                              public=bool(form.public_reason.data))
    except sheet_ops.ReviewConflict as exc:
        db.session.rollback()
        return _review_page(rev, choices, exc.message, 409)
    except ValueError as exc:
        db.session.rollback()
        flash(str(exc).capitalize() + ".", "error")
        return redirect(url_for("moderation.revision", revision_id=revision_id))
    _done("Révision approuvée et publiée." if decision == "approuver"
          else "Révision refusée ; l'auteur est prévenu.")
    return _back(url_for("moderation.queue"))


@bp.post("/moderation/revisions/lot")
@require(Capability.REVIEW)
def bulk() -> Response:
    form = _checked_form()
    decision = {"approuver": "approve", "refuser": "reject"}.get(request.form.get("action", ""))
    ids = [int(v) for v in request.form.getlist("revision") if _is_id(v)]
    if decision is None:
        abort(400, "Action inconnue : approuver ou refuser.")
    if not ids:
        flash("Cochez au moins une révision.", "error")
        return redirect(url_for("moderation.queue"))
    try:
        done, errors = operations.bulk_review(ids, decision, current_user, form.reason.data or "",
                                              public=bool(form.public_reason.data))
    except ValueError as exc:
        flash(str(exc).capitalize() + ".", "error")
        return redirect(url_for("moderation.queue"))
    commit()
    verb = "approuvée" if decision == "approve" else "refusée"
    flash(plural(len(done), f"révision {verb}", f"révisions {verb}s") + ".", "success")
    for revision_id, message in errors.items():
        flash(f"Révision {revision_id} : {message}.", "error")
    return redirect(url_for("moderation.queue"))


# --- reports --------------------------------------------------------------------------------

# Links that open the report form already filled: `?motif=contact-introuvable` from a sheet
# nobody can be reached for (templates/questions/_sheet_questions.html).
PREFILLED_REPORTS = {
    "contact-introuvable": (ReportReason.OUTDATED.value,
                            "Contact introuvable : personne ne peut être joint pour cette fiche "
                            "(ni contributeur joignable, ni adresse de contact)."),
}


@bp.route("/fiches/<slug>/signaler", methods=["GET", "POST"])
def report(slug: str) -> Any:
    sheet = get_sheet_or_404(slug, PUBLISHED)
    form = ReportForm()
    prefilled = PREFILLED_REPORTS.get(request.args.get("motif", ""))
    if request.method == "GET" and prefilled is not None:
        form.reason.data, form.comment.data = prefilled
    if form.validate_on_submit():
        user = current_user if current_user.is_authenticated else None
        try:
            operations.report_sheet(sheet, form.reason.data or "", form.comment.data or "", user,
                                    client_fingerprint())
        except operations.ModerationError as exc:
            db.session.rollback()
            form.comment.errors = [*form.comment.errors, str(exc).capitalize() + "."]
        else:
            commit()
            flash("Merci : votre signalement a été transmis aux modérateurs.", "success")
            return redirect(url_for("sheets.show", slug=sheet.slug))
    status = 422 if form.errors else 200
    return render_template("moderation/report.html", sheet=sheet, form=form), status


@bp.get("/fiches/<slug>/signalements/<int:report_id>")
@login_required
def report_detail(slug: str, report_id: int) -> str:
    """One report, for moderators and (outdated reports) the sheet's contributors: the e-mail
    links here instead of quoting a stranger's text (phishing through our own mails)."""
    sheet = get_sheet_or_404(slug, current_user)
    row = db.session.get(Report, report_id)
    if row is None or row.sheet_id != sheet.id or not _may_read_report(sheet, row):
        abort(404, "Ce signalement n'existe pas ou ne vous est pas adressé.")
    return render_template("moderation/report_detail.html", sheet=sheet, report=row,
                           moderator=can(current_user, Capability.MODERATE))


def _may_read_report(sheet: Sheet, report: Report) -> bool:
    if current_user.blocked:
        return False
    if can(current_user, Capability.MODERATE):
        return True
    contributors = queries.reachable_contributors([sheet.id]).get(sheet.id, [])
    return report.reason == ReportReason.OUTDATED.value \
        and any(user.id == current_user.id for user in contributors)


@bp.get("/moderation/signalements")
@require(Capability.MODERATE)
def reports() -> str:
    by_sheet: dict[int, list[Report]] = {}
    for r in queries.open_reports():
        by_sheet.setdefault(r.sheet_id, []).append(r)
    return render_template("moderation/reports.html", by_sheet=by_sheet,
                           hidden=queries.hidden_sheets(), form=ReasonForm())


@bp.post("/moderation/signalements/<int:report_id>/classer")
@require(Capability.MODERATE)
def close_report(report_id: int) -> Response:
    report_row = db.session.get(Report, report_id)
    if report_row is None:
        abort(404, "Ce signalement n'existe pas.")
    form = _checked_form()
    try:
        operations.close_report(report_row, current_user, form.reason.data or "")
    except ValueError as exc:
        flash(str(exc).capitalize() + ".", "error")
    else:
        _done("Signalement classé.")
    return _back(url_for("moderation.reports"))


@bp.post("/moderation/fiches/<slug>/<any(masquer, retablir):action>")
@require(Capability.MODERATE)
def visibility(slug: str, action: str) -> Response:
    sheet = get_sheet_or_404(slug, current_user)
    form = _checked_form()
    try:
        if action == "masquer":
            operations.hide_sheet(sheet, current_user, form.reason.data or "",
                                  public=bool(form.public_reason.data))
        else:
            operations.restore_sheet(sheet, current_user, form.reason.data or "",
                                     public=bool(form.public_reason.data))
    except ValueError as exc:
        db.session.rollback()
        flash(str(exc).capitalize() + ".", "error")
    else:
        _done("Fiche masquée." if action == "masquer" else "Fiche rétablie.")
    return _back(url_for("moderation.reports"))


# --- dashboard and log ----------------------------------------------------------------------

@bp.get("/moderation/tableau-de-bord")
@require(Capability.REVIEW)
def dashboard() -> str:
    from kb.freshness import operations as freshness
    from kb.ops.checks import run_checks

    due = freshness.due_sheets()
    states = queries.count_by_state()
    counts = {
        "pending": queries.pending_count(),
        "due": len(due),
        "stale": len(freshness.stale_sheets(due=due)),
        "reported": queries.reported_sheet_count(),
        "archive": len(freshness.archive_candidates(due=due)),
        "hidden": states.get(SheetState.HIDDEN.value, 0),
        "archived": states.get(SheetState.ARCHIVED.value, 0),
        "duplicates": work_counts(full=True).get("duplicates.queue", 0),
    }
    buckets = freshness.review_age_buckets()
    return render_template("moderation/dashboard.html", counts=counts, buckets=buckets,
                           results=results_share(),
                           bucket_max=max([n for _, n in buckets] + [1]),
                           oldest=queries.pending_revisions(limit=10), due=due[:10],
                           mail_status=mail_outbox.status(),
                           suppressed=mail_outbox.suppressed_addresses()[:50],
                           # The checks of `kb doctor` and /sante (kb/ops/checks.py).
                           health=run_checks(transport_timeout=2.0))  # a page: wait less


@bp.get("/moderation/journal")
@require(Capability.MODERATE)
def journal() -> str:
    entries = db.session.scalars(select(AuditEntry).order_by(
        AuditEntry.created_at.desc(), AuditEntry.id.desc()).limit(300)).all()
    return render_template("moderation/journal.html", entries=entries)


def _label(name: str) -> str:
    return FIELDS_BY_NAME[name].label if name in FIELDS_BY_NAME else name


def undone_message(undone: operations.Undone) -> str:
    """The flash message after undoing a blocked account's changes."""
    if undone.empty:
        return "Aucune modification publiée de ce compte depuis cette date."
    parts = []
    if undone.reverted:
        parts.append("modifications annulées sur " + plural(len(undone.reverted), "fiche")
                     + " (" + ", ".join(f"« {s.title} »" for s, _ in undone.reverted) + ")")
    if undone.hidden:
        parts.append(plural(len(undone.hidden), "fiche créée par ce compte masquée",
                            "fiches créées par ce compte masquées")
                     + " (" + ", ".join(f"« {s.title} »" for s in undone.hidden) + ")")
    if undone.to_check:
        parts.append("à relire, modifié depuis par d'autres et laissé tel quel : " + " ; ".join(
            f"« {s.title} » ({', '.join(_label(f) for f in fields)})"
            for s, fields in undone.to_check))
    text = " ; ".join(parts)
    return text[:1].upper() + text[1:] + "."


# --- template helpers and hooks -------------------------------------------------------------

@dataclass
class HistoryRow:
    """One moderation decision as the public history shows it."""

    created_at: datetime
    label: str
    revision_id: int | None
    actor_name: str
    reason: str
    internal: bool  # a reason shown only because the viewer moderates or wrote the revision


def _sees_internal_reason(revision: Revision | None) -> bool:
    """Moderators, and the author of the revision a decision is about (they got it by mail)."""
    if can(current_user, Capability.MODERATE):
        return True
    return revision is not None and bool(getattr(current_user, "is_authenticated", False)) \
        and revision.author_id == current_user.id


def history_entries(sheet: Sheet) -> list[HistoryRow]:
    """Audit entries shown on a sheet's history: those about revisions the viewer may see,
    with chosen names only and moderators' reasons only where marked public."""
    rows = []
    for e in queries.audit_entries(sheet=sheet):
        if e.revision is not None and not can(current_user, Capability.VIEW_REVISION, e.revision):
            continue
        shown = e.reason_is_public or _sees_internal_reason(e.revision)
        rows.append(HistoryRow(e.created_at, e.label, e.revision_id, public_name(e.actor),
                               e.reason if shown else "",
                               shown and bool(e.reason) and not e.reason_is_public))
    return rows


def review_reason(revision: Revision) -> str:
    """A revision's review reason if the viewer may read it (see history_entries)."""
    if not revision.review_reason:
        return ""
    if _sees_internal_reason(revision):
        return revision.review_reason
    entry = db.session.scalar(select(AuditEntry).where(
        AuditEntry.revision_id == revision.id, AuditEntry.reason == revision.review_reason)
        .order_by(AuditEntry.id.desc()).limit(1))
    return revision.review_reason if entry is not None and entry.reason_is_public else ""


WORK_COUNTS = "kb_moderation_counts"


def work_counts(full: bool = False) -> dict[str, int]:
    """What waits for moderators, per tab of the moderation pages (once per request). The
    header's "Modération" link shows the queue and the reported sheets; `full` adds the tabs
    whose counts take longer (fraîcheur, doublons, questions), read on moderation pages only."""
    counts: dict[str, int] = g.get(WORK_COUNTS) or {}
    if not counts:
        counts["moderation.queue"] = queries.pending_count()
        if can(current_user, Capability.MODERATE):
            counts["moderation.reports"] = queries.reported_sheet_count()
    if full and "questions.queue" not in counts:
        from kb.duplicates.views import open_pair_count
        from kb.freshness.operations import due_sheets
        from kb.questions.operations import pending_publication

        if can(current_user, Capability.MODERATE):
            counts["freshness.queue"] = len(due_sheets())
            counts["duplicates.queue"] = open_pair_count()
        counts["questions.queue"] = len(pending_publication())
    g.setdefault(WORK_COUNTS, counts)
    return counts


def header_count() -> int:
    counts = work_counts()
    return counts["moderation.queue"] + counts.get("moderation.reports", 0)


def init_app(app: Flask) -> None:
    app.before_request(check_honeypot)
    spam.init_app(app)
    app.jinja_env.globals.update(
        moderation_history=history_entries, review_reason=review_reason,
        REVIEW_INTERVALS=REVIEW_INTERVALS, HONEYPOT_FIELD=HONEYPOT_FIELD,
        pending_status=RevisionStatus.PENDING.value, audit_actions=Action,
        revision_status_labels=REVISION_STATUS_LABELS, moderation_counts=work_counts,
        moderation_header_count=header_count)
