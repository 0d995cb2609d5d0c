"""Token balances and supply at any ledger sequence (the ``ledger`` voting-power source).

This module is the :class:`governance.ports.TokenLedger` the voting domain reads."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import bindparam, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from treasury_exec.journal import SUPPLY, head
from treasury_exec.models import TokenCheckpoint


def current_seq(session: Session) -> int:
    return head(session).seq


def balance_at(session: Session, address: str, seq: int) -> int:
    """The holder's token balance after ledger entry ``seq`` (0 before any)."""
    row = session.exec(
        select(TokenCheckpoint.balance).where(TokenCheckpoint.account == address, TokenCheckpoint.seq <= seq)
        .order_by(TokenCheckpoint.seq.desc()).limit(1)
    ).first()
    return int(row) if row is not None else 0


def _balances_statement():
    t = TokenCheckpoint.__table__  # type: ignore[attr-defined]
    c = t.alias("c")
    latest = (sa_select(func.max(t.c.seq)).where(t.c.account == c.c.account, t.c.seq <= bindparam("seq"))
              .scalar_subquery())
    return sa_select(c.c.account, c.c.balance).where(c.c.account.in_(bindparam("accounts", expanding=True)),
                                                     c.c.seq == latest)


_BALANCES_AT = _balances_statement()  # built once: the vote writer runs it for every batch


def balances_at(session: Session, addresses: Collection[str], seq: int) -> dict[str, int]:
    """:func:`balance_at` for many holders in one query (holders without tokens are left out)."""
    if not addresses:
        return {}
    rows = session.connection().execute(_BALANCES_AT, {"accounts": sorted(set(addresses)), "seq": seq})
    return {account: int(balance) for account, balance in rows}


def supply_at(session: Session, seq: int) -> int:
    return balance_at(session, SUPPLY, seq)

