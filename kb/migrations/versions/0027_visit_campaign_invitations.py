"""visit_campaign_structures, visit_campaign_invitees: who a campaign invites (issue 22)

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 21:20:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('visit_campaign_structures',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('structure_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['visit_campaigns.id'], name=op.f('fk_visit_campaign_structures_campaign_id_visit_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['structure_id'], ['structures.id'], name=op.f('fk_visit_campaign_structures_structure_id_structures'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', 'structure_id', name=op.f('pk_visit_campaign_structures'))
    )
    with op.batch_alter_table('visit_campaign_structures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_visit_campaign_structures_structure_id'), ['structure_id'], unique=False)
    op.create_table('visit_campaign_invitees',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['visit_campaigns.id'], name=op.f('fk_visit_campaign_invitees_campaign_id_visit_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_visit_campaign_invitees_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', 'user_id', name=op.f('pk_visit_campaign_invitees'))
    )
    with op.batch_alter_table('visit_campaign_invitees', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_visit_campaign_invitees_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('visit_campaign_invitees', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_visit_campaign_invitees_user_id'))
    op.drop_table('visit_campaign_invitees')
    with op.batch_alter_table('visit_campaign_structures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_visit_campaign_structures_structure_id'))
    op.drop_table('visit_campaign_structures')
