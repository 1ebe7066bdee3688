"""data·inclusion: sheet_keys (the keys of the sheets' MULTI fields), sheet_availability

Thématiques (with their families), publics, modes de mobilisation, zone d'éligibilité... of
the approved revision, as filters compare them (kb/sheets/filters.py). Existing revisions have
none of these fields: the table starts empty, and publish() fills it.

Revision ID: 0021
Revises: 0008
Create Date: 2026-12-07 15:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sheet_keys',
        sa.Column('sheet_id', sa.Integer(), nullable=False),
        sa.Column('field', sa.String(length=40), nullable=False),
        sa.Column('key', sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(['sheet_id'], ['sheets.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('sheet_id', 'field', 'key'),
    )
    op.create_index('ix_sheet_keys_field_key', 'sheet_keys', ['field', 'key'], unique=False)
    op.create_table(
        'sheet_availability',
        sa.Column('sheet_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('delay_days', sa.Integer(), nullable=True),
        sa.Column('until', sa.Date(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('updated_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['sheet_id'], ['sheets.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('sheet_id'),
    )


def downgrade() -> None:
    op.drop_table('sheet_availability')
    op.drop_index('ix_sheet_keys_field_key', table_name='sheet_keys')
    op.drop_table('sheet_keys')
