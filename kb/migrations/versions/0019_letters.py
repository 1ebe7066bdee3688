"""La lettre des fiches: letters built per person and period, letter preferences

Revision ID: 0019
Revises: 0008
Create Date: 2026-12-07 14:10:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('letters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('period_key', sa.String(length=20), nullable=False),
    sa.Column('built_at', sa.DateTime(), nullable=False),
    sa.Column('queued', sa.Boolean(), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('sheet_ids', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_letters_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_letters')),
    sa.UniqueConstraint('user_id', 'period_key', name='uq_letters_user_period')
    )
    with op.batch_alter_table('letters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_letters_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('letter_period', sa.String(length=10), server_default='month', nullable=False))
        batch_op.add_column(sa.Column('letter_weekday', sa.Integer(), server_default='2', nullable=False))
        batch_op.add_column(sa.Column('letter_sections_off', sa.String(length=100), server_default='', nullable=False))

    # The letter replaces the moderators' daily digest (kb/accounts/digest.py): its log goes.
    op.drop_table('moderator_digests')

    # Opt-outs of the mails the letter replaces stay opt-outs of its sections: the freshness
    # digest ("never"), the moderators' digest, the follows digest ("off"). A weekly follows
    # digest keeps a weekly letter, on Wednesday.
    def opt_out(section: str, where: str) -> None:
        op.execute(f"UPDATE users SET letter_sections_off = CASE WHEN letter_sections_off = '' "
                   f"THEN '{section}' ELSE letter_sections_off || ',{section}' END WHERE {where}")

    opt_out('verifier', "reminder_period_days = 0")
    opt_out('moderation', "moderator_digest = false")
    opt_out('suivis', "id IN (SELECT user_id FROM follow_settings WHERE period = 'off')")
    op.execute("UPDATE users SET letter_period = 'week' "
               "WHERE id IN (SELECT user_id FROM follow_settings WHERE period = 'week')")


def downgrade() -> None:
    op.create_table('moderator_digests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_moderator_digests_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_moderator_digests')),
    sa.UniqueConstraint('user_id', 'day', name='uq_moderator_digests_user_day')
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('letter_sections_off')
        batch_op.drop_column('letter_weekday')
        batch_op.drop_column('letter_period')

    with op.batch_alter_table('letters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_letters_user_id'))

    op.drop_table('letters')
