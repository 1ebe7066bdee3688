"""reader_commune: the reader's commune on the account (users.commune_code), the order of the
thématique pages when no ?pres= nor cookie says one (issue 23)

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07 21:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('commune_code', sa.String(length=5), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('commune_code')
