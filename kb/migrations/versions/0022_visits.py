"""visits: campaigns, slots, registrations; outbox attachments

Revision ID: 0022
Revises: 0018
Create Date: 2026-12-07 15:31:20.367248
"""
import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('visit_campaigns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=120), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('starts_on', sa.DateTime(), nullable=False),
    sa.Column('ends_on', sa.DateTime(), nullable=False),
    sa.Column('department', sa.String(length=3), nullable=False),
    sa.Column('cap', sa.Integer(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_visit_campaigns_created_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visit_campaigns')),
    sa.UniqueConstraint('slug', name=op.f('uq_visit_campaigns_slug'))
    )
    op.create_table('visit_slots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sheet_id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('starts_at', sa.DateTime(), nullable=False),
    sa.Column('ends_at', sa.DateTime(), nullable=False),
    sa.Column('place', sa.String(length=300), nullable=False),
    sa.Column('commune_code', sa.String(length=5), nullable=False),
    sa.Column('department', sa.String(length=3), nullable=False),
    sa.Column('format', sa.String(length=20), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('min_participants', sa.Integer(), nullable=False),
    sa.Column('decide_by', sa.DateTime(), nullable=False),
    sa.Column('host_name', sa.String(length=120), nullable=False),
    sa.Column('host_phone', sa.String(length=40), nullable=False),
    sa.Column('bring', sa.Text(), nullable=False),
    sa.Column('accessibility', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('seats_taken', sa.Integer(), nullable=False),
    sa.Column('last_rank', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['visit_campaigns.id'], name=op.f('fk_visit_slots_campaign_id_visit_campaigns'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_visit_slots_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['sheet_id'], ['sheets.id'], name=op.f('fk_visit_slots_sheet_id_sheets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visit_slots'))
    )
    with op.batch_alter_table('visit_slots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_visit_slots_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_visit_slots_department'), ['department'], unique=False)
        batch_op.create_index(batch_op.f('ix_visit_slots_sheet_id'), ['sheet_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_visit_slots_starts_at'), ['starts_at'], unique=False)
        batch_op.create_index('ix_visit_slots_status_decide', ['status', 'decide_by'], unique=False)

    op.create_table('visit_registrations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slot_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(length=40), nullable=False),
    sa.Column('structure', sa.String(length=200), nullable=False),
    sa.Column('uid', sa.String(length=120), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('registered_at', sa.DateTime(), nullable=False),
    sa.Column('cancelled_at', sa.DateTime(), nullable=True),
    sa.Column('reminded_at', sa.DateTime(), nullable=True),
    sa.Column('attended', sa.Boolean(), nullable=True),
    sa.Column('rating', sa.Integer(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('rated_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['slot_id'], ['visit_slots.id'], name=op.f('fk_visit_registrations_slot_id_visit_slots'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_visit_registrations_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visit_registrations')),
    sa.UniqueConstraint('slot_id', 'user_id', name=op.f('uq_visit_registrations_slot_id')),
    sa.UniqueConstraint('uid', name=op.f('uq_visit_registrations_uid'))
    )
    with op.batch_alter_table('visit_registrations', schema=None) as batch_op:
        batch_op.create_index('ix_visit_registrations_slot_status_rank', ['slot_id', 'status', 'rank'], unique=False)
        batch_op.create_index(batch_op.f('ix_visit_registrations_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attachments', sa.JSON(), server_default='[]', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('attachments')

    with op.batch_alter_table('visit_registrations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_visit_registrations_user_id'))
        batch_op.drop_index('ix_visit_registrations_slot_status_rank')

    op.drop_table('visit_registrations')
    with op.batch_alter_table('visit_slots', schema=None) as batch_op:
        batch_op.drop_index('ix_visit_slots_status_decide')
        batch_op.drop_index(batch_op.f('ix_visit_slots_starts_at'))
        batch_op.drop_index(batch_op.f('ix_visit_slots_sheet_id'))
        batch_op.drop_index(batch_op.f('ix_visit_slots_department'))
        batch_op.drop_index(batch_op.f('ix_visit_slots_campaign_id'))

    op.drop_table('visit_slots')
    op.drop_table('visit_campaigns')
