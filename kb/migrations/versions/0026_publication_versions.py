"""publication_versions: one counter per sheet and one for listings, bumped in the commit that
changes what anonymous readers see; cached answers are keyed on them (issue 27)

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 17:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('publication_versions',
    sa.Column('scope', sa.String(length=10), nullable=False),
    sa.Column('ref', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('changed_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'ref', name=op.f('pk_publication_versions'))
    )


def downgrade() -> None:
    op.drop_table('publication_versions')
