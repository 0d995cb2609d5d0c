"""one record per client reference: deposits, holder lists; purchase price as uint256

A deposit was only a journal entry, found by kind and reference before the write and outside
its lock: two identical requests could both journal it. Deposits now have their own table with
a unique reference (like purchases and buybacks), filled here from the journal. Holder lists
get an optional unique reference. A purchase's price becomes a uint256 like the price a
PriceChange signs (an INTEGER ended every purchase in a 500 on PostgreSQL past $2,147.48).

Revision ID: 0003_references
Revises: 0002_domains
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # autogenerate writes sqlmodel.sql.sqltypes.AutoString
import governance.types  # custom column types (Uint256)
from alembic import op


revision: str = '0003_references'
down_revision: str | None = '0002_domains'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    deposit = op.create_table('deposit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('bucket', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('asset', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('amount', governance.types.Uint256(precision=78, scale=0), nullable=False),
    sa.Column('balance', governance.types.Uint256(precision=78, scale=0), nullable=False),
    sa.Column('journal_seq', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('reference')
    )
    op.bulk_insert(deposit, _deposits_from_journal())
    with op.batch_alter_table('holder_list', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.create_unique_constraint('uq_holder_list_reference', ['reference'])
    with op.batch_alter_table('purchase', schema=None) as batch_op:
        batch_op.alter_column('price', existing_type=sa.Integer(),
                              type_=governance.types.Uint256(precision=78, scale=0), existing_nullable=False)


def _deposits_from_journal() -> list[dict]:
    """One row per deposit reference journaled so far (the first entry of each): its bucket
    leg, and the bucket's balance right after it, summed from the postings."""
    conn = op.get_bind()
    uint = governance.types.Uint256()
    entries = conn.execute(sa.text("SELECT seq, reference, created_at FROM journal_entry "
                                   "WHERE kind = 'deposit' ORDER BY seq")).all()
    if not entries:
        return []
    legs = sa.text("SELECT entry_seq, account, asset, amount FROM journal_posting "
                   "WHERE account LIKE 'bucket:%' ORDER BY entry_seq, id").columns(
        sa.column("entry_seq", sa.Integer()), sa.column("account", sa.String()), sa.column("asset", sa.String()),
        sa.column("amount", uint))
    wanted = {seq for seq, _, _ in entries}
    balances: dict[tuple[str, str], int] = defaultdict(int)
    after: dict[int, tuple[str, str, int, int]] = {}
    for seq, account, asset, amount in conn.execute(legs):
        balances[(account, asset)] += amount
        if seq in wanted:
            after[seq] = (account.removeprefix("bucket:"), asset, amount, balances[(account, asset)])
    rows, seen = [], {}
    for seq, reference, created_at in entries:
        if reference in seen:
            log.warning("deposit reference %r was journaled twice (entries %d and %d): the bucket was credited "
                        "twice; only the first is the deposit of record", reference, seen[reference], seq)
            continue
        seen[reference] = seq
        bucket, asset, amount, balance = after[seq]
        rows.append({"reference": reference, "bucket": bucket, "asset": asset, "amount": amount,
                     "balance": balance, "journal_seq": seq, "created_at": created_at})
    return rows


def downgrade() -> None:
    with op.batch_alter_table('purchase', schema=None) as batch_op:
        batch_op.alter_column('price', existing_type=governance.types.Uint256(precision=78, scale=0),
                              type_=sa.Integer(), existing_nullable=False, postgresql_using='price::integer')
    with op.batch_alter_table('holder_list', schema=None) as batch_op:
        batch_op.drop_constraint('uq_holder_list_reference', type_='unique')
        batch_op.drop_column('reference')
    op.drop_table('deposit')
