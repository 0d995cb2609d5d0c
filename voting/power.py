"""Voting-power sources. One per deployment (``DAO_POWER_SOURCE``), each able to freeze a
snapshot and answer "what did this address weigh there" forever after.

| source         | snapshot ref               | weight                         | total                      |
|----------------|----------------------------|--------------------------------|----------------------------|
| ``ledger``     | token-ledger sequence      | balance at that sequence       | supply there − excluded    |
| ``erc20``      | block (latest − confirms)  | getPastVotes / balanceOf@block | past supply − excluded     |
| ``holders-file`` | holder-list id           | the listed balance             | the listed total − excluded|
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from governance.errors import Conflict
from governance.ports import TOKEN_LEDGER, PowerSource, Snapshot, TokenLedger
from governance.runtime import Runtime
from voting.models import HolderBalance, HolderList


class LedgerPowerSource:
    """The embedded token ledger: balances with checkpoints at every ledger sequence."""

    name = "ledger"

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.excluded = tuple(runtime.settings.excluded_accounts)

    @property
    def ledger(self) -> TokenLedger:
        return self.runtime.port(TOKEN_LEDGER)

    def take_snapshot(self, session: Session) -> Snapshot:
        seq = self.ledger.current_seq(session)
        total = self.ledger.supply_at(session, seq)
        total -= sum(self.ledger.balance_at(session, a, seq) for a in self.excluded)
        return Snapshot(source=self.name, ref=seq, total=max(total, 0))

    def weight(self, session: Session, snapshot: Snapshot, address: str) -> int:
        if address in self.excluded:
            return 0
        return self.ledger.balance_at(session, address, snapshot.ref)

    def weights(self, session: Session, snapshot: Snapshot, addresses: Collection[str]) -> dict[str, int]:
        wanted = [a for a in addresses if a not in self.excluded]
        return self.ledger.balances_at(session, wanted, snapshot.ref)


_h = HolderBalance.__table__  # type: ignore[attr-defined]
_LISTED = sa_select(_h.c.address, _h.c.balance).where(  # built once: the vote writer runs it for every batch
    _h.c.list_id == bindparam("list"), _h.c.address.in_(bindparam("addresses", expanding=True)))


class HoldersFilePowerSource:
    """An uploaded holder list, for tokens whose chain has no historical reads (SPL)."""

    name = "holders-file"

    def __init__(self, runtime: Runtime):
        self.excluded = tuple(runtime.settings.excluded_accounts)

    def take_snapshot(self, session: Session) -> Snapshot:
        current = session.exec(select(HolderList).order_by(HolderList.id.desc()).limit(1)).first()
        if current is None or current.id is None:
            raise Conflict("no holder list has been uploaded yet", code="no_holder_list")
        excluded = sum(self._balance(session, current.id, a) for a in self.excluded)
        return Snapshot(source=self.name, ref=current.id, total=max(current.total - excluded, 0))

    def weight(self, session: Session, snapshot: Snapshot, address: str) -> int:
        if address in self.excluded:
            return 0
        return self._balance(session, snapshot.ref, address)

    def weights(self, session: Session, snapshot: Snapshot, addresses: Collection[str]) -> dict[str, int]:
        wanted = {a for a in addresses if a not in self.excluded}
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

    def __init__(self, runtime: Runtime):
        from voting.erc20 import Erc20PowerSource

        s = runtime.settings
        self.chain = Erc20PowerSource(s.rpc_url, s.erc20_token, confirmations=s.confirmations,
                                      excluded_accounts=list(s.excluded_accounts))

    def take_snapshot(self, session: Session) -> Snapshot:
        block = self.chain.snapshot()
        return Snapshot(source=self.name, ref=block, total=self.chain.total(block))

    def weight(self, session: Session, snapshot: Snapshot, address: str) -> int:
        return self.chain.weight(address, snapshot.ref)

    def weights(self, session: Session, snapshot: Snapshot, addresses: Collection[str]) -> dict[str, int]:
        return {a: self.chain.weight(a, snapshot.ref) for a in set(addresses)}


def make_power_source(runtime: Runtime) -> PowerSource:
    kind = runtime.settings.power_source
    if kind == "erc20":
        return Erc20PowerSourceAdapter(runtime)
    if kind == "holders-file":
        return HoldersFilePowerSource(runtime)
    return LedgerPowerSource(runtime)


def snapshot_of(proposal) -> Snapshot:
    """The snapshot frozen on a proposal row."""
    return Snapshot(source=proposal.snapshot_source, ref=proposal.snapshot_ref, total=proposal.snapshot_total)
