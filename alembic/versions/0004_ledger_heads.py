"""the treasury journal's head recorded with each proposal's snapshot and each tally result

Revision ID: 0004_ledger_heads
Revises: 0003_references

Existing rows keep NULL: the head at their acceptance or tally was not recorded, and a value
read now would attest the journal as it is today, not as it was then (a journal rewritten
before the upgrade would be blessed). ``dao ledger verify`` skips NULL heads and the API shows
``ledger_head: null`` for them.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # autogenerate writes sqlmodel.sql.sqltypes.AutoString
from alembic import op

revision: str = '0004_ledger_heads'
down_revision: str | None = '0003_references'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ('proposal', 'tally_result'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('journal_seq', sa.BigInteger(), nullable=True))
            batch_op.add_column(sa.Column('journal_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    for table in ('tally_result', 'proposal'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('journal_hash')
            batch_op.drop_column('journal_seq')
