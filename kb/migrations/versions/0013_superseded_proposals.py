"""superseded proposals: proposals their author replaced are "superseded", never approved

Data only (issue 20): until now a proposal replaced by its author stayed pending, and the
approval of the last one marked the whole chain approved (public, and counted towards trust).
Those rows become "superseded": pending ones with a later proposal of the same author built on
them, and approved ones that no moderator's approval names in the journal, settled at the very
moment a later proposal of the same author built on them was, and never published.

Revision ID: 0013
Revises: 0008
Create Date: 2026-12-07 14:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.text("""
        UPDATE revisions SET status = 'superseded'
        WHERE status = 'pending' AND EXISTS (
            SELECT 1 FROM revisions AS later
            WHERE later.base_revision_id = revisions.id AND later.author_id = revisions.author_id)
    """))
    op.execute(sa.text("""
        UPDATE revisions SET status = 'superseded'
        WHERE status = 'approved'
          AND reviewed_by_id IS NOT NULL AND reviewed_by_id <> author_id
          AND NOT EXISTS (SELECT 1 FROM audit_entries AS a
                          WHERE a.revision_id = revisions.id AND a.action = 'approve')
          AND NOT EXISTS (SELECT 1 FROM sheets AS s WHERE s.approved_revision_id = revisions.id)
          AND EXISTS (
            SELECT 1 FROM revisions AS later
            WHERE later.base_revision_id = revisions.id AND later.author_id = revisions.author_id
              AND later.status IN ('approved', 'merged')
              AND later.reviewed_by_id = revisions.reviewed_by_id
              AND later.reviewed_at = revisions.reviewed_at)
    """))


def downgrade() -> None:
    # What the old code would have had: settled with their chain (approved), or still pending.
    op.execute(sa.text("""
        UPDATE revisions SET status = CASE WHEN reviewed_by_id IS NULL THEN 'pending'
                                           ELSE 'approved' END
        WHERE status = 'superseded'
    """))
