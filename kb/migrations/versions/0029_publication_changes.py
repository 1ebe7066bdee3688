"""publication_changes: which sheets each listing version changed, so that a cached listing
that shows none of them, and that none of them now joins, stays valid (issue 27)

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-08 01:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('publication_changes',
    sa.Column('listing_version', sa.Integer(), nullable=False),
    sa.Column('sheet_id', sa.Integer(), nullable=False),
    sa.Column('changed_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('listing_version', 'sheet_id', name=op.f('pk_publication_changes'))
    )


def downgrade() -> None:
    op.drop_table('publication_changes')
