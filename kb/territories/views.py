"""Territory pages (/territoires/<code>-<name>), the map, and the place autocomplete (JSON)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from kb.auth.permissions import Capability, require
from kb.embed.http import stateless
from kb.errors import ValidationError
from kb.extensions import db
from kb.sheets import places as place_operations
from kb.sheets.filters import (
    FACETS_BY_PARAM,
    Filters,
    apply_filters,
    count_facets,
    facet_labels,
    published_ids,
)
from kb.sheets.models import Sheet, published_sheets
from kb.territories.map import FranceMap, departments_map
from kb.territories.register import KIND_LABELS, Territory, register, territories_with_code
from kb.transaction import commit

bp = Blueprint("territories", __name__)

# The filter parameter (kb/sheets/fields.py) of each kind of territory.
PARAM = {"commune": "commune", "epci": "epci", "departement": "department", "region": "region"}
SHEETS_SHOWN = 20
SUGGESTIONS = 10


def territory_url(territory: Territory, **values: Any) -> str:
    return url_for("territories.page", ref=territory.slug, **values)


def init_app(app: Flask) -> None:
    app.jinja_env.globals["territory_url"] = territory_url
    app.jinja_env.globals["place_of"] = _place_of
    app.jinja_env.filters["region_label"] = _region_label


def _region_label(code: str) -> str:
    found = register().regions.get(code) if code else None
    return found.name if found else code


def _place_of(data: dict[str, Any]) -> Any:
    from kb.territories.places import derive

    return derive(data)


def _find(ref: str) -> Territory | Response:
    """`<code>-<name>`: the code decides; the name tells a région from a département with the
    same code (53-bretagne, 53-mayenne); a stale or missing name redirects."""
    code, _, slug = ref.partition("-")
    candidates = territories_with_code(code)
    for territory in candidates:
        if territory.slug == ref:
            return territory
    if len(candidates) == 1:
        return redirect(territory_url(candidates[0]), 301)
    if candidates:
        by_name = [t for t in candidates if t.slug.partition("-")[2] == slug]
        if len(by_name) == 1:
            return by_name[0]
        links = " ; ".join(f"{KIND_LABELS[t.kind].lower()} {t.label} : {territory_url(t)}"
                           for t in candidates)
        abort(404, f"Le code {code} désigne plusieurs territoires ({links}).")
    abort(404, "Ce territoire n'existe pas dans le registre officiel.")


@dataclass
class Count:
    key: str
    label: str
    count: int
    url: str


def _parents(territory: Territory) -> list[Territory]:
    reg = register()
    chain: list[Territory] = []
    if territory.kind == "commune":
        commune = reg.communes[territory.code]
        if commune.epci:
            chain.append(reg.epcis[commune.epci])
        chain += [reg.departments[commune.department], reg.regions[commune.region]]
    elif territory.kind == "epci":
        department = reg.departments.get(reg.epci_department(reg.epcis[territory.code]))
        if department is not None:
            chain += [department, reg.regions[department.region]]
    elif territory.kind == "departement":
        chain.append(reg.regions[reg.departments[territory.code].region])
    return chain


def _children(territory: Territory, counts: dict[str, dict[str, int]]) -> tuple[str, list[Count]]:
    """The territories just below, with their counts (those without sheets too, but for the
    communes of an EPCI, which can be hundreds)."""
    reg = register()
    if territory.kind == "region":
        below: list[Territory] = list(reg.departments_of_region(territory.code))
        title, param = "Départements", "department"
    elif territory.kind == "departement":
        below = list(reg.epcis_of_department(territory.code))
        title, param = "Intercommunalités", "epci"
    elif territory.kind == "epci":
        below = sorted((reg.communes[c] for c in reg.epci_members.get(territory.code, [])
                        if counts["commune"].get(c)), key=lambda c: c.name)
        title, param = "Communes ayant des fiches", "commune"
    else:
        return "", []
    return title, [Count(t.code, t.label, counts[param].get(t.code, 0), territory_url(t))
                   for t in below]


@bp.get("/territoires/<ref>")
def page(ref: str) -> Any:
    found = _find(ref)
    if isinstance(found, Response):
        return found
    territory = found
    param = PARAM[territory.kind]
    filters = Filters({param: territory.code})
    args: dict[str, Any] = filters.active()
    total, counts = count_facets(published_ids(filters))
    sheets = db.session.scalars(apply_filters(published_sheets(), filters)
                                .order_by(Sheet.updated_at.desc(), Sheet.id.desc())
                                .limit(SHEETS_SHOWN)).all()

    def ranked(name: str, limit: int = 100) -> list[Count]:
        labels = facet_labels(name, counts[name])
        items = sorted(counts[name].items(), key=lambda kv: (-kv[1], labels.get(kv[0], kv[0])))
        return [Count(key, labels.get(key, key), n,
                      url_for("sheets.index", **{**args, name: key}))
                for key, n in items[:limit]]

    scale_spec = FACETS_BY_PARAM["scale"]
    by_scale = [Count(value, label, counts["scale"].get(value, 0),
                      url_for("sheets.index", **args, scale=value))
                for value, label in scale_spec.field.choices]
    children_title, children = _children(territory, counts)
    from kb.embed.views import snippets  # the embed domain builds the snippet a partner copies

    query = urlencode(args)
    map_view: FranceMap | None = None
    if territory.kind == "region":
        map_view = departments_map(counts["department"], territory_url, region=territory.code)
    return render_template(
        "territories/page.html", territory=territory, kind_label=KIND_LABELS[territory.kind],
        parents=_parents(territory), total=total, sheets=sheets, by_scale=by_scale,
        by_theme=ranked("tag", 20), children_title=children_title, children=children,
        filters=filters, map=map_view,
        list_url=url_for("sheets.index", **args),
        search_url=url_for("search.results", **args) if "search.results" in _views() else None,
        feed_url=url_for("opendata.feed_filtered", **args),
        snippet=snippets("list", query, territory.label),
        configurator_url=url_for("embed.configurator", mode="list", **args))


def _views() -> dict[str, Any]:
    from flask import current_app

    return current_app.view_functions


@bp.get("/territoires")
def index() -> str:
    """The map of France and the régions, with their counts."""
    _, counts = count_facets(published_ids())
    reg = register()
    regions = [Count(r.code, r.name, counts["region"].get(r.code, 0), territory_url(r))
               for r in sorted(reg.regions.values(), key=lambda r: r.name)
               if len(r.code) == 2]
    return render_template("territories/index.html", regions=regions,
                           map=national_map(counts["department"]))


def national_map(department_counts: dict[str, int] | None = None) -> FranceMap:
    """The home page's map: sheets per département, all of France."""
    if department_counts is None:
        _, counts = count_facets(published_ids())
        department_counts = counts["department"]
    return departments_map(department_counts, territory_url)


@bp.get("/api/v1/territories")
@stateless
def suggest() -> Response:
    """Autocomplete: communes (name prefix, postcode or INSEE code) or EPCI (words of the name)."""
    text = " ".join(request.args.get("q", "").split())[:80]
    kind = request.args.get("kind", "commune")
    reg = register()
    items: list[dict[str, Any]] = []
    if kind == "commune":
        for commune in reg.search_communes(text, SUGGESTIONS):
            epci = reg.epcis.get(commune.epci)
            department = reg.departments[commune.department]
            items.append({
                "code": commune.code, "name": commune.name, "label": commune.label,
                "postcodes": list(commune.postcodes), "population": commune.population,
                "department": commune.department, "department_name": department.name,
                "region": commune.region, "region_name": reg.regions[commune.region].name,
                "epci": commune.epci, "epci_name": epci.name if epci else ""})
    elif kind == "epci":
        for epci in reg.search_epcis(text, SUGGESTIONS):
            items.append({"code": epci.code, "name": epci.name, "label": epci.name})
    else:
        abort(400, "« kind » vaut commune ou epci.")
    response = jsonify({"items": items})
    response.headers["Access-Control-Allow-Origin"] = "*"  # read-only, open to any site
    response.cache_control.public = True
    response.cache_control.max_age = 86400  # the register changes once a year
    return response


# --- moderators: ambiguous places of imported sheets, settled once ------------------------------

@bp.get("/moderation/lieux")
@require(Capability.MODERATE)
def ambiguous() -> str:
    return render_template("territories/ambiguous.html", items=place_operations.ambiguous_places(),
                           form=FlaskForm())


@bp.post("/moderation/lieux/<slug>")
@require(Capability.MODERATE)
def settle(slug: str) -> Response:
    if not FlaskForm().validate_on_submit():
        abort(400, "Formulaire expiré, rechargez la page.")
    sheet = db.session.scalar(published_sheets().where(Sheet.slug == slug))
    if sheet is None:
        abort(404, "Cette fiche n'existe pas ou n'est pas publiée.")
    try:
        revision = place_operations.settle_place(sheet, request.form.get("commune_code", ""),
                                           current_user)
    except ValidationError as exc:
        db.session.rollback()
        flash(next(iter(exc.errors.values())).capitalize() + ".", "error")
    else:
        commit()
        flash(f"« {sheet.title} » : commune précisée ({revision.data['city']}, "
              f"{revision.data['commune_code']}).", "success")
    return redirect(url_for("territories.ambiguous"))
