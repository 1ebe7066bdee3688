"""One permission model: the capability table decides, `can` is the only question asked, a role
is one row, and the sheet lifecycle and domain errors are ruled once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kb.auth.models import Role
from kb.auth.permissions import (
    ROLE_CAPABILITIES,
    STAFF,
    Capability,
    can,
    capabilities,
)
from kb.errors import Conflict, Invalid, PermissionDenied
from kb.sheets.lifecycle import TRANSITIONS, set_state
from kb.sheets.models import SheetState
from kb.transaction import commit

ROOT = Path(__file__).resolve().parent.parent


def test_every_role_has_one_row_and_admins_may_do_everything():
    assert set(ROLE_CAPABILITIES) == {r.value for r in Role}
    assert ROLE_CAPABILITIES[Role.ADMIN] == frozenset(Capability)
    assert not ROLE_CAPABILITIES[Role.CONTRIBUTOR] & STAFF
    assert Capability.MANAGE_STAFF not in ROLE_CAPABILITIES[Role.MODERATOR]


def test_account_state_and_ownership_rules(make_user, make_sheet):
    contributor, trusted = make_user(), make_user(trusted=True)
    moderator = make_user("moderator")
    assert capabilities(None) == frozenset()
    assert can(trusted, Capability.PUBLISH) and not can(contributor, "publish")
    assert can(moderator, Capability.MANAGE_USERS, contributor)
    assert not can(moderator, Capability.MANAGE_USERS, make_user("moderator"))  # admins only
    assert can(make_user("admin"), Capability.MANAGE_USERS, moderator)

    approved = make_sheet(author=trusted)
    draft = make_sheet(author=contributor, title="Brouillon")
    assert can(None, Capability.VIEW_REVISION, approved)  # approved text is public
    assert not can(None, Capability.VIEW_REVISION, draft)
    assert can(contributor, Capability.VIEW_REVISION, draft)  # its author
    assert not can(trusted, Capability.VIEW_REVISION, draft)
    assert can(moderator, Capability.VIEW_REVISION, draft)
    assert can(trusted, Capability.CONFIRM_FRESH, approved.sheet)  # a contributor of it
    assert not can(contributor, Capability.CONFIRM_FRESH, approved.sheet)

    trusted.blocked = True  # a blocked account is an anonymous visitor, even on its own work
    commit()
    assert capabilities(trusted) == frozenset()
    assert not can(trusted, Capability.CONFIRM_FRESH, approved.sheet)
    with pytest.raises(ValueError):
        can(contributor, "publsh")  # a misspelt capability is an error, not a silent "no"


def test_a_new_role_is_one_row(client, login, make_user, make_sheet, monkeypatch):
    """"editor": may review, not manage accounts. One row in the table, nothing else."""
    monkeypatch.setitem(ROLE_CAPABILITIES, "editor", ROLE_CAPABILITIES[Role.MODERATOR]
                        - {Capability.MANAGE_USERS, Capability.MANAGE_STAFF})
    editor = make_user()
    editor.role = "editor"
    commit()
    pending = make_sheet(author=make_user(), title="À relire")
    login(editor)
    assert client.get("/moderation").status_code == 200
    assert "Modération" in client.get("/").get_data(as_text=True)
    nav = client.get("/moderation").get_data(as_text=True)
    assert "/moderation/utilisateurs" not in nav  # the menu follows the table too
    assert client.get("/moderation/utilisateurs").status_code == 403
    assert client.post(f"/moderation/revisions/{pending.id}/approuver").status_code == 302
    assert pending.status == "approved"


def test_require_sends_anonymous_visitors_to_login_and_refuses_others(client, login,
                                                                      make_user, bearer):
    page = client.get("/moderation")
    assert page.status_code == 302 and "/connexion" in page.headers["Location"]
    api = client.get("/api/v1/moderation/revisions")
    assert api.status_code == 401 and api.get_json()["error"] == "unauthorized"
    contributor = make_user()
    login(contributor)
    refused = client.get("/moderation")
    assert refused.status_code == 403 and "Réservé aux modérateurs." in refused.get_data(
        as_text=True)
    api = client.get("/api/v1/moderation/revisions", headers=bearer(contributor))
    assert api.status_code == 403 and api.get_json() == {
        "error": "forbidden", "message": "Réservé aux modérateurs."}


def test_no_role_comparison_outside_the_permission_module():
    """Roles are compared in kb/auth/permissions.py only (the table); everything else asks
    `can`. Catches a merge or a new feature that slips back to `is_moderator`."""
    pattern = re.compile(r"is_moderator|is_admin|\.role\s*(==|!=|in\b)|role\s*==")
    offenders = []
    for path in [*ROOT.glob("kb/**/*.py"), *ROOT.glob("templates/**/*.html")]:
        if path.name == "permissions.py" or "migrations" in path.parts:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == []


def test_no_direct_state_assignment_outside_the_lifecycle():
    offenders = [str(p.relative_to(ROOT)) for p in ROOT.glob("kb/**/*.py")
                 if p.name != "lifecycle.py"
                 and re.search(r"\.state\s*=[^=]", p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_the_lifecycle_table_checks_states_capability_and_reason(app, make_sheet, make_user):
    sheet = make_sheet().sheet
    moderator, contributor = make_user("moderator"), make_user()
    with pytest.raises(PermissionDenied):
        set_state(sheet, SheetState.ARCHIVED, contributor)
    with pytest.raises(Invalid):
        set_state(sheet, SheetState.HIDDEN, moderator, "  ")
    set_state(sheet, SheetState.ARCHIVED, moderator)
    assert sheet.archived_at is not None
    with pytest.raises(Conflict):
        set_state(sheet, SheetState.HIDDEN, moderator, "spam")  # archived: not from here
    set_state(sheet, SheetState.ACTIVE, moderator)
    assert sheet.archived_at is None
    from kb.extensions import db

    assert sheet in db.session.info["kb_changed_sheets"]  # listings and index will follow
    assert all(to != SheetState.ACTIVE or before != SheetState.MERGED
               for before, to in TRANSITIONS)  # a merge is final


def test_domain_errors_are_mapped_once_to_french_pages_and_json(client, login, make_user,
                                                                make_sheet, bearer):
    contributor = make_user()
    slug = make_sheet().sheet.slug
    login(contributor)
    page = client.post(f"/fiches/{slug}/toujours-a-jour")
    assert page.status_code == 403
    assert "Réservé aux contributeurs de la fiche et aux modérateurs." in page.get_data(
        as_text=True)
    api = client.post(f"/api/v1/sheets/{slug}/confirm", headers=bearer(contributor))
    assert api.status_code == 403 and api.get_json()["error"] == "forbidden"
    missing = client.get("/api/v1/sheets/nulle-part")
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"
