"""Migration 0013 (issue 20): rows written before replaced proposals were marked at once. A chain
of an author's own proposals was approved all together (public, counted towards trust): the
replaced ones become "superseded"; a revision a moderator approved itself stays approved."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from kb import create_app
from kb.auth.models import User
from kb.extensions import db
from kb.moderation.models import AuditEntry
from kb.sheets.models import Revision, Sheet
from kb.timeutil import utcnow
from tests.conftest import sheet_data


def test_replaced_proposals_of_old_rows_become_superseded(app_config, tmp_path):
    from alembic import command

    from kb.cli import alembic_config

    app = create_app({**app_config,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'old.sqlite3'}"})
    with app.app_context():
        command.upgrade(alembic_config(), "0008")  # type: ignore[arg-type]
        moderator = User(email="m@example.org", role="moderator", email_confirmed_at=utcnow())
        author = User(email="a@example.org", email_confirmed_at=utcnow())
        sheet = Sheet(slug="fiche")
        db.session.add_all([moderator, author, sheet])
        db.session.flush()
        when = utcnow() - timedelta(days=1)

        def revision(by: User, base: Revision | None, status: str, reviewed: bool) -> Revision:
            row = Revision(sheet_id=sheet.id, author_id=by.id, data=sheet_data(),
                           base_revision_id=base.id if base else None, status=status,
                           reviewed_by_id=moderator.id if reviewed else None,
                           reviewed_at=when if reviewed else None, created_at=when)
            db.session.add(row)
            db.session.flush()
            return row

        published = revision(moderator, None, "approved", True)
        chained = revision(author, published, "approved", True)  # settled with the next one
        approved = revision(author, chained, "approved", True)
        replaced = revision(author, approved, "pending", False)
        latest = revision(author, replaced, "pending", False)
        # Approved by a moderator, then built on and approved in the same second: both decisions.
        decided = revision(author, approved, "approved", True)
        after = revision(author, decided, "approved", True)
        for row in (approved, decided, after):
            db.session.add(AuditEntry(action="approve", revision_id=row.id, sheet_id=sheet.id,
                                      actor_id=moderator.id, created_at=when, details={}))
        sheet.approved_revision_id = after.id
        db.session.commit()

        command.upgrade(alembic_config(), "head")  # type: ignore[arg-type]
        db.session.expire_all()
        statuses = dict(db.session.execute(select(Revision.id, Revision.status)).all())
        assert [statuses[r.id] for r in (published, chained, approved, replaced, latest,
                                         decided, after)] == [
            "approved", "superseded", "approved", "superseded", "pending", "approved",
            "approved"]
        db.session.remove()
        db.engine.dispose()
