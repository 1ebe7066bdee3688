"""Issue 20, item 1: trust counts moderator decisions, not revisions.

A newcomer who replaced his own pending proposal four times and got the last one approved was
counted as five approved contributions: the replaced proposals showed as "approuvée" (and were
public), he became trusted and his next edit of another sheet was published at once. Now a
replaced proposal is "remplacée", one review counts once, and promotion needs approved
contributions on three different sheets, an account older than the standing period and no block
ever (kb.moderation.standing.trust_progress).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from kb.auth.models import User
from kb.extensions import db
from kb.moderation.models import AuditEntry
from kb.sheets.models import Revision
from kb.timeutil import utcnow
from kb.transaction import commit
from tests.conftest import sheet_data


@pytest.fixture
def rules(app):
    app.config["KB_AUTO_APPROVE_AFTER"] = 5
    app.config["KB_STANDING_DAYS"] = 3
    return app


def _age(user: User, days: int) -> None:
    user.created_at = utcnow() - timedelta(days=days)
    commit()


def _trusted(user: User) -> bool:
    db.session.expire_all()
    return bool(db.session.get(User, user.id).trusted)


def _create(client, headers, **overrides) -> dict:
    response = client.post("/api/v1/sheets", headers=headers, json=sheet_data(**overrides))
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def _approve(client, moderator_headers, revision_id: int) -> None:
    response = client.post(f"/api/v1/revisions/{revision_id}/approve", headers=moderator_headers)
    assert response.status_code == 200, response.get_json()


def _trust_audits(user: User) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(
        AuditEntry.target_user_id == user.id, AuditEntry.action == "trust_auto")))


def test_replacing_ones_own_proposal_four_times_then_one_approval_gives_no_trust(
        rules, client, login, make_user, make_sheet, bearer, moderator):
    newcomer = make_user(email="newcomer@example.org")
    _age(newcomer, 30)  # old enough: only the count of decisions is at stake here
    mine, mod = bearer(newcomer), bearer(moderator)
    created = _create(client, mine, title="Accueil des nouveaux habitants")
    slug, revisions = created["slug"], [created["revision"]]
    for n in range(4):
        replaced = client.patch(f"/api/v1/sheets/{slug}", headers=mine, json={
            "base_revision": revisions[-1], "summary": f"Version {n} du résumé."})
        assert replaced.status_code == 202
        revisions.append(replaced.get_json()["revision"])
    _approve(client, mod, revisions[-1])

    statuses = [db.session.get(Revision, i).status for i in revisions]
    assert statuses == ["superseded"] * 4 + ["approved"]
    login(moderator)
    history = client.get(f"/fiches/{slug}/historique").get_data(as_text=True)
    assert re.findall(r"<td>(approuvée|remplacée|en attente|refusée)", history) \
        == ["approuvée"] + ["remplacée"] * 4  # the newest first
    login(None)
    public = client.get(f"/fiches/{slug}/historique").get_data(as_text=True)
    assert "Version 0 du résumé" not in public and f"n° {revisions[0]}<" not in public
    assert client.get(f"/fiches/{slug}?revision={revisions[1]}").status_code == 404

    assert not _trusted(newcomer) and _trust_audits(newcomer) == []
    other = make_sheet(title="Maison France services")
    edit = client.patch(f"/api/v1/sheets/{other.sheet.slug}", headers=mine, json={
        "base_revision": other.id, "summary": "Texte de vandale"})
    assert edit.status_code == 202 and edit.get_json()["status"] == "pending"
    assert "Texte de vandale" not in client.get(f"/fiches/{other.sheet.slug}").get_data(
        as_text=True)


def test_a_replaced_proposal_cannot_be_approved_or_rejected_any_more(
        rules, client, login, make_user, bearer, moderator):
    author = make_user()
    mine, mod = bearer(author), bearer(moderator)
    created = _create(client, mine)
    replaced = client.patch(f"/api/v1/sheets/{created['slug']}", headers=mine, json={
        "base_revision": created["revision"], "summary": "Mieux dit."})
    for decision in ("approve", "reject"):
        refused = client.post(f"/api/v1/revisions/{created['revision']}/{decision}",
                              headers=mod, json={"reason": "Non"})
        assert refused.status_code == 409
        assert "remplacée" in refused.get_json()["message"]
    # Its review page sends the moderator to the one that replaced it.
    login(moderator)
    page = client.get(f"/moderation/revisions/{created['revision']}").get_data(as_text=True)
    assert "Statut : remplacée" in page
    assert f'/moderation/revisions/{replaced.get_json()["revision"]}"' in page
    assert "Approuver et publier" not in page
    login(None)
    # The moderation queue offers the latest version only.
    assert [row["revision"] for row in client.get(
        "/api/v1/moderation/revisions", headers=mod).get_json()["items"]] \
        == [replaced.get_json()["revision"]]


def _contributions(client, mine, mod, sheets: int, per_sheet: int = 1) -> list[dict]:
    """`sheets` new sheets by the author, each approved; `per_sheet - 1` approved edits more."""
    made = []
    for n in range(sheets):
        created = _create(client, mine, title=f"Initiative numéro {n}")
        _approve(client, mod, created["revision"])
        for k in range(per_sheet - 1):
            edit = client.patch(f"/api/v1/sheets/{created['slug']}", headers=mine, json={
                "base_revision": created["revision"], "summary": f"Précision {k}."})
            _approve(client, mod, edit.get_json()["revision"])
            created["revision"] = edit.get_json()["revision"]
        made.append(created)
    return made


def test_five_approvals_on_two_sheets_do_not_make_a_contributor_trusted(
        rules, client, make_user, bearer, moderator):
    author = make_user()
    _age(author, 30)
    _contributions(client, bearer(author), bearer(moderator), sheets=2, per_sheet=3)
    assert not _trusted(author)


def test_five_approvals_on_three_sheets_make_an_old_enough_account_trusted(
        rules, client, make_user, bearer, moderator):
    author = make_user()
    _age(author, 30)
    mine, mod = bearer(author), bearer(moderator)
    _contributions(client, mine, mod, sheets=2, per_sheet=2)
    assert not _trusted(author)
    _contributions(client, mine, mod, sheets=1)
    assert _trusted(author)
    assert [e.reason for e in _trust_audits(author)] \
        == ["5 contributions approuvées sur 3 fiches"]


def test_a_new_account_waits_for_the_standing_period(rules, client, make_user, bearer,
                                                    moderator):
    author = make_user()  # registered today
    _contributions(client, bearer(author), bearer(moderator), sheets=5)
    assert not _trusted(author)
    _age(author, 4)
    _contributions(client, bearer(author), bearer(moderator), sheets=1)
    assert _trusted(author)


def test_an_account_once_blocked_is_never_trusted_automatically(
        rules, client, login, make_user, bearer, moderator):
    author = make_user()
    _age(author, 30)
    login(moderator)
    assert client.post(f"/moderation/utilisateurs/{author.id}/bloquer",
                       data={"reason": "Publicité"}).status_code == 302
    assert client.post(f"/moderation/utilisateurs/{author.id}/debloquer",
                       data={"reason": "Erreur"}).status_code == 302
    login(None)
    _contributions(client, bearer(author), bearer(moderator), sheets=6)
    assert not _trusted(author)


def test_the_review_page_says_when_approving_makes_the_author_trusted(
        rules, client, login, make_user, bearer, moderator):
    author = make_user()
    _age(author, 30)
    mine, mod = bearer(author), bearer(moderator)
    first, _ = _contributions(client, mine, mod, sheets=2, per_sheet=2)  # 4 on 2 sheets
    same_sheet = client.patch(f"/api/v1/sheets/{first['slug']}", headers=mine, json={
        "base_revision": first["revision"], "summary": "Encore plus précis."}).get_json()
    third_sheet = _create(client, mine, title="Troisième fiche")
    login(moderator)
    promise = "deviendra contributeur de confiance"
    # A fifth approval on a sheet already counted: still two sheets, nothing to say.
    assert promise not in client.get(
        f"/moderation/revisions/{same_sheet['revision']}").get_data(as_text=True)
    page = client.get(f"/moderation/revisions/{third_sheet['revision']}").get_data(as_text=True)
    assert promise in page
    assert client.post(f"/moderation/revisions/{third_sheet['revision']}/approuver",
                       data={"reason": ""}).status_code == 302
    assert _trusted(author)
