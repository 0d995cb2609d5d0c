"""Missing wiring is a start-up error, never a permissive default: a runtime without the cancel
guard does not start, and a port lost after start fails closed (no cancel, no half-rendered
proposal) instead of falling back."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from governance import domains
from governance.db import session_scope
from governance.ports import CANCEL_GUARD
from governance.runtime import Runtime
from governance.settings import SettingsError, load_settings
from proposals.models import Proposal
from proposals.service import cancel_proposal, get_proposal
from proposals.views import PROPOSAL_VIEWS, render
from tests.support import TOKEN, Gov, Wallet


@pytest.fixture
def settings_overrides() -> dict:
    return {"proposal_threshold": TOKEN}


@pytest.fixture
def pending(client, runtime, operator_key) -> str:
    gov = Gov(client, runtime, operator_key)
    a = Wallet.evm()
    gov.buy(a, 10)
    return gov.proposal(a, "PriceChange", price=110_000)


def test_cancel_without_the_cancel_guard_fails_closed(runtime, pending) -> None:
    del runtime.ports[CANCEL_GUARD]
    with pytest.raises(LookupError, match=CANCEL_GUARD), session_scope(runtime.engine) as s:
        cancel_proposal(s, runtime, pending, guardian_key_id=1)
    with Session(runtime.engine) as s:
        p = s.get(Proposal, pending)
        assert p.state == "pending" and p.canceled_at is None


def test_rendering_without_the_view_providers_fails_closed(runtime, pending) -> None:
    del runtime.ports[PROPOSAL_VIEWS]
    with session_scope(runtime.engine, write=False) as s, pytest.raises(LookupError, match=PROPOSAL_VIEWS):
        render(s, runtime, [get_proposal(s, pending)])


def test_a_runtime_without_the_cancel_guard_refuses_to_start(database_url, monkeypatch) -> None:
    """Without the treasury domain nothing guards a transfer in flight against cancellation:
    the app does not build (create_app wires at once), whatever the database."""
    from governance.app import create_app

    monkeypatch.setattr(domains, "DOMAINS", tuple(d for d in domains.DOMAINS if d != "treasury_exec"))
    rt = Runtime.from_settings(load_settings(env={}, database_url=database_url))
    with pytest.raises(SettingsError, match=CANCEL_GUARD):
        create_app(runtime=rt)
    with pytest.raises(SettingsError, match=CANCEL_GUARD):
        rt.wire()
    assert rt.ports == {}  # half-wired is not wired
    rt.close()
