"""territories: official codes on the sheets' projection

The commune (INSEE code), EPCI (SIREN) and région codes beside the département, which now
holds the département's code. Existing sheets get their codes with `kb territories backfill`
(it reads the register shipped in kb/territories/data; migrations stay free of app code).

Revision ID: 0008
Revises: 0004
Create Date: 2026-11-30 06:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0012'
branch_labels = None
depends_on = None

COLUMNS = (("commune_code", 5), ("epci", 9), ("region", 3))


def upgrade() -> None:
    with op.batch_alter_table('sheets', schema=None) as batch_op:
        for name, length in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.String(length=length), nullable=False,
                                          server_default=''))
            batch_op.create_index(batch_op.f(f'ix_sheets_{name}'), [name], unique=False)
    # The models have no server default (Python-side default ""): drop it once rows are filled.
    with op.batch_alter_table('sheets', schema=None) as batch_op:
        for name, length in COLUMNS:
            batch_op.alter_column(name, existing_type=sa.String(length=length),
                                  server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('sheets', schema=None) as batch_op:
        for name, _ in COLUMNS:
            batch_op.drop_index(batch_op.f(f'ix_sheets_{name}'))
            batch_op.drop_column(name)
