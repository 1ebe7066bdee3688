"""Every moderation route and API endpoint against every role.

Expected outcomes: "login" = redirected to the login page, "ok" = 200, "done" = the action ran
(a redirect elsewhere than the login page), or an HTTP status.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select

from kb.extensions import db
from kb.moderation.models import Report
from kb.sheets import operations
from kb.transaction import commit

ROLES = ("anonymous", "contributor", "trusted", "moderator", "admin")


@dataclass
class World:
    slug: str
    pending_id: int
    report_id: int
    target_id: int
    archived_slug: str
    hidden_slug: str


@pytest.fixture
def world(make_user, make_sheet) -> World:
    published = make_sheet(title="Publiée")
    author = make_user(email="author@example.org")
    pending = operations.edit_sheet(published.sheet, {"city": "Quimper"}, author, published.id)
    report = Report(sheet_id=published.sheet_id, reason="other", comment="?", reporter_key="ip:x")
    db.session.add(report)
    archived = make_sheet(title="Archivée").sheet
    archived.state = "archived"
    hidden = make_sheet(title="Masquée").sheet
    hidden.state = "hidden"
    commit()
    return World(published.sheet.slug, pending.id, report.id, make_user(email="target@example.org").id,
                 archived.slug, hidden.slug)


def _user(role, make_user):
    if role == "anonymous":
        return None
    if role == "trusted":
        return make_user("contributor", trusted=True)
    return make_user(role)


MOD_ONLY_PAGE = {"anonymous": "login", "contributor": 403, "trusted": 403, "moderator": "ok",
                 "admin": "ok"}
MOD_ONLY_ACTION = {"anonymous": "login", "contributor": 403, "trusted": 403, "moderator": "done",
                   "admin": "done"}
EVERYONE_PAGE = dict.fromkeys(ROLES, "ok")
# The world's sheet was written by a moderator: plain contributors are not its contributors.
SHEET_FRESHNESS = {"anonymous": "login", "contributor": 403, "trusted": 403, "moderator": "done",
                   "admin": "done"}

ROUTES = [
    ("GET", "/moderation", {}, MOD_ONLY_PAGE),
    ("GET", "/moderation/revisions/{pending_id}", {}, MOD_ONLY_PAGE),
    ("POST", "/moderation/revisions/{pending_id}/approuver", {}, MOD_ONLY_ACTION),
    ("POST", "/moderation/revisions/{pending_id}/refuser", {"reason": "Non"}, MOD_ONLY_ACTION),
    ("POST", "/moderation/revisions/lot", {"action": "approuver", "revision": "{pending_id}"},
     MOD_ONLY_ACTION),
    ("GET", "/moderation/signalements", {}, MOD_ONLY_PAGE),
    ("POST", "/moderation/signalements/{report_id}/classer", {}, MOD_ONLY_ACTION),
    ("POST", "/moderation/fiches/{slug}/masquer", {"reason": "Douteux"}, MOD_ONLY_ACTION),
    ("POST", "/moderation/fiches/{hidden_slug}/retablir", {}, MOD_ONLY_ACTION),
    ("GET", "/moderation/tableau-de-bord", {}, MOD_ONLY_PAGE),
    ("GET", "/moderation/journal", {}, MOD_ONLY_PAGE),
    ("GET", "/moderation/utilisateurs", {}, MOD_ONLY_PAGE),
    ("POST", "/moderation/utilisateurs/{target_id}/bloquer", {"reason": "Spam"}, MOD_ONLY_ACTION),
    ("POST", "/moderation/utilisateurs/{target_id}/confiance", {}, MOD_ONLY_ACTION),
    ("GET", "/moderation/fraicheur", {}, MOD_ONLY_PAGE),
    ("POST", "/moderation/fiches/{slug}/archiver", {}, MOD_ONLY_ACTION),
    ("POST", "/moderation/fiches/{archived_slug}/desarchiver", {}, MOD_ONLY_ACTION),
    ("GET", "/fiches/{slug}/signaler", {}, EVERYONE_PAGE),
    ("POST", "/fiches/{slug}/toujours-a-jour", {}, SHEET_FRESHNESS),
    ("POST", "/fiches/{slug}/frequence", {"months": "6"}, SHEET_FRESHNESS),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method, path, form, expected", ROUTES,
                         ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_web_route_role_matrix(client, login, make_user, world, role, method, path, form,
                               expected):
    login(_user(role, make_user))
    url = path.format(**vars(world))
    data = {k: v.format(**vars(world)) for k, v in form.items()}
    response = client.get(url) if method == "GET" else client.post(url, data=data)
    outcome = expected[role]
    if outcome == "login":
        assert response.status_code == 302 and "/connexion" in response.headers["Location"]
    elif outcome == "ok":
        assert response.status_code == 200
    elif outcome == "done":
        assert response.status_code == 302 and "/connexion" not in response.headers["Location"]
    else:
        assert response.status_code == outcome


def test_a_sheets_own_contributor_may_confirm_and_set_its_interval(client, login, make_user,
                                                                   make_sheet):
    author = make_user(trusted=True)
    slug = make_sheet(author=author).sheet.slug
    login(author)
    assert client.post(f"/fiches/{slug}/toujours-a-jour").status_code == 302
    assert client.post(f"/fiches/{slug}/frequence", data={"months": "6"}).status_code == 302


API_MOD_ONLY = {"anonymous": 401, "contributor": 403, "trusted": 403, "moderator": 200,
                "admin": 200}
API_ROUTES = [
    ("GET", "/api/v1/moderation/revisions", None, API_MOD_ONLY),
    ("GET", "/api/v1/moderation/reports", None, API_MOD_ONLY),
    ("GET", "/api/v1/moderation/stale", None, API_MOD_ONLY),
    ("POST", "/api/v1/revisions/{pending_id}/approve", {}, API_MOD_ONLY),
    ("POST", "/api/v1/revisions/{pending_id}/reject", {"reason": "Non"}, API_MOD_ONLY),
    ("POST", "/api/v1/sheets/{slug}/confirm", {},
     {"anonymous": 401, "contributor": 403, "trusted": 403, "moderator": 200, "admin": 200}),
    ("POST", "/api/v1/sheets/{slug}/reports", {"reason": "duplicate"}, dict.fromkeys(ROLES, 201)),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method, path, body, expected", API_ROUTES,
                         ids=[f"{m} {p}" for m, p, _, _ in API_ROUTES])
def test_api_role_matrix(client, make_user, bearer, world, role, method, path, body, expected):
    user = _user(role, make_user)
    headers = bearer(user) if user else {}
    url = path.format(**vars(world))
    response = client.get(url, headers=headers) if method == "GET" \
        else client.post(url, json=body, headers=headers)
    assert response.status_code == expected[role]
    if response.status_code >= 400:
        assert set(response.json) >= {"error", "message"}


def test_pending_queue_api_lists_the_pending_revision(client, make_user, bearer, world):
    items = client.get("/api/v1/moderation/revisions", headers=bearer(make_user("moderator"))
                       ).json["items"]
    assert [(i["revision"], i["kind"]) for i in items] == [(world.pending_id, "edit")]
    assert db.session.scalar(select(Report.id)) == world.report_id
