"""structures: structures, their members and invitations; sheets.structure_id (issue 24)

Revision ID: 0024
Revises: 0018
Create Date: 2026-12-07 15:03:11
"""
import sqlalchemy as sa
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('structures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('siret', sa.String(length=14), nullable=True),
    sa.Column('type', sa.String(length=30), nullable=False),
    sa.Column('networks', sa.JSON(), nullable=False),
    sa.Column('commune_code', sa.String(length=5), nullable=False),
    sa.Column('website', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('verified_at', sa.DateTime(), nullable=True),
    sa.Column('verified_how', sa.String(length=20), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_structures')),
    sa.UniqueConstraint('siret', name=op.f('uq_structures_siret'))
    )
    with op.batch_alter_table('structures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_structures_commune_code'), ['commune_code'], unique=False)

    op.create_table('structure_invitations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('structure_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('nonce_hash', sa.String(length=64), nullable=False),
    sa.Column('invited_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['invited_by_id'], ['users.id'], name=op.f('fk_structure_invitations_invited_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['structure_id'], ['structures.id'], name=op.f('fk_structure_invitations_structure_id_structures'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_structure_invitations')),
    sa.UniqueConstraint('nonce_hash', name=op.f('uq_structure_invitations_nonce_hash'))
    )
    with op.batch_alter_table('structure_invitations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_structure_invitations_structure_id'), ['structure_id'], unique=False)

    op.create_table('structure_members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('structure_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('joined_via', sa.String(length=20), nullable=False),
    sa.Column('shown', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('left_at', sa.DateTime(), nullable=True),
    sa.Column('proconnect_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['structure_id'], ['structures.id'], name=op.f('fk_structure_members_structure_id_structures'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_structure_members_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_structure_members')),
    sa.UniqueConstraint('structure_id', 'user_id', name=op.f('uq_structure_members_structure_id'))
    )
    with op.batch_alter_table('structure_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_structure_members_structure_id'), ['structure_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_structure_members_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('sheets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('structure_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_sheets_structure_id'), ['structure_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_sheets_structure_id_structures'), 'structures', ['structure_id'], ['id'], ondelete='SET NULL')



def downgrade() -> None:
    with op.batch_alter_table('sheets', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_sheets_structure_id_structures'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_sheets_structure_id'))
        batch_op.drop_column('structure_id')

    with op.batch_alter_table('structure_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_structure_members_user_id'))
        batch_op.drop_index(batch_op.f('ix_structure_members_structure_id'))

    op.drop_table('structure_members')
    with op.batch_alter_table('structure_invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_structure_invitations_structure_id'))

    op.drop_table('structure_invitations')
    with op.batch_alter_table('structures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_structures_commune_code'))

    op.drop_table('structures')
