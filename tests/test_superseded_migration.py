"""Migration 0013 (issue 20): rows written before replaced proposals were marked at once. A chain
of an author's own proposals was approved all together (public, counted towards trust): the
replaced ones become "superseded"; a revision a moderator approved itself stays approved."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import MetaData, select

from kb import create_app
from kb.extensions import db
from kb.sheets.models import Revision
from kb.timeutil import utcnow
from tests.conftest import sheet_data


def test_replaced_proposals_of_old_rows_become_superseded(app_config, tmp_path):
    from alembic import command

    from kb.schema import alembic_config

    app = create_app({**app_config,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'old.sqlite3'}"})
    with app.app_context():
        command.upgrade(alembic_config(), "0008")  # type: ignore[arg-type]
        # Rows written as the schema of revision 0008 has them (the models of today have columns
        # that later migrations add): tables read from the database itself.
        tables = MetaData()
        tables.reflect(db.engine, only=["users", "sheets", "revisions", "audit_entries"])
        now = utcnow()
        when = now - timedelta(days=1)

        def insert(table: str, **values: Any) -> int:
            result = db.session.execute(tables.tables[table].insert().values(**values))
            return int(result.inserted_primary_key[0])

        def user(email: str, role: str) -> int:
            return insert("users", email=email, display_name="", role=role, trusted=False,
                          blocked=False, created_at=now, email_confirmed_at=now)

        moderator, author = user("m@example.org", "moderator"), user("a@example.org", "contributor")
        sheet = insert("sheets", slug="fiche", state="active", created_at=when, updated_at=when,
                       review_interval_months=12, last_reviewed_at=when, title="Fiche",
                       actor_type="", scale="", city="", department="", commune_code="", epci="",
                       region="")

        def revision(by: int, base: int | None, status: str, reviewed: bool) -> int:
            return insert("revisions", sheet_id=sheet, author_id=by, data=sheet_data(),
                          base_revision_id=base, status=status, comment="", review_reason="",
                          reviewed_by_id=moderator if reviewed else None,
                          reviewed_at=when if reviewed else None, created_at=when)

        published = revision(moderator, None, "approved", True)
        chained = revision(author, published, "approved", True)  # settled with the next one
        approved = revision(author, chained, "approved", True)
        replaced = revision(author, approved, "pending", False)
        latest = revision(author, replaced, "pending", False)
        # Approved by a moderator, then built on and approved in the same second: both decisions.
        decided = revision(author, approved, "approved", True)
        after = revision(author, decided, "approved", True)
        for row in (approved, decided, after):
            insert("audit_entries", action="approve", revision_id=row, sheet_id=sheet,
                   actor_id=moderator, created_at=when, reason="", details={})
        db.session.execute(tables.tables["sheets"].update().values(approved_revision_id=after))
        db.session.commit()

        command.upgrade(alembic_config(), "head")
        statuses = dict(db.session.execute(select(Revision.id, Revision.status)).all())
        assert [statuses[r] for r in (published, chained, approved, replaced, latest,
                                      decided, after)] == [
            "approved", "superseded", "approved", "superseded", "pending", "approved",
            "approved"]
        db.session.remove()
        db.engine.dispose()
