"""Token balances and supply at any ledger sequence (the ``ledger`` voting-power source)."""

from __future__ import annotations

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


def supply_at(session: Session, seq: int) -> int:
    return balance_at(session, SUPPLY, seq)


class TokenLedgerPort:
    """governance.ports.TokenLedger over the embedded journal."""

    current_seq = staticmethod(current_seq)
    balance_at = staticmethod(balance_at)
    supply_at = staticmethod(supply_at)
