"""Issue 20, item 1: blocking an account can undo, in one action, everything it published since a
day (MediaWiki's rollback and Nuke). Each undo is a new revision by the moderator, in the journal;
a field someone else changed after the vandal is left as it is and listed for the moderator
(kb.moderation.operations.revert_changes_since)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from kb.auth.models import User
from kb.extensions import db
from kb.moderation.models import AuditEntry
from kb.sheets import operations
from kb.sheets.models import Revision, Sheet
from kb.timeutil import utcnow
from kb.transaction import commit

VANDAL = "Achetez des montres sur spam.example"


def _edit(sheet: Sheet, author: User, **changes) -> Revision:
    revision = operations.edit_sheet(sheet, changes, author, None)
    commit()
    return revision


def _public(client, sheet: Sheet) -> str:
    return client.get(f"/fiches/{sheet.slug}").get_data(as_text=True) \
        + client.get(f"/api/v1/sheets/{sheet.slug}").get_data(as_text=True)


@pytest.fixture
def vandalised(app, make_sheet, make_user):
    """A trusted account (its edits are published at once) vandalised five sheets; others edited
    two of them afterwards; one change of it is older than the day the moderator will type."""
    vandal = make_user(trusted=True, email="vandal@example.org")
    editor = make_user(trusted=True, email="editor@example.org")
    sheets = {name: make_sheet(title=f"Fiche {name}", summary=f"Résumé d'origine {name}.").sheet
              for name in ("plain", "later_other_field", "later_same_field", "old")}
    old = _edit(sheets["old"], vandal, summary=f"Ancien {VANDAL}")
    old.created_at = utcnow() - timedelta(days=10)
    commit()
    _edit(sheets["plain"], vandal, summary=VANDAL, results=f"Résultats : {VANDAL}")
    _edit(sheets["later_other_field"], vandal, summary=VANDAL)
    _edit(sheets["later_other_field"], editor, results="Résultats vérifiés par Élise.")
    _edit(sheets["later_same_field"], vandal, summary=VANDAL)
    _edit(sheets["later_same_field"], editor, summary=f"Corrigé en partie. {VANDAL}")
    created = operations.create_sheet({**sheets["plain"].approved_revision.data,
                                       "title": f"Montres {VANDAL}"}, vandal)
    commit()
    sheets["created"] = created.sheet
    return vandal, sheets


def _block(client, login, moderator, vandal, **form):
    login(moderator)
    since = (utcnow() - timedelta(days=2)).date().isoformat()
    return client.post(f"/moderation/utilisateurs/{vandal.id}/bloquer", follow_redirects=True,
                       data={"reason": "Vandalisme", "since": since, **form})


def test_blocking_with_a_day_undoes_what_the_account_published_since(
        client, login, moderator, vandalised):
    vandal, sheets = vandalised
    revisions_before = db.session.scalar(select(func.count(Revision.id)))
    page = _block(client, login, moderator, vandal).get_data(as_text=True)
    login(None)

    assert VANDAL not in _public(client, sheets["plain"])
    assert "Résumé d'origine plain." in _public(client, sheets["plain"])
    # Another person's later edit of another field is kept; the vandal's field is undone.
    other = _public(client, sheets["later_other_field"])
    assert VANDAL not in other and "Résultats vérifiés par Élise." in other
    # Another person rewrote the vandalised field: their text stays, the moderator is told.
    assert "Corrigé en partie." in _public(client, sheets["later_same_field"])
    assert "à relire" in page and "Fiche later_same_field" in page
    # A sheet the account created is hidden; a change older than the day stays.
    assert client.get(f"/fiches/{sheets['created'].slug}").status_code == 404
    assert f"Ancien {VANDAL}" in _public(client, sheets["old"])

    # Append-only: one new revision per undone sheet, by the moderator, in the journal.
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Revision.id))) == revisions_before + 2
    undos = list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == "revert")
                                    .order_by(AuditEntry.id)))
    assert [(e.sheet_id, e.target_user_id, e.actor_id) for e in undos] == [
        (sheets["plain"].id, vandal.id, moderator.id),
        (sheets["later_other_field"].id, vandal.id, moderator.id)]
    assert undos[0].details["fields"] == ["results", "summary"]
    assert all(e.revision.author_id == moderator.id and e.revision.status == "approved"
               for e in undos)
    assert db.session.scalar(select(func.count(Revision.id)).where(
        Revision.author_id == vandal.id, Revision.status == "approved")) == 5


def test_an_already_blocked_account_can_be_undone_later(client, login, moderator, vandalised):
    vandal, sheets = vandalised
    login(moderator)
    client.post(f"/moderation/utilisateurs/{vandal.id}/bloquer", data={"reason": "Vandalisme"})
    login(None)
    assert VANDAL in _public(client, sheets["plain"])  # blocking alone leaves the text online
    login(moderator)
    users = client.get("/moderation/utilisateurs").get_data(as_text=True)
    assert f'action="/moderation/utilisateurs/{vandal.id}/annuler"' in users
    since = (utcnow() - timedelta(days=2)).date().isoformat()
    done = client.post(f"/moderation/utilisateurs/{vandal.id}/annuler", follow_redirects=True,
                       data={"reason": "Vandalisme", "since": since})
    assert "Modifications annulées sur 2 fiches" in done.get_data(as_text=True)
    login(None)
    assert VANDAL not in _public(client, sheets["plain"])


def test_undo_is_refused_for_an_account_that_is_not_blocked(client, login, moderator,
                                                           vandalised):
    vandal, sheets = vandalised
    login(moderator)
    since = (utcnow() - timedelta(days=2)).date().isoformat()
    page = client.post(f"/moderation/utilisateurs/{vandal.id}/annuler", follow_redirects=True,
                       data={"reason": "Vandalisme", "since": since}).get_data(as_text=True)
    assert "abord ce compte" in page  # « Bloquez d'abord ce compte »
    login(None)
    assert VANDAL in _public(client, sheets["plain"])


def test_a_bad_day_or_a_missing_csrf_token_changes_nothing(app, client, login, moderator,
                                                           vandalised):
    vandal, sheets = vandalised
    login(moderator)
    bad = client.post(f"/moderation/utilisateurs/{vandal.id}/bloquer",
                      data={"reason": "Vandalisme", "since": "hier"})
    assert bad.status_code == 400 and "Date" in bad.get_data(as_text=True)
    app.config["WTF_CSRF_ENABLED"] = True
    forged = client.post(f"/moderation/utilisateurs/{vandal.id}/bloquer",
                         data={"reason": "Vandalisme", "since": "2020-01-01"})
    assert forged.status_code == 400
    app.config["WTF_CSRF_ENABLED"] = False
    db.session.expire_all()
    assert not db.session.get(User, vandal.id).blocked
    login(None)
    assert VANDAL in _public(client, sheets["plain"])


def test_a_contributor_cannot_undo_anyone(client, login, make_user, vandalised):
    vandal, sheets = vandalised
    login(make_user())
    assert client.post(f"/moderation/utilisateurs/{vandal.id}/annuler",
                       data={"reason": "x", "since": "2020-01-01"}).status_code == 403
