"""JSON API v1: readers see approved content; writes need a token; bad input gets 4xx."""

import pytest

from kb.sheets.fields import FIELD_NAMES

from .conftest import sheet_data

META = {"slug", "url", "status", "revision", "created_at", "updated_at", "last_reviewed_at",
        "review_due_at", "fresh"}


def test_list_returns_published_sheets_with_pagination_and_filters(client, make_sheet,
                                                                   contributor):
    make_sheet(title="Brest", city="Brest", scale="commune", tags=["accueil"])
    make_sheet(title="Quimper", city="Quimper", scale="quartier", tags=["numérique"])
    make_sheet(author=contributor, title="En attente", city="Brest")
    body = client.get("/api/v1/sheets").get_json()
    assert body["total"] == 2 and body["page"] == 1 and body["per_page"] == 20
    assert {s["title"] for s in body["items"]} == {"Brest", "Quimper"}
    assert set(body["items"][0]) >= set(FIELD_NAMES) | META

    assert [s["title"] for s in client.get("/api/v1/sheets?city=brest").get_json()["items"]] \
        == ["Brest"]
    assert [s["title"] for s in client.get("/api/v1/sheets?scale=quartier").get_json()["items"]] \
        == ["Quimper"]
    assert [s["title"] for s in client.get("/api/v1/sheets?tag=numerique").get_json()["items"]] \
        == ["Quimper"]
    page2 = client.get("/api/v1/sheets?per_page=1&page=2").get_json()
    assert page2["total"] == 2 and len(page2["items"]) == 1
    # Parameters the OpenAPI document does not allow: a French 400 (kb/api/query.py).
    response = client.get("/api/v1/sheets?page=abc&per_page=-3")
    assert response.status_code == 400 and "« page » invalide" in response.json["message"]


def test_get_sheet_object(client, make_sheet):
    revision = make_sheet()
    body = client.get(f"/api/v1/sheets/{revision.sheet.slug}").get_json()
    assert body["title"] == "Accueil inconditionnel en mairie"
    assert body["revision"] == revision.id and body["status"] == "approved"
    assert body["url"] == f"http://kb.test/fiches/{revision.sheet.slug}"
    assert body["fresh"] is True and body["review_due_at"] > body["last_reviewed_at"]


def test_pending_sheet_is_404_for_anonymous_and_visible_to_author_and_moderators(
        client, make_sheet, contributor, moderator, make_user, bearer):
    slug = make_sheet(author=contributor).sheet.slug
    assert client.get(f"/api/v1/sheets/{slug}").status_code == 404
    assert client.get(f"/api/v1/sheets/{slug}", headers=bearer(make_user())).status_code == 404
    for user in (contributor, moderator):
        response = client.get(f"/api/v1/sheets/{slug}", headers=bearer(user))
        assert response.status_code == 200 and response.get_json()["status"] == "pending"


def test_create_requires_a_token(client):
    response = client.post("/api/v1/sheets", json=sheet_data())
    assert response.status_code == 401 and "Bearer" in response.get_json()["message"]
    bad = client.post("/api/v1/sheets", json=sheet_data(), headers={"Authorization": "Bearer x"})
    assert bad.status_code == 401


def test_create_is_201_for_moderators_and_202_for_contributors(client, moderator, contributor,
                                                                bearer):
    created = client.post("/api/v1/sheets", json=sheet_data(), headers=bearer(moderator))
    assert created.status_code == 201
    assert created.get_json()["status"] == "approved"
    pending = client.post("/api/v1/sheets", json=sheet_data(title="Autre"),
                          headers=bearer(contributor))
    assert pending.status_code == 202
    body = pending.get_json()
    assert body["status"] == "pending" and body["slug"] == "autre"
    assert client.get(f"/api/v1/sheets/{body['slug']}").status_code == 404


@pytest.mark.parametrize("payload, field", [
    ({"summary": "sans titre"}, "title"),
    (sheet_data(scale="planete"), "scale"),
    (sheet_data(website="javascript:alert(1)"), "website"),
    (sheet_data(title="x" * 500), "title"),
    (sheet_data(tags="pas une liste"), None),
    ({**sheet_data(), "inconnu": 1}, "inconnu"),
    (sheet_data(tags=[1, 2]), "tags"),
])
def test_bad_input_gets_422_with_a_message_per_field(client, moderator, bearer, payload, field):
    response = client.post("/api/v1/sheets", json=payload, headers=bearer(moderator))
    if field is None:  # a comma-separated string is accepted as a list
        assert response.status_code == 201
        return
    assert response.status_code == 422
    assert field in response.get_json()["fields"]


def test_non_json_body_is_400(client, moderator, bearer):
    response = client.post("/api/v1/sheets", data="pas du json", headers=bearer(moderator),
                           content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_request"


def test_patch_with_current_base(client, make_sheet, moderator, contributor, bearer):
    revision = make_sheet()
    slug = revision.sheet.slug
    ok = client.patch(f"/api/v1/sheets/{slug}", json={"base_revision": revision.id,
                                                       "city": "Morlaix"}, headers=bearer(moderator))
    assert ok.status_code == 200 and ok.get_json()["status"] == "approved"
    assert client.get(f"/api/v1/sheets/{slug}").get_json()["city"] == "Morlaix"

    pending = client.patch(f"/api/v1/sheets/{slug}", json={
        "base_revision": ok.get_json()["revision"], "city": "Brest"}, headers=bearer(contributor))
    assert pending.status_code == 202
    assert client.get(f"/api/v1/sheets/{slug}").get_json()["city"] == "Morlaix"


def test_put_replaces_the_whole_sheet_and_refuses_one_without_its_required_fields(
        client, make_sheet, moderator, bearer):
    revision = make_sheet(tags=["accueil", "mairie"], results="Ouvert en 2020.")
    slug = revision.sheet.slug
    indicator = {"label": "Sorties positives", "kind": "sorties-positives", "value": 29,
                 "unit": "%", "target": 25}
    put = client.put(f"/api/v1/sheets/{slug}", headers=bearer(moderator), json={
        "base_revision": revision.id, "title": "Accueil remplacé",
        "summary": "Le texte entier, remplacé.", "indicators": [indicator]})
    assert put.status_code == 200, put.get_json()
    sheet = client.get(f"/api/v1/sheets/{slug}").get_json()
    assert sheet["title"] == "Accueil remplacé" and sheet["tags"] == [] and sheet["results"] == ""
    assert sheet["indicators"][0]["value"] == 29 and sheet["indicators"][0]["target"] == 25
    # A PUT without a required field is refused, naming it; nothing changes.
    missing = client.put(f"/api/v1/sheets/{slug}", headers=bearer(moderator), json={
        "base_revision": put.get_json()["revision"], "summary": "Sans titre."})
    assert missing.status_code == 422 and "title" in missing.get_json()["fields"]
    assert client.get(f"/api/v1/sheets/{slug}").get_json()["title"] == "Accueil remplacé"


def test_patch_without_base_revision_is_400(client, make_sheet, moderator, bearer):
    slug = make_sheet().sheet.slug
    response = client.patch(f"/api/v1/sheets/{slug}", json={"city": "X"},
                            headers=bearer(moderator))
    assert response.status_code == 400 and "base_revision" in response.get_json()["fields"]
    # An unknown base is refused like any base the caller may not build on (tests/test_trust.py).
    foreign = client.patch(f"/api/v1/sheets/{slug}", json={"city": "X", "base_revision": 999},
                           headers=bearer(moderator))
    assert foreign.status_code == 422 and "base_revision" in foreign.get_json()["fields"]


def test_conflicting_patches_are_409_and_lose_nothing(client, make_sheet, moderator, bearer):
    revision = make_sheet()
    slug, base = revision.sheet.slug, revision.id
    headers = bearer(moderator)
    first = client.patch(f"/api/v1/sheets/{slug}", json={"base_revision": base,
                                                          "results": "Texte A"}, headers=headers)
    assert first.status_code == 200
    merged = client.patch(f"/api/v1/sheets/{slug}", json={"base_revision": base,
                                                           "city": "Morlaix"}, headers=headers)
    assert merged.status_code == 200
    current = client.get(f"/api/v1/sheets/{slug}").get_json()
    assert current["results"] == "Texte A" and current["city"] == "Morlaix"

    conflict = client.patch(f"/api/v1/sheets/{slug}", json={"base_revision": base,
                                                             "results": "Texte B"}, headers=headers)
    assert conflict.status_code == 409
    body = conflict.get_json()
    assert body["error"] == "conflict" and body["fields"] == ["results"]
    assert body["yours"]["results"] == "Texte B" and body["current"]["results"] == "Texte A"
    assert body["current_revision"] == merged.get_json()["revision"]


def test_moderator_approves_and_rejects_through_the_api(client, make_sheet, contributor,
                                                        moderator, bearer):
    pending = make_sheet(author=contributor)
    other = make_sheet(author=contributor, title="Autre")
    assert client.post(f"/api/v1/revisions/{pending.id}/approve",
                       headers=bearer(contributor)).status_code == 403
    assert client.post(f"/api/v1/revisions/{pending.id}/approve").status_code == 401
    approved = client.post(f"/api/v1/revisions/{pending.id}/approve", headers=bearer(moderator))
    assert approved.status_code == 200 and approved.get_json()["status"] == "approved"
    assert client.get(f"/api/v1/sheets/{pending.sheet.slug}").status_code == 200
    again = client.post(f"/api/v1/revisions/{pending.id}/approve", headers=bearer(moderator))
    assert again.status_code == 409

    no_reason = client.post(f"/api/v1/revisions/{other.id}/reject", json={},
                            headers=bearer(moderator))
    assert no_reason.status_code == 422  # Invalid: a refusal needs its reason
    rejected = client.post(f"/api/v1/revisions/{other.id}/reject", json={"reason": "Hors sujet"},
                           headers=bearer(moderator))
    assert rejected.status_code == 200 and rejected.get_json()["status"] == "rejected"
    assert client.post("/api/v1/revisions/9999/approve",
                       headers=bearer(moderator)).status_code == 404


def test_tags_count_only_published_sheets(client, make_sheet, contributor):
    make_sheet(tags=["accueil", "numérique"])
    make_sheet(title="B", tags=["accueil"])
    make_sheet(author=contributor, title="C", tags=["secret"])
    assert client.get("/api/v1/tags").get_json() == [
        {"name": "accueil", "slug": "accueil", "count": 2},
        {"name": "numérique", "slug": "numerique", "count": 1}]


def test_openapi_document_describes_the_declared_fields(client):
    doc = client.get("/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    sheet = doc["components"]["schemas"]["Sheet"]["properties"]
    assert set(FIELD_NAMES) <= set(sheet)
    assert sheet["scale"]["enum"][1:] == ["quartier", "commune", "intercommunalite",
                                          "departement", "region", "national"]
    assert "/api/v1/sheets/{slug}" in doc["paths"]


def test_unknown_api_route_is_json_404(client):
    response = client.get("/api/v1/nope")
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"
