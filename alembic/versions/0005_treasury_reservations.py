"""executions: the block an external claim starts from; one execution per transaction hash

Revision ID: 0005_treasury_reservations
Revises: 0004_ledger_heads
Create Date: 2026-12-04 16:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # autogenerate writes sqlmodel.sql.sqltypes.AutoString
import governance.types  # custom column types (Uint256)
from alembic import op


revision: str = '0005_treasury_reservations'
down_revision: str | None = '0004_ledger_heads'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # hashes are compared in one form (lowercase) from now on; the unique index relies on it
    op.execute("UPDATE execution SET tx_hash = lower(tx_hash) WHERE tx_hash IS NOT NULL")
    with op.batch_alter_table('execution', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_block', sa.BigInteger(), nullable=True))
        batch_op.create_index('ux_execution_tx_hash', ['tx_hash'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('execution', schema=None) as batch_op:
        batch_op.drop_index('ux_execution_tx_hash')
        batch_op.drop_column('claimed_block')
