"""The ports the treasury provides: the token ledger, the journal's head, what proposal
validation reads, the execution section of a proposal, and the guard against cancelling a
transfer in flight."""

from __future__ import annotations

from sqlmodel import Session

from governance.ports import CANCEL_GUARD, JOURNAL, TOKEN_LEDGER, TREASURY
from governance.runtime import Runtime
from proposals.views import register_view
from treasury_exec import service
from treasury_exec.chain import parse_assets
from treasury_exec.executions import cancel_guard
from treasury_exec.journal import JournalReaderPort
from treasury_exec.ledger import TokenLedgerPort
from treasury_exec.views import execution_sections


class TreasuryReaderPort:
    def __init__(self, runtime: Runtime):
        self._assets = {service.USD: "any"}
        self._assets |= {symbol: "evm" for symbol in parse_assets(runtime.settings.chain_assets)}

    def price_in_force(self, session: Session) -> int:
        return service.price_in_force(session)

    def bucket_balance(self, session: Session, bucket: str, asset: str) -> int:
        return service.bucket_balance(session, bucket, asset)

    def assets(self) -> dict[str, str]:
        return dict(self._assets)


def wire(runtime: Runtime) -> None:
    runtime.ports[TOKEN_LEDGER] = TokenLedgerPort()
    runtime.ports[JOURNAL] = JournalReaderPort()
    runtime.ports[TREASURY] = TreasuryReaderPort(runtime)
    runtime.ports[CANCEL_GUARD] = cancel_guard
    register_view(runtime, execution_sections)
