"""Voting-power sources. One per deployment (``DAO_POWER_SOURCE``), each able to freeze a
snapshot and answer "what did this address weigh there" forever after.

| source         | snapshot ref               | weight                         | total                      |
|----------------|----------------------------|--------------------------------|----------------------------|
| ``ledger``     | token-ledger sequence      | balance at that sequence       | supply there − excluded    |
| ``erc20``      | block (latest − confirms)  | getPastVotes / balanceOf@block | past supply − excluded     |
| ``holders-file`` | holder-list id           | the listed balance             | the listed total − excluded|

Each source reads what its ledger, chain or list says; :class:`ExcludingAccounts` applies
``DAO_EXCLUDED_ACCOUNTS`` on top of every one of them, in one place, so no source can forget it.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from governance.errors import Conflict
from governance.ports import PowerSource, Snapshot, TokenLedger
from governance.settings import Settings
from voting.models import HolderBalance, HolderList


class ExcludingAccounts:
    """A source with the excluded accounts (treasury-held tokens) taken out: they weigh 0 on
    every proposal, for votes and for the proposal threshold alike, and the total is the
    source's total less what they hold at the snapshot, each account subtracted once."""

    def __init__(self, source: PowerSource, excluded: Collection[str]):
        self.source = source
        self.name = source.name
        self.reads_chain = source.reads_chain
        # a set: an account listed twice (refused by the settings anyway) is still taken out once
        self.excluded = frozenset(excluded)

    def take_snapshot(self, session: Session) -> Snapshot:
        snap = self.source.take_snapshot(session)
        held = sum(self.source.weights(session, snap, self.excluded).values()) if self.excluded else 0
        return Snapshot(source=snap.source, ref=snap.ref, total=max(snap.total - held, 0))

    def weight(self, session: Session, snapshot: Snapshot, address: str) -> int:
        if address in self.excluded:
            return 0
        return self.source.weight(session, snapshot, address)

    def weights(self, session: Session, snapshot: Snapshot, addresses: Collection[str]) -> dict[str, int]:
        return self.source.weights(session, snapshot, [a for a in addresses if a not in self.excluded])


class LedgerPowerSource:
    """The embedded token ledger: balances with checkpoints at every ledger sequence."""

    name = "ledger"
    reads_chain = False

    def __init__(self, ledger: TokenLedger):
        self.ledger = ledger

    def take_snapshot(self, session: Session) -> Snapshot:
        seq = self.ledger.current_seq(session)
        return Snapshot(source=self.name, ref=seq, total=self.ledger.supply_at(session, seq))

    def weight(self, session: Session, snapshot: Snapshot, address: str) -> int:
        return self.ledger.balance_at(session, address, snapshot.ref)

    def weights(self, session: Session, snapshot: Snapshot, addresses: Collection[str]) -> dict[str, int]:
        return self.ledger.balances_at(session, addresses, snapshot.ref)


_h = HolderBalance.__table__  # type: ignore[attr-defined]
_LISTED = sa_select(_h.c.address, _h.c.balance).where(  # built once: the vote writer runs it for every batch
    _h.c.list_id == bindparam("list"), _h.c.address.in_(bindparam("addresses", expanding=True)))


class HoldersFilePowerSource:
    """An uploaded holder list, for tokens whose chain has no historical reads (SPL)."""

    name = "holders-file"
    reads_chain = False

    def take_snapshot(self, session: Session) -> Snapshot:
        current = session.exec(select(HolderList).order_by(HolderList.id.desc()).limit(1)).first()
        if current is None or current.id is None:
            raise Conflict("no holder list has been uploaded yet", code="no_holder_list")
        return Snapshot(source=self.name, ref=current.id, total=current.total)

    def weight(self, session: Session, snapshot: Snapshot, address: str) -> int:
        return self._balance(session, snapshot.ref, address)

    def weights(self, session: Session, snapshot: Snapshot, addresses: Collection[str]) -> dict[str, int]:
        wanted = set(addresses)
        if not wanted:
            return {}
        rows = session.connection().execute(_LISTED, {"list": snapshot.ref, "addresses": sorted(wanted)})
        return {address: balance for address, balance in rows}

    @staticmethod
    def _balance(session: Session, list_id: int, address: str) -> int:
        row = session.get(HolderBalance, (list_id, address))
        return row.balance if row else 0


class Erc20PowerSourceAdapter:
    """An ERC-20 (or ERC20Votes) token read with web3 at the snapshot block."""

    name = "erc20"
    reads_chain = True  # every answer at a snapshot block is kept (voting.erc20): ask before a lock

    def __init__(self, s: Settings):
        from voting.erc20 import Erc20PowerSource

        self.chain = Erc20PowerSource(s.rpc_url, s.erc20_token, confirmations=s.confirmations)

    def take_snapshot(self, session: Session) -> Snapshot:
        block = self.chain.snapshot()
        return Snapshot(source=self.name, ref=block, total=self.chain.total(block))

    def weight(self, session: Session, snapshot: Snapshot, address: str) -> int:
        return self.chain.weight(address, snapshot.ref)

    def weights(self, session: Session, snapshot: Snapshot, addresses: Collection[str]) -> dict[str, int]:
        return {a: self.chain.weight(a, snapshot.ref) for a in set(addresses)}


def make_power_source(settings: Settings, ledger: TokenLedger) -> PowerSource:
    """The deployment's source (``DAO_POWER_SOURCE``), with the excluded accounts taken out;
    ``ledger`` is the token ledger the ``ledger`` source reads."""
    source: PowerSource
    if settings.power_source == "erc20":
        source = Erc20PowerSourceAdapter(settings)
    elif settings.power_source == "holders-file":
        source = HoldersFilePowerSource()
    else:
        source = LedgerPowerSource(ledger)
    return ExcludingAccounts(source, settings.excluded_accounts)


def snapshot_of(proposal) -> Snapshot:
    """The snapshot frozen on a proposal row."""
    return Snapshot(source=proposal.snapshot_source, ref=proposal.snapshot_ref, total=proposal.snapshot_total)
