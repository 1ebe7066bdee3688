"""freshness: escalation state, readers' answers, signs of life

`freshness_states` counts the letters that listed a due sheet (escalation) and keeps the
readers' once-per-cycle extension; `reader_checks` holds the readers' answers to "Cette fiche
vous semble-t-elle toujours juste ?"; `review_events` records each sign of life (/statistiques).

Revision ID: 0020
Revises: 0008
Create Date: 2026-12-07 14:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('freshness_states',
    sa.Column('sheet_id', sa.Integer(), nullable=False),
    sa.Column('due_at', sa.DateTime(), nullable=True),
    sa.Column('reminders', sa.Integer(), nullable=False),
    sa.Column('last_reminded_at', sa.DateTime(), nullable=True),
    sa.Column('extended_to', sa.DateTime(), nullable=True),
    sa.Column('cycle_start', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['sheet_id'], ['sheets.id'], name=op.f('fk_freshness_states_sheet_id_sheets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('sheet_id', name=op.f('pk_freshness_states'))
    )
    op.create_table('reader_checks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sheet_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('cycle_start', sa.DateTime(), nullable=False),
    sa.Column('accurate', sa.Boolean(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['sheet_id'], ['sheets.id'], name=op.f('fk_reader_checks_sheet_id_sheets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_reader_checks_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reader_checks')),
    sa.UniqueConstraint('sheet_id', 'user_id', 'cycle_start', name='uq_reader_checks_cycle')
    )
    with op.batch_alter_table('reader_checks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reader_checks_sheet_id'), ['sheet_id'], unique=False)

    op.create_table('review_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sheet_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('due_before', sa.DateTime(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.ForeignKeyConstraint(['sheet_id'], ['sheets.id'], name=op.f('fk_review_events_sheet_id_sheets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_events'))
    )
    with op.batch_alter_table('review_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_events_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_events_sheet_id'), ['sheet_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('review_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_events_sheet_id'))
        batch_op.drop_index(batch_op.f('ix_review_events_at'))
    op.drop_table('review_events')
    with op.batch_alter_table('reader_checks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reader_checks_sheet_id'))
    op.drop_table('reader_checks')
    op.drop_table('freshness_states')
