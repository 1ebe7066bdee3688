"""Pages and API of learning visits. Thin: parse, call operations, commit, answer."""

from __future__ import annotations

import csv
import io
from typing import Any

from flask import Blueprint, Flask, Response, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from kb.auth.identity import api_user, login_required, token_required
from kb.auth.models import User
from kb.auth.permissions import Capability, require
from kb.errors import Invalid, KbError
from kb.extensions import csrf
from kb.importers.exports import EXCEL_BOM
from kb.importers.tabular import spreadsheet_safe
from kb.sheets.visibility import PUBLISHED, get_sheet_or_404
from kb.territories.forms import department_choices
from kb.territories.register import register
from kb.timeutil import isoformat, parse_iso
from kb.transaction import commit
from kb.visits import operations
from kb.visits.models import (
    FORMAT_LABELS,
    SlotStatus,
    VisitCampaign,
    VisitFormat,
    VisitRegistration,
    VisitSlot,
)

bp = Blueprint("visits", __name__)


def slot_object(slot: VisitSlot) -> dict[str, Any]:
    """The public view of a slot: never anything about who registered."""
    commune = register().commune(slot.commune_code) if slot.commune_code else None
    return {"id": slot.id, "sheet": slot.sheet.slug, "sheet_title": slot.sheet.title,
            "status": slot.status, "starts_at": isoformat(slot.starts_at),
            "ends_at": isoformat(slot.ends_at), "place": slot.place,
            "commune_code": slot.commune_code, "commune": commune.name if commune else "",
            "department": slot.department, "format": slot.format, "capacity": slot.capacity,
            "seats_left": slot.seats_left, "min_participants": slot.min_participants,
            "decide_by": isoformat(slot.decide_by), "host_name": slot.host_name,
            "host_phone": slot.host_phone, "bring": slot.bring,
            "accessibility": slot.accessibility,
            "url": url_for("sheets.show", slug=slot.sheet.slug, _anchor=f"visite-{slot.id}",
                           _external=False)}


def _filters(args: Any) -> operations.SlotFilter:
    try:
        start = parse_iso(args.get("from") or None)
        end = parse_iso(args.get("to") or None)
    except ValueError:
        raise KbError("paramètres « from » et « to » : des dates ISO 8601 (2027-03-04)") from None
    fmt = args.get("format", "")
    if fmt and fmt not in {f.value for f in VisitFormat}:
        raise KbError("paramètre « format » : visite, atelier ou immersion")
    territory = args.get("territory", "").strip().upper()
    if territory and not (register().department(territory) or register().commune(territory)):
        raise KbError("paramètre « territory » : un code de département (29) ou de commune "
                      "(29019)")
    return operations.SlotFilter(start=start, end=end, territory=territory, format=fmt)


def _actor() -> User:
    user = api_user()
    assert user is not None  # token_required
    return user


# --- API ------------------------------------------------------------------------------------

@bp.post("/api/v1/sheets/<slug>/visits")
@csrf.exempt
@token_required
def api_create(slug: str) -> Any:
    sheet = get_sheet_or_404(slug, PUBLISHED)
    slot = operations.create_slot(sheet, _actor(), request.get_json(silent=True))
    commit()
    return jsonify(slot_object(slot)), 201




@bp.get("/api/v1/visits")
def api_list() -> Any:
    slots = operations.public_slots(_filters(request.args))
    return jsonify({"items": [slot_object(s) for s in slots]})


# One rule per path for all its methods: with two rules of one pattern, an id the converter
# refuses (above 2**31 - 1) gets werkzeug's 405 instead of a 404.
@bp.route("/api/v1/visits/<int:slot_id>", methods=["GET", "PATCH"])
@csrf.exempt
def api_slot(slot_id: int) -> Any:
    if request.method == "GET":
        return jsonify(slot_object(operations.slot_or_404(slot_id)))
    return _api_update(slot_id)


@token_required
def _api_update(slot_id: int) -> Any:
    operations.slot_or_404(slot_id)
    slot = operations.update_slot(slot_id, _actor(), request.get_json(silent=True))
    commit()
    return jsonify(slot_object(slot))


def _registration_result(registration: VisitRegistration) -> dict[str, Any]:
    result: dict[str, Any] = {"id": registration.id, "status": registration.status}
    position = operations.waitlist_position(registration)
    if position is not None:
        result["position"] = position
    return result


@bp.route("/api/v1/visits/<int:slot_id>/registrations", methods=["GET", "POST"])
@csrf.exempt
@token_required
def api_registrations(slot_id: int) -> Any:
    if request.method == "GET":
        return _api_registrants(slot_id)
    return _api_register(slot_id)


def _api_register(slot_id: int) -> Any:
    operations.slot_or_404(slot_id)
    body = request.get_json(silent=True)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise Invalid("attendu : un objet JSON, éventuellement vide ({\"phone\": \"06…\"})")
    registration = operations.register_user(slot_id, _actor(), body.get("phone", ""),
                                            body.get("structure", ""))
    result = _registration_result(registration)
    commit()
    return jsonify(result), 201


@bp.delete("/api/v1/visits/<int:slot_id>/registrations/me")
@csrf.exempt
@token_required
def api_unregister(slot_id: int) -> Any:
    operations.slot_or_404(slot_id)
    operations.unregister_user(slot_id, _actor())
    commit()
    return "", 204


def _registrant_object(registration: VisitRegistration) -> dict[str, Any]:
    # No e-mail address: nobody's address is shown to anyone (the host calls or meets them).
    # `id` is what the attendance names; after the visit, who came and what they said.
    return {"id": registration.id, "name": registration.user.name,
            "structure": registration.structure, "phone": registration.phone,
            "status": registration.status, "registered_at": isoformat(registration.registered_at),
            "position": operations.waitlist_position(registration),
            "attended": registration.attended, "rating": registration.rating,
            "comment": registration.comment}


@bp.post("/api/v1/visits/<int:slot_id>/attendance")
@csrf.exempt
@token_required
def api_attendance(slot_id: int) -> Any:
    """The host marks who came, as on the registrants page: `present` names registrations
    (the `id` of the registrants list); the other registered people are marked absent."""
    slot = operations.slot_or_404(slot_id)
    body = request.get_json(silent=True)
    present = body.get("present") if isinstance(body, dict) else None
    if not isinstance(present, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in present):
        raise Invalid("attendu : {\"present\": [identifiants des inscriptions présentes]}",
                      field="present")
    operations.mark_attendance(slot, _actor(), set(present), strict=True)
    rows = operations.registrants_for(slot, _actor())
    commit()
    return jsonify({"items": [_registrant_object(r) for r in rows]})


@bp.post("/api/v1/visits/<int:slot_id>/rating")
@csrf.exempt
@token_required
def api_rating(slot_id: int) -> Any:
    """A visitor's 1-5 score and comment, as on "Mes visites"."""
    slot = operations.slot_or_404(slot_id)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("attendu : {\"score\": 1 à 5, \"comment\": \"…\"}")
    unknown = sorted(set(body) - {"score", "comment"})
    if unknown:
        raise Invalid(f"champ inconnu : {', '.join(unknown)}", fields=unknown)
    score = body.get("score")
    if isinstance(score, bool) or not isinstance(score, int):
        raise Invalid("« score » : une note entière de 1 à 5", field="score")
    registration = operations.rate(slot, _actor(), score, body.get("comment", ""))
    result = {"score": registration.rating, "comment": registration.comment,
              "rated_at": isoformat(registration.rated_at)}
    commit()
    return jsonify(result)


def _api_registrants(slot_id: int) -> Any:
    slot = operations.slot_or_404(slot_id)
    rows = operations.registrants_for(slot, _actor())
    return jsonify({"items": [_registrant_object(r) for r in rows]})


CSV_HEADER = ("Nom", "Structure", "Téléphone professionnel", "Statut",
              "Inscrit le", "Position en liste d'attente")
STATUS_LABELS = {"registered": "inscrit·e", "waitlisted": "en attente"}


def registrants_csv(slot: VisitSlot, rows: list[VisitRegistration]) -> Response:
    """French spreadsheet-safe: ";" between cells, a byte order mark, no cell a formula."""
    from kb.wording import french_datetime

    out = io.StringIO()
    out.write(EXCEL_BOM)
    writer = csv.writer(out, delimiter=";")
    writer.writerow(CSV_HEADER)
    for r in rows:
        position = operations.waitlist_position(r)
        writer.writerow([spreadsheet_safe(str(v)) for v in (
            r.user.name, r.structure, r.phone, STATUS_LABELS.get(r.status, r.status),
            french_datetime(r.registered_at), "" if position is None else position)])
    return Response(out.getvalue().encode("utf-8"), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="inscrits-visite-{slot.id}.csv"'})


@bp.get("/api/v1/visits/<int:slot_id>/registrations.csv")
@token_required
def api_registrants_csv(slot_id: int) -> Response:
    slot = operations.slot_or_404(slot_id)
    return registrants_csv(slot, operations.registrants_for(slot, _actor()))


# --- pages ----------------------------------------------------------------------------------

@bp.get("/visites")
def index() -> str:
    try:
        filters = _filters(request.args)
    except KbError as exc:
        flash(exc.message, "error")
        filters = operations.SlotFilter()
    slots = operations.public_slots(filters)
    user = current_user if current_user.is_authenticated else None
    return render_template("visits/index.html", slots=slots, filters=filters,
                           formats=FORMAT_LABELS, args=request.args, mine=_mine(slots),
                           departments=[(code, label) for code, label in department_choices()
                                        if code],
                           feed_url=operations.feed_url(user) if user else None)


def _mine(slots: list[VisitSlot]) -> dict[int, VisitRegistration]:
    found = {}
    for slot in slots:
        registration = operations.registration_of(slot, current_user)
        if registration is not None:
            found[slot.id] = registration
    return found


def _back(slot: VisitSlot) -> str:
    target = request.form.get("next", "")
    if target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("sheets.show", slug=slot.sheet.slug, _anchor="visites")


@bp.post("/visites/<int:slot_id>/inscription")
@login_required
def register_page(slot_id: int) -> Any:
    slot = operations.slot_or_404(slot_id)
    if not FlaskForm().validate_on_submit():
        raise Invalid("formulaire expiré : rechargez la page")
    registration = operations.register_user(slot_id, current_user, request.form.get("phone", ""),
                                            request.form.get("structure", ""))
    position = operations.waitlist_position(registration)
    commit()
    if position is None:
        flash("Vous êtes inscrit·e. La confirmation et l'invitation pour votre agenda "
              "arrivent par e-mail.", "success")
    else:
        flash(f"Ce créneau est complet : vous êtes en position {position} sur la liste "
              "d'attente.", "success")
    return redirect(_back(slot))


@bp.post("/visites/<int:slot_id>/desinscription")
@login_required
def unregister_page(slot_id: int) -> Any:
    slot = operations.slot_or_404(slot_id)
    if not FlaskForm().validate_on_submit():
        raise Invalid("formulaire expiré : rechargez la page")
    operations.unregister_user(slot_id, current_user)
    commit()
    flash("Votre désinscription est enregistrée.", "success")
    return redirect(_back(slot))


@bp.get("/visites/<int:slot_id>/inscrits")
@login_required
def registrants_page(slot_id: int) -> Any:
    slot = operations.slot_or_404(slot_id)
    rows = operations.registrants_for(slot, current_user)
    from kb.timeutil import utcnow

    return render_template("visits/registrants.html", slot=slot, rows=rows,
                           position=operations.waitlist_position,
                           started=slot.starts_at <= utcnow() and slot.status != "cancelled",
                           mean=operations.mean_rating(slot))


@bp.post("/visites/<int:slot_id>/presences")
@login_required
def attendance_page(slot_id: int) -> Any:
    slot = operations.slot_or_404(slot_id)
    if not FlaskForm().validate_on_submit():
        raise Invalid("formulaire expiré : rechargez la page")
    present = {int(v) for v in request.form.getlist("present") if v.isascii() and v.isdigit()}
    operations.mark_attendance(slot, current_user, present)
    commit()
    flash("Présences enregistrées.", "success")
    return redirect(url_for("visits.registrants_page", slot_id=slot.id))


@bp.get("/mes-visites")
@login_required
def mine() -> str:
    from kb.timeutil import utcnow

    return render_template("visits/mine.html", rows=operations.my_registrations(current_user),
                           now=utcnow(), feed_url=operations.feed_url(current_user))


@bp.post("/visites/<int:slot_id>/avis")
@login_required
def rate_page(slot_id: int) -> Any:
    slot = operations.slot_or_404(slot_id)
    if not FlaskForm().validate_on_submit():
        raise Invalid("formulaire expiré : rechargez la page")
    operations.rate(slot, current_user, request.form.get("rating", ""),
                    request.form.get("comment", ""))
    commit()
    flash("Merci pour votre avis : l'équipe qui vous a accueilli·e le verra.", "success")
    return redirect(url_for("visits.mine"))


@bp.get("/visites/<int:slot_id>/inscrits.csv")
@login_required
def registrants_page_csv(slot_id: int) -> Response:
    slot = operations.slot_or_404(slot_id)
    return registrants_csv(slot, operations.registrants_for(slot, current_user))


LOCAL = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends and shows


class SlotForm(FlaskForm):
    starts_at = DateTimeLocalField("Début (heure de Paris)", format=LOCAL, validators=[InputRequired()])
    ends_at = DateTimeLocalField("Fin", format=LOCAL, validators=[InputRequired()])
    place = StringField("Adresse du rendez-vous", validators=[DataRequired(), Length(max=300)])
    format = SelectField("Format", choices=[(f.value, label) for f, label in FORMAT_LABELS.items()])
    capacity = IntegerField("Places", validators=[InputRequired(), NumberRange(1, 500)])
    min_participants = IntegerField(
        "Minimum de participants", default=1, validators=[InputRequired(), NumberRange(1, 500)],
        description="En dessous à la date de décision, la visite est annulée et chacun prévenu.")
    decide_by = DateTimeLocalField("Date de décision", format=LOCAL, validators=[Optional()],
                                   description="Par défaut : trois jours avant le début.")
    host_name = StringField("Personne qui accueille", validators=[DataRequired(), Length(max=120)])
    host_phone = StringField("Téléphone professionnel", validators=[Length(max=40)])
    bring = TextAreaField("À prévoir", validators=[Length(max=2000)])
    accessibility = TextAreaField("Accessibilité", validators=[Length(max=2000)])


def _form_data(form: SlotForm) -> dict[str, Any]:
    """The form as the API's JSON: local times in Paris become ISO times with their offset."""
    from kb.wording import PARIS

    data: dict[str, Any] = {}
    for name in ("starts_at", "ends_at", "decide_by"):
        value = getattr(form, name).data
        if value is not None:
            data[name] = value.replace(tzinfo=PARIS).isoformat()
    for name in ("capacity", "min_participants"):
        data[name] = getattr(form, name).data
    for name in ("place", "format", "host_name", "host_phone", "bring", "accessibility"):
        data[name] = getattr(form, name).data or ""
    return data


def _local(value: Any) -> Any:
    from kb.wording import local_time

    return local_time(value).replace(tzinfo=None) if value is not None else None


@bp.route("/fiches/<slug>/visites/nouvelle", methods=["GET", "POST"])
@login_required
def create_page(slug: str) -> Any:
    sheet = get_sheet_or_404(slug, PUBLISHED)
    operations.check_host(current_user, sheet)
    form = SlotForm()
    error = None
    if form.validate_on_submit():
        try:
            slot = operations.create_slot(sheet, current_user, _form_data(form))
            commit()
        except Invalid as exc:
            error = exc.message  # shown beside the kept form
        else:
            flash("Créneau ouvert aux inscriptions.", "success")
            return redirect(url_for("sheets.show", slug=sheet.slug, _anchor=f"visite-{slot.id}"))
    status = 422 if request.method == "POST" else 200
    return render_template("visits/form.html", sheet=sheet, form=form, slot=None,
                           error=error), status


@bp.route("/visites/<int:slot_id>/modifier", methods=["GET", "POST"])
@login_required
def edit_page(slot_id: int) -> Any:
    slot = operations.slot_or_404(slot_id)
    operations.check_host(current_user, slot.sheet)
    form = SlotForm(obj=None if request.method == "POST" else slot)
    if request.method == "GET":
        for name in ("starts_at", "ends_at", "decide_by"):
            getattr(form, name).data = _local(getattr(slot, name))
    error = None
    if request.form.get("status") == SlotStatus.CANCELLED:
        if not FlaskForm().validate_on_submit():
            raise Invalid("formulaire expiré : rechargez la page")
        operations.update_slot(slot_id, current_user, {"status": SlotStatus.CANCELLED.value})
        commit()
        flash("Créneau annulé : chaque inscrit·e est prévenu·e par e-mail.", "success")
        return redirect(url_for("sheets.show", slug=slot.sheet.slug, _anchor="visites"))
    if form.validate_on_submit():
        try:
            operations.update_slot(slot_id, current_user, _form_data(form))
            commit()
        except Invalid as exc:
            error = exc.message
        else:
            flash("Créneau modifié : les inscrits reçoivent l'invitation mise à jour.", "success")
            return redirect(url_for("sheets.show", slug=slot.sheet.slug,
                                    _anchor=f"visite-{slot.id}"))
    status = 422 if request.method == "POST" else 200
    return render_template("visits/form.html", sheet=slot.sheet, form=form, slot=slot,
                           error=error), status


# --- campaigns ------------------------------------------------------------------------------

@bp.route("/parcours/nouveau", methods=["GET", "POST"])
@require(Capability.MODERATE)
def campaign_create() -> Any:
    error = None
    if request.method == "POST":
        if not FlaskForm().validate_on_submit():
            raise Invalid("formulaire expiré : rechargez la page")
        from kb.wording import PARIS

        form = request.form
        data: dict[str, Any] = {"name": form.get("name", ""),
                                "department": form.get("department", "")}
        for name in ("starts_on", "ends_on"):
            value = form.get(name, "")
            data[name] = f"{value}T00:00:00" if len(value) == 10 else value
        if form.get("cap", "").strip():
            data["cap"] = int(form["cap"]) if form["cap"].strip().isdigit() else form["cap"]
        try:
            for name in ("starts_on", "ends_on"):
                parsed = parse_iso(data[name]) if data[name] else None
                if parsed is not None:
                    data[name] = parsed.replace(tzinfo=PARIS).isoformat()
            campaign = operations.create_campaign(current_user, data)
            commit()
        except (Invalid, ValueError) as exc:
            error = exc.message if isinstance(exc, Invalid) else "dates invalides"
        else:
            flash("Parcours créé. Les équipes y rattachent leurs créneaux.", "success")
            return redirect(url_for("visits.campaign", slug=campaign.slug))
    return render_template("visits/campaign_form.html", error=error, form=request.form,
                           departments=[d for d in department_choices() if d[0]]), \
        422 if error else 200


@bp.get("/parcours")
def campaigns() -> str:
    from kb.timeutil import utcnow

    return render_template("visits/campaigns.html", campaigns=operations.campaigns(),
                           now=utcnow())


def slots_map(campaign: VisitCampaign, filters: operations.SlotFilter) -> Any:
    """The territories' map of France (inline SVG, no tiles) with the campaign's open slots per
    département under the other filters; each département links to the list filtered on it.
    Framed on the campaign's région when every slot is there."""
    from dataclasses import replace

    from kb.territories.map import departments_map

    counts: dict[str, int] = {}
    for slot in operations.public_slots(replace(filters, territory=""), campaign=campaign):
        if slot.department:
            counts[slot.department] = counts.get(slot.department, 0) + 1
    reg = register()
    home = reg.department(campaign.department) if campaign.department else None
    region = home.region if home is not None and all(
        (d := reg.department(code)) is not None and d.region == home.region
        for code in counts) else None
    kept: dict[str, Any] = {k: v for k, v in request.args.items()
                            if k in ("from", "to", "format") and v}

    def url(department: Any) -> str:
        return url_for("visits.campaign", slug=campaign.slug, territory=department.code,
                       **kept, _anchor="creneaux")

    drawn = departments_map(counts, url, region=region)
    # The map speaks of sheets: here its counts are slots.
    legend = [(level, text.replace("aucune fiche", "aucun créneau")
               .replace("fiches", "créneaux").replace("fiche", "créneau"))
              for level, text in drawn.legend]
    return replace(drawn, legend=legend)


@bp.get("/parcours/<slug>")
def campaign(slug: str) -> str:
    campaign = operations.campaign_or_404(slug)
    try:
        filters = _filters(request.args)
    except KbError as exc:
        flash(exc.message, "error")
        filters = operations.SlotFilter()
    slots = operations.public_slots(filters, campaign=campaign)
    structures, people = operations.invitations(campaign)
    return render_template("visits/campaign.html", campaign=campaign, slots=slots,
                           filters=filters, formats=FORMAT_LABELS, args=request.args,
                           mine=_mine(slots), stats=operations.campaign_stats(campaign),
                           departments=[d for d in department_choices() if d[0]],
                           map=slots_map(campaign, filters),
                           invited_structures=structures, invited_people=people)


@bp.route("/parcours/<slug>/invites", methods=["GET", "POST"])
@require(Capability.MODERATE)
def campaign_invitations(slug: str) -> Any:
    """The moderator names the invited structures (chosen in the list) and professionals (one
    address per line); both lists replace the former ones."""
    from sqlalchemy import select

    from kb.extensions import db
    from kb.structures.models import Structure

    campaign = operations.campaign_or_404(slug)
    error = None
    structures, people = operations.invitations(campaign)
    chosen = {s.id for s in structures}
    emails_text = "\n".join(u.email for u in people)
    if request.method == "POST":
        if not FlaskForm().validate_on_submit():
            raise Invalid("formulaire expiré : rechargez la page")
        chosen = {int(v) for v in request.form.getlist("structures")
                  if v.isascii() and v.isdigit() and len(v) <= 9}  # ids, not 10**5000
        emails_text = request.form.get("emails", "")
        emails = [e for e in emails_text.replace(",", "\n").replace(";", "\n").split() if e]
        try:
            operations.set_invitations(campaign, current_user, sorted(chosen), emails)
            commit()
        except Invalid as exc:
            error = exc.message
        else:
            flash("Invitations enregistrées.", "success")
            return redirect(url_for("visits.campaign", slug=campaign.slug))
    choices = list(db.session.scalars(select(Structure).order_by(Structure.name)))
    return render_template("visits/campaign_invitations.html", campaign=campaign,
                           choices=choices, chosen=chosen, emails=emails_text,
                           error=error), 422 if error else 200


STATS_LABELS = {
    "partners": "Partenaires impliqués (fiches ayant ouvert des créneaux)",
    "actions_visited": "Actions visitées",
    "professionals_invited": "Professionnels invités",
    "invited_visited": "Invités ayant fait au moins une visite",
    "professionals_registered": "Professionnels inscrits",
    "professionals_visited": "Professionnels ayant fait au moins une visite",
    "visits_made": "Visites réalisées",
    "visits_per_professional_mean": "Visites par professionnel (moyenne)",
    "visits_per_professional_max": "Visites par professionnel (maximum)",
    "share_local": "Part des visites d'actions locales",
    "share_departmental_or_wider": "Part des visites d'actions départementales ou plus larges",
    "mean_rating": "Note moyenne (sur 5)",
}


@bp.get("/parcours/<slug>/statistiques.csv")
def campaign_csv(slug: str) -> Response:
    campaign = operations.campaign_or_404(slug)
    out = io.StringIO()
    out.write(EXCEL_BOM)
    writer = csv.writer(out, delimiter=";")
    writer.writerow(("Indicateur", "Valeur"))
    for key, value in operations.campaign_stats(campaign).items():
        shown = "" if value is None else str(value).replace(".", ",")  # French decimals
        writer.writerow((spreadsheet_safe(STATS_LABELS[key]), spreadsheet_safe(shown)))
    return Response(out.getvalue().encode("utf-8"), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="parcours-{campaign.slug}.csv"'})


@bp.get("/visites/calendrier/<token>.ics")
def feed(token: str) -> Response:
    return Response(operations.feed_for_token(token), mimetype="text/calendar",
                    headers={"Cache-Control": "private, no-store"})


def init_app(app: Flask) -> None:
    app.jinja_env.globals["visit_slots_of"] = lambda sheet: operations.public_slots(sheet=sheet)
    app.jinja_env.globals["visit_registration_of"] = operations.registration_of
    app.jinja_env.globals["may_host_visits"] = operations.may_host
    app.jinja_env.globals["visit_stats_labels"] = STATS_LABELS
    from kb.visits.openapi import visit_paths

    app.extensions.setdefault("kb_openapi_paths", []).append(visit_paths)


