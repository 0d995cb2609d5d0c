"""What the domains offer each other, without importing each other.

``voting`` and ``treasury_exec`` never import each other, and ``proposals`` imports
neither; yet a proposal needs voting power at a snapshot and the treasury's state, and the
ledger power source needs the token ledger. Each need is a small protocol here. The
composition root (:func:`governance.bootstrap.bootstrap`) builds each domain's implementation
once, at start, and hands it to the others as a typed field of the
:class:`~governance.runtime.Runtime` (``runtime.power``, ``runtime.treasury``, …).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Protocol

from sqlmodel import Session


class TokenLedger(Protocol):
    """The embedded token ledger, readable at any past sequence number."""

    def current_seq(self, session: Session) -> int: ...

    def balance_at(self, session: Session, address: str, seq: int) -> int: ...

    def balances_at(self, session: Session, addresses: Collection[str], seq: int) -> dict[str, int]: ...

    def supply_at(self, session: Session, seq: int) -> int: ...


@dataclass(frozen=True)
class JournalPoint:
    """A point of the treasury journal: entry ``seq`` (0: before any) and that entry's hash.
    Whoever kept a copy can later check the chain still holds exactly this entry."""

    seq: int
    hash: str


class JournalReader(Protocol):
    """The treasury journal's hash chain, read only."""

    def head(self, session: Session) -> JournalPoint: ...

    def point_at(self, session: Session, seq: int) -> JournalPoint:
        """The entry ``seq`` as it stands (``seq`` 0: the genesis hash); LookupError if absent."""
        ...


@dataclass(frozen=True)
class RecordedHead:
    """A journal point another record keeps (a proposal's snapshot, a tally result): kind
    (``proposal``, ``result``, …), the record's name in a report, and the point."""

    kind: str
    name: str
    seq: int
    hash: str


# the journal points a domain recorded, for ``dao ledger verify`` to check
RecordedHeads = Callable[[Session], Iterable[RecordedHead]]

# why a proposal cannot be canceled now (its transfer is in flight), or None
CancelGuard = Callable[[Session, str], "str | None"]


class TreasuryReader(Protocol):
    """What proposal validation needs to know about the treasury right now."""

    def price_in_force(self, session: Session) -> int: ...

    def bucket_balance(self, session: Session, bucket: str, asset: str) -> int: ...

    def assets(self) -> dict[str, str]:
        """Spendable assets, each with the address family its recipients use: evm, solana, any."""
        ...


@dataclass(frozen=True)
class Snapshot:
    """A frozen point of the voting-power source: ``ref`` is a ledger sequence, a block
    number or a holder-list id; ``total`` is the voting supply there, excluded accounts removed."""

    source: str
    ref: int
    total: int


class PowerSource(Protocol):
    """Voting power: who weighed what at a snapshot.

    ``reads_chain``: the source asks a chain node. No database lock may be held while a node
    answers (SQLite's is the whole database's), so callers ask such a source first in a
    read-only unit of work; it keeps what it read at a snapshot, and the same questions asked
    again under the lock are answered without the node."""

    name: str
    reads_chain: bool

    def take_snapshot(self, session: Session) -> Snapshot: ...

    def weight(self, session: Session, snapshot: Snapshot, address: str) -> int: ...

    def weights(self, session: Session, snapshot: Snapshot, addresses: Collection[str]) -> dict[str, int]:
        """:meth:`weight` of many addresses at once (a vote batch); zero weights may be left out."""
        ...
