"""Wiring is built once, eagerly and typed, by the composition root (governance.bootstrap): there
is nothing to look up by name, no dependency made on first use, and no permissive default for
one that is missing."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import pytest

from governance.db import session_scope
from governance.runtime import Runtime
from proposals.service import get_proposal
from proposals.views import render
from tests.support import TOKEN, Gov, Wallet

# filled in by bootstrap after the runtime exists (the writer needs it), or read from the database
LATE = {"vote_writer", "salt"}


@pytest.fixture
def settings_overrides() -> dict:
    return {"proposal_threshold": TOKEN}


def test_every_dependency_is_a_required_typed_field() -> None:
    """A runtime cannot be made without, say, the cancel guard: no field the domains rely on has a
    default to fall back to (a missing guard would let a transfer in flight be canceled)."""
    fields = {f.name: f for f in dataclasses.fields(Runtime)}
    for name in ("token_ledger", "journal", "treasury", "cancel_guard", "power", "tally_views", "execution_views",
                 "recorded_heads", "chain_assets", "chain_client", "treasury_account", "view_cache"):
        f = fields[name]
        assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, name
    assert {n for n, f in fields.items()
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            or not f.init} == LATE
    assert not hasattr(Runtime, "port") and "ports" not in fields and "extras" not in fields


def test_the_runtime_is_complete_when_bootstrap_returns(runtime) -> None:
    assert len(runtime.recorded_heads) == 2
    assert runtime.vote_writer.runtime is runtime and runtime.view_cache is runtime.vote_writer.views


def test_concurrent_first_reads_render_the_same_view(client, runtime, operator_key) -> None:
    """Wiring on first use let four concurrent first calls register eight view providers; now the
    sections are fixed at start and concurrent first renders agree."""
    gov = Gov(client, runtime, operator_key)
    a = Wallet.evm()
    gov.buy(a, 10)
    pid = gov.proposal(a, "PriceChange", price=110_000)

    def read(_: int):
        with session_scope(runtime.engine, write=False) as s:
            return render(s, runtime, [get_proposal(s, pid)])[0]

    with ThreadPoolExecutor(8) as pool:
        views = list(pool.map(read, range(16)))
    assert all(v == views[0] for v in views)
    assert views[0].tally is not None
