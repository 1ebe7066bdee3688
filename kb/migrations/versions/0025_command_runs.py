"""command_runs: the last run of each scheduled command, for `kb doctor` (issue 28)

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 17:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('command_runs',
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_command_runs'))
    )


def downgrade() -> None:
    op.drop_table('command_runs')
