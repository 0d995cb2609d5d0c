"""What a running process shares, built once at start by :func:`governance.bootstrap.bootstrap`.

A :class:`Runtime` is the composition root's product: the settings, the engine, the clock, and
every dependency the domains need from each other, each in a typed field. Nothing is looked up
by name and nothing is built on first use: a process that could not build one of them did not
start (``bootstrap`` raised :class:`~governance.settings.SettingsError` naming the setting).
Only the deployment's salt is read later, from the database (:meth:`Runtime.load_deployment`),
because ``dao init`` builds a runtime before there is one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect
from sqlmodel import Session

from governance.clock import Clock
from governance.errors import NotInitialised
from governance.models import Deployment
from governance.ports import CancelGuard, JournalReader, PowerSource, RecordedHeads, TokenLedger, TreasuryReader
from governance.settings import Settings
from governance.viewcache import ViewCache

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from governance.typed_data import Domain, TypedDataEncoder
    from proposals.models import Proposal
    from proposals.schemas import ExecutionView, VotingSection
    from treasury_exec.chain import ChainAsset, ChainClient
    from voting.writer import VoteWriter

# the sections other domains add to rendered proposals, read for a page of proposals at once:
# (session, proposals) -> {proposal id: section}
TallyViews = Callable[[Session, Sequence["Proposal"]], dict[str, "VotingSection"]]
ExecutionViews = Callable[[Session, Sequence["Proposal"]], dict[str, "ExecutionView"]]


@dataclass(eq=False)
class Runtime:
    settings: Settings
    engine: Engine
    clock: Clock
    # what proposals and voting read from the treasury (treasury_exec provides them)
    token_ledger: TokenLedger
    journal: JournalReader
    treasury: TreasuryReader
    cancel_guard: CancelGuard
    # the deployment's voting-power source, excluded accounts taken out (voting provides it)
    power: PowerSource
    # the sections voting and treasury_exec add to a rendered proposal
    tally_views: TallyViews
    execution_views: ExecutionViews
    # the journal heads proposals and tally results recorded (dao ledger verify checks them)
    recorded_heads: tuple[RecordedHeads, ...]
    # on-chain execution (treasury_exec): the assets a spend may pay, and the RPC client (None
    # when no asset is on chain)
    chain_assets: dict[str, ChainAsset]
    chain_client: ChainClient | None
    treasury_account: LocalAccount | None  # the key chain-mode transfers are sent with
    view_cache: ViewCache
    vote_writer: VoteWriter = field(init=False)  # needs the runtime itself; set by bootstrap
    salt: str = ""

    def load_deployment(self) -> Runtime:
        """Read the deployment's salt; a database without one was never initialised."""
        with Session(self.engine) as session:
            migrated = inspect(self.engine).has_table(Deployment.__tablename__)
            row = session.get(Deployment, 1) if migrated else None
        if row is None:  # a start-up refusal, never a response: every process loads it before serving
            database = self.engine.url.render_as_string(hide_password=True)
            raise NotInitialised(f"the database {database} holds no deployment: run `dao init` first")
        self.salt = row.salt
        return self

    def close(self) -> None:
        """Stop the vote writer's thread (if it ever started), then release connections."""
        self.vote_writer.stop()
        self.engine.dispose()

    @cached_property
    def domain(self) -> Domain:
        from governance.typed_data import Domain

        if not self.salt:
            self.load_deployment()
        return Domain(name=self.settings.dao_name, version="1", chain_id=self.settings.chain_id,
                      salt=self.salt)

    @cached_property
    def encoder(self) -> TypedDataEncoder:
        from governance.typed_data import TypedDataEncoder

        return TypedDataEncoder(self.domain)
