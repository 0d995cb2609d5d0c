"""Two scheduler processes and two external executors race over the same queued proposals:
every proposal gets exactly one effect."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from litestar.testing import TestClient
from sqlmodel import Session, select

from governance.app import create_app
from governance.bootstrap import bootstrap
from governance.clock import FileClock
from governance.settings import load_settings
from proposals.models import Proposal, ProposalEvent
from tests.support import Gov, Wallet, make_key
from tests.support.processes import SETTINGS, dao_env, deployment, start_scheduler
from treasury_exec.models import JournalEntry, ParameterVersion

pytestmark = pytest.mark.slow
N = 16  # of each kind
RACE = {**SETTINGS, "external_buckets": ("development",), "retry_interval": 1}


def executor_loop(database_url: str, clock_file: Path, key: str, stop: threading.Event, results: Counter) -> None:
    """One external executor talking to its own API instance (as another process would)."""
    rt = bootstrap(load_settings(env={}, database_url=database_url, **RACE), clock=FileClock(clock_file))
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(app=create_app(runtime=rt)) as client:
        while not stop.is_set():
            ready = client.get("/v1/executions", params={"status": "ready", "limit": 50}).json()["items"]
            for ex in ready:
                if ex["mode"] != "external":
                    continue
                claim = client.post(f"/v1/executions/{ex['id']}/claim", headers=auth)
                results[f"claim {claim.status_code}"] += 1
                if claim.status_code != 200:
                    continue
                done = client.post(f"/v1/executions/{ex['id']}/complete", headers=auth,
                                   json={"reference": f"wire-{ex['id']}-{key[-6:]}"})
                results[f"complete {done.status_code}"] += 1
            time.sleep(0.05)


def test_schedulers_and_executors_race_to_one_effect_each(database_url: str, tmp_path: Path) -> None:
    rt, clock = deployment(database_url, tmp_path, RACE)
    with TestClient(app=create_app(runtime=rt)) as client:
        gov = Gov(client, rt, make_key(rt, "operator"))
        whale = Wallet.evm()
        gov.buy(whale, 1000)  # development bucket: 20,000,000 micro-USD
        ids = [gov.proposal(whale, "PriceChange", price=100_000 + i, title=f"price {i}") for i in range(N)]
        ids += [gov.proposal(whale, "TreasurySpend", bucket="development", amount=10_000 + i, title=f"grant {i}")
                for i in range(N)]
        for pid in ids:
            assert gov.vote(whale, pid, 1).status_code == 201
        clock.advance(600)  # voting ends
        gov.tick()  # tallied and queued
    clock.advance(300)  # the timelock passes
    keys = [make_key(rt, "executor") for _ in range(2)]

    stop, results = threading.Event(), Counter()
    executors = [threading.Thread(target=executor_loop,
                                  args=(database_url, tmp_path / "clock", k, stop, results)) for k in keys]
    env = dao_env(database_url, tmp_path / "clock", DAO_EXTERNAL_BUCKETS="development", DAO_RETRY_INTERVAL="1")
    procs = [start_scheduler(env, tmp_path / f"s{i}.log") for i in range(2)]
    for t in executors:
        t.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with Session(rt.engine) as s:
                left = s.exec(select(Proposal.id).where(Proposal.state != "executed")).all()
            if not left:
                break
            time.sleep(0.3)
    finally:
        stop.set()
        for t in executors:
            t.join(timeout=30)
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=20)
    assert not left, f"{len(left)} not executed; executors {results}; {(tmp_path / 's0.log').read_text()[-2000:]}"

    with Session(rt.engine) as s:
        executed = Counter(e.proposal_id for e in s.exec(
            select(ProposalEvent).where(ProposalEvent.event == "executed")))
        spends = s.exec(select(JournalEntry).where(JournalEntry.kind == "spend")).all()
        versions = s.exec(select(ParameterVersion).where(ParameterVersion.origin == "proposal")).all()
    assert set(executed) == set(ids) and set(executed.values()) == {1}
    assert len(spends) == N and len({e.reference for e in spends}) == N
    assert len(versions) == N and len({v.proposal_id for v in versions}) == N
    assert results["complete 200"] == N  # each external spend completed once, whoever claimed it
    rt.engine.dispose()
