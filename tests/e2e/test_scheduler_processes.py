"""Two real scheduler processes against one database finalize every proposal exactly once."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from litestar.testing import TestClient
from sqlmodel import Session, select

from governance.app import create_app
from proposals.models import Proposal, ProposalEvent
from tests.support import Gov, Wallet, make_key
from tests.support.processes import dao_env, deployment, start_scheduler
from voting.models import TallyResult

pytestmark = pytest.mark.slow

N_PROPOSALS = 40


def test_two_scheduler_processes_finalize_each_proposal_once(database_url: str, tmp_path: Path) -> None:
    rt, clock = deployment(database_url, tmp_path)
    with TestClient(app=create_app(runtime=rt)) as client:
        gov = Gov(client, rt, make_key(rt, "operator"))
        whale, voter = Wallet.evm(), Wallet.solana()
        gov.buy(whale, 60)
        gov.buy(voter, 40)
        ids = [gov.proposal(whale, "PriceChange", price=100_000 + i, title=f"price #{i}") for i in range(N_PROPOSALS)]
        for i, pid in enumerate(ids):
            assert gov.vote(voter, pid, 1 if i % 2 else 0).status_code == 201
    clock.advance(600)  # every proposal's voting ends

    procs = [start_scheduler(dao_env(database_url, tmp_path / "clock"), tmp_path / f"s{i}.log") for i in range(2)]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with Session(rt.engine) as s:
                left = s.exec(select(Proposal.id).where(Proposal.state == "pending")).all()
            if not left:
                break
            time.sleep(0.3)
        assert not left, f"{len(left)} proposals still pending; logs: {(tmp_path / 's0.log').read_text()[-2000:]}"
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=20)

    with Session(rt.engine) as s:
        events = s.exec(select(ProposalEvent).where(ProposalEvent.event.in_(["queued", "defeated"]))).all()
        results = s.exec(select(TallyResult)).all()
        states = Counter(p.state for p in s.exec(select(Proposal)).all())
    per_proposal = Counter(e.proposal_id for e in events)
    assert set(per_proposal) == set(ids)
    assert all(n == 1 for n in per_proposal.values()), per_proposal.most_common(3)
    assert len(results) == N_PROPOSALS
    assert states == {"queued": N_PROPOSALS // 2, "defeated": N_PROPOSALS // 2}
    for i, p in enumerate(procs):
        assert p.returncode in (0, -15), (tmp_path / f"s{i}.log").read_text()[-2000:]
    rt.engine.dispose()
