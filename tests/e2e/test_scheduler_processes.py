"""Two real scheduler processes against one database finalize every proposal exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from litestar.testing import TestClient
from sqlmodel import Session, select

from governance.app import create_app
from proposals.models import Proposal, ProposalEvent
from tests.conftest import make_key
from tests.e2e.deploy import deployment
from tests.support import TOKEN, Gov, Wallet
from voting.models import TallyResult

pytestmark = pytest.mark.slow

N_PROPOSALS = 40
SETTINGS = {"voting_delay": 0, "voting_period": 600, "timelock": 300, "grace_period": 600, "rate_limit_per_minute": 0,
            "proposal_threshold": TOKEN, "chain_id": 31337}


def start_scheduler(database_url: str, clock_file: Path, log: Path, extra: dict[str, str] | None = None
                    ) -> subprocess.Popen:
    env = {**os.environ, "DAO_DATABASE_URL": database_url, "DAO_TEST_CLOCK_FILE": str(clock_file),
           "DAO_SCHEDULER_INTERVAL": "1", "DAO_CHAIN_ID": "31337",
           **{f"DAO_{k.upper()}": str(v) for k, v in SETTINGS.items()}, **(extra or {})}
    return subprocess.Popen([sys.executable, "-m", "governance.cli", "-v", "scheduler"], env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


def test_two_scheduler_processes_finalize_each_proposal_once(database_url: str, tmp_path: Path) -> None:
    rt, clock = deployment(database_url, tmp_path, SETTINGS)
    with TestClient(app=create_app(runtime=rt)) as client:
        gov = Gov(client, rt, make_key(rt, "operator"))
        whale, voter = Wallet.evm(), Wallet.solana()
        gov.buy(whale, 60)
        gov.buy(voter, 40)
        ids = [gov.proposal(whale, "PriceChange", price=100_000 + i, title=f"price #{i}") for i in range(N_PROPOSALS)]
        for i, pid in enumerate(ids):
            assert gov.vote(voter, pid, 1 if i % 2 else 0).status_code == 201
    clock.advance(600)  # every proposal's voting ends

    procs = [start_scheduler(database_url, tmp_path / "clock", tmp_path / f"s{i}.log") for i in range(2)]
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
