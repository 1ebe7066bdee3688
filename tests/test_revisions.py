"""The history rules: append-only revisions, approval, conflicts that never lose text."""

import pytest

from kb.extensions import db
from kb.sheets import operations
from kb.sheets.models import Revision, published_sheets
from kb.transaction import commit


def test_contributor_revision_is_pending_and_unpublished(make_sheet, contributor):
    revision = make_sheet(author=contributor)
    assert revision.status == "pending"
    assert revision.sheet.approved_revision_id is None
    assert db.session.scalars(published_sheets()).all() == []


def test_moderator_revision_is_approved_and_published(make_sheet):
    revision = make_sheet()
    assert revision.status == "approved"
    assert revision.sheet.approved_revision_id == revision.id
    assert revision.sheet.title == "Accueil inconditionnel en mairie"
    assert [t.slug for t in revision.sheet.tags] == ["accueil", "design-de-service"]


def test_pending_edit_leaves_the_approved_revision_in_place(make_sheet, contributor):
    first = make_sheet()
    edit = operations.edit_sheet(first.sheet, {"city": "Quimper"}, contributor, first.id)
    commit()
    assert edit.status == "pending"
    assert first.sheet.approved_revision_id == first.id
    assert first.sheet.city == "Brest"


def test_approving_publishes_and_rejecting_keeps_the_reason(make_sheet, contributor, moderator):
    first = make_sheet()
    edit = operations.edit_sheet(first.sheet, {"city": "Quimper"}, contributor, first.id)
    operations.approve_revision(edit, moderator)
    commit()
    assert first.sheet.approved_revision_id == edit.id and first.sheet.city == "Quimper"

    other = operations.edit_sheet(first.sheet, {"city": "Spam"}, contributor, edit.id)
    with pytest.raises(ValueError, match="motif"):
        operations.reject_revision(other, moderator, "  ")
    operations.reject_revision(other, moderator, "Ville erronée")
    commit()
    assert other.status == "rejected" and other.review_reason == "Ville erronée"
    assert first.sheet.city == "Quimper"
    with pytest.raises(ValueError, match="déjà été traitée"):
        operations.approve_revision(other, moderator)


def test_contributor_cannot_approve(make_sheet, contributor):
    revision = make_sheet(author=contributor)
    with pytest.raises(operations.PermissionDenied):
        operations.approve_revision(revision, contributor)


def test_saving_identical_content_creates_no_revision(make_sheet, moderator):
    first = make_sheet()
    same = operations.edit_sheet(first.sheet, {"city": "Brest"}, moderator, first.id)
    assert same.id == first.id
    assert db.session.query(Revision).count() == 1


def test_stale_edit_on_other_fields_is_merged(make_sheet, moderator):
    first = make_sheet()
    sheet = first.sheet
    theirs = operations.edit_sheet(sheet, {"city": "Quimper"}, moderator, first.id)
    mine = operations.edit_sheet(sheet, {"summary": "Résumé neuf"}, moderator, first.id)
    commit()
    assert mine.base_revision_id == theirs.id
    assert mine.data["city"] == "Quimper" and mine.data["summary"] == "Résumé neuf"
    assert sheet.approved_revision_id == mine.id


def test_stale_edit_on_the_same_field_is_a_conflict_that_keeps_both_texts(make_sheet, moderator):
    first = make_sheet()
    sheet = first.sheet
    theirs = operations.edit_sheet(sheet, {"results": "Leur texte"}, moderator, first.id)
    commit()
    with pytest.raises(operations.EditConflict) as conflict:
        operations.edit_sheet(sheet, {"results": "Mon texte", "city": "Morlaix"}, moderator,
                              first.id)
    assert conflict.value.fields == ["results"]
    assert conflict.value.mine["results"] == "Mon texte"
    assert conflict.value.mine["city"] == "Morlaix"
    assert conflict.value.theirs.id == theirs.id  # the author's head: here the approved one
    assert sheet.approved_revision.data["results"] == "Leur texte"


def test_restore_creates_a_new_revision_with_the_old_content(make_sheet, moderator):
    first = make_sheet()
    second = operations.edit_sheet(first.sheet, {"city": "Quimper"}, moderator, first.id)
    commit()
    restored = operations.restore_revision(first, moderator)
    commit()
    assert restored.id > second.id
    assert restored.data == first.data
    assert restored.base_revision_id == second.id
    assert db.session.query(Revision).count() == 3


def test_blocked_user_cannot_write(make_sheet, make_user):
    user = make_user()
    user.blocked = True
    with pytest.raises(operations.PermissionDenied):
        make_sheet(author=user)
