"""The composition root: the one place that knows every domain and builds what a process runs.

``dao serve``, ``dao scheduler``, the other ``dao`` commands and the tests all get their
:class:`~governance.runtime.Runtime` from :func:`bootstrap`, and the app, the scheduler and
the CLI take the domains' routes, jobs, initialisers and commands from the lists below.
Everything is built here, once, in order, before the process serves or writes anything; a
setting the service cannot run with stops it here with a :class:`SettingsError` naming the
setting. The domains never import each other (see docs/architecture.md): what one needs from
another is a protocol in :mod:`governance.ports`, given to it as a typed field of the runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session
from web3 import Web3

import proposals.controllers
import proposals.service
import treasury_exec.cli
import treasury_exec.controllers
import treasury_exec.jobs
import treasury_exec.service
import treasury_exec.wiring
import voting.cli
import voting.controllers
import voting.finalize
import voting.jobs
import voting.views
from governance.clock import Clock, FileClock, SystemClock
from governance.db import create_engine
from governance.runtime import Runtime
from governance.settings import Settings, SettingsError
from governance.viewcache import ViewCache
from voting.power import make_power_source
from voting.writer import VoteWriter

# What each domain contributes to the processes, in the order they run.
ROUTES: list[Any] = [*treasury_exec.controllers.ROUTES, *proposals.controllers.ROUTES, *voting.controllers.ROUTES]
# the scheduler's jobs, in the order each tick runs them
JOBS: list[tuple[str, Callable[[Runtime], int]]] = [*treasury_exec.jobs.JOBS, *voting.jobs.JOBS]
# what ``dao init`` sets up on a new deployment (each idempotent)
INITIALISERS: list[Callable[[Session, Runtime], None]] = [treasury_exec.service.initialise]
COMMANDS: list[Any] = [*treasury_exec.cli.COMMANDS, *voting.cli.COMMANDS]


def bootstrap(settings: Settings, *, engine: Engine | None = None, clock: Clock | None = None) -> Runtime:
    """Build a process's runtime from its settings: every dependency, once, checked.

    ``engine`` and ``clock`` may be given (tests share a clock; a test may share an engine);
    otherwise they come from the settings. Raises :class:`SettingsError` naming the setting
    when something cannot be built; nothing is left open then.
    """
    if clock is None:
        clock = FileClock(settings.test_clock_file) if settings.test_clock_file else SystemClock()
    treasury = treasury_exec.wiring.build(settings)  # checks the chain settings and the treasury key
    power = make_power_source(settings, treasury.token_ledger)
    runtime = Runtime(
        settings=settings,
        engine=engine or create_engine(settings.database_url, timeout=settings.database_timeout),
        clock=clock,
        token_ledger=treasury.token_ledger,
        journal=treasury.journal,
        treasury=treasury.treasury,
        cancel_guard=treasury.cancel_guard,
        power=power,
        tally_views=voting.views.tally_sections,
        execution_views=treasury.execution_views,
        recorded_heads=(proposals.service.recorded_heads, voting.finalize.recorded_heads),
        chain_assets=treasury.chain_assets,
        chain_client=treasury.chain_client,
        treasury_account=treasury.treasury_account,
        view_cache=ViewCache(settings.view_cache_ms),
    )
    # the writer's thread starts with the first vote, so a command that never votes runs none
    runtime.vote_writer = VoteWriter(runtime, settings.vote_batch_max)
    return runtime


def check_chain(runtime: Runtime) -> None:
    """For a process that runs the service (``dao serve``, ``dao scheduler``, ``dao init``,
    ``dao demo``): the chain the settings point at is there. ``DAO_RPC_URL`` answers, and every
    token address the service is given (``DAO_CHAIN_ASSETS``, ``DAO_ERC20_TOKEN``) holds a
    contract on the chain it serves: an address copied from another network, or an RPC on the
    wrong chain, would have every transfer to it succeed and pay nothing. :class:`SettingsError`
    naming the setting."""
    s = runtime.settings
    tokens = {f"DAO_CHAIN_ASSETS ({symbol})": asset.token for symbol, asset in runtime.chain_assets.items()
              if asset.token}
    if s.power_source == "erc20":
        tokens["DAO_ERC20_TOKEN"] = s.erc20_token
    if not (runtime.chain_assets or tokens):
        return
    w3 = Web3(Web3.HTTPProvider(s.rpc_url, request_kwargs={"timeout": 10}))
    try:
        chain_id = w3.eth.chain_id
        codes = {name: w3.eth.get_code(Web3.to_checksum_address(token)) for name, token in tokens.items()}
    except Exception as exc:  # connection refused, timeouts, an endpoint that is not JSON-RPC
        raise SettingsError(f"DAO_RPC_URL: {s.rpc_url} does not answer as a JSON-RPC node "
                            f"({type(exc).__name__}); the chain assets and the erc20 source need it") from None
    for name, code in codes.items():
        if not code:
            raise SettingsError(f"{name}: {tokens[name]} holds no contract on the chain DAO_RPC_URL serves "
                                f"(chain id {chain_id}): an address from another network, or the wrong RPC?")
