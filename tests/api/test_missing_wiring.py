"""Missing wiring fails closed: without the cancel guard a proposal is not canceled, without
the view providers a proposal is not rendered half. (A process cannot start that way at all:
tests/unit/test_startup_wiring.py; these cover a port lost after start.)"""

from __future__ import annotations

import pytest
from sqlmodel import Session

from governance.db import session_scope
from governance.ports import CANCEL_GUARD, PROPOSAL_VIEWS
from proposals.models import Proposal
from proposals.service import cancel_proposal, get_proposal
from proposals.views import render
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
