"""Faults, with real processes: the API killed (SIGKILL) in the middle of a stream of votes,
the scheduler killed at each step of finalizing and executing, and a database that goes away
under a running API.

What they prove: a vote the API acknowledged (2xx) survives a kill -9 and is counted; a kill
never stores a ballot nobody sent, nor a gap in the ballot log; a scheduler killed at any step
leaves, after a restart, exactly one tally and at most one effect per proposal; an outage is a
503 ``database_unavailable`` that stores nothing, and the API recovers without a restart.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import sqlite3
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient
from sqlalchemy import func
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from governance.app import create_app
from governance.db import is_sqlite
from governance.runtime import Runtime
from proposals.models import Proposal, ProposalEvent
from tests.support import PRICE, START, Gov, Wallet, make_key, proposal_message, vote_message
from tests.support.processes import SETTINGS, Server, TcpProxy, dao, dao_env, deployment
from treasury_exec.models import Execution, JournalEntry, JournalHead, ParameterVersion, Purchase
from voting.export import verify_export
from voting.models import Ballot, ProposalTally, TallyResult

pytestmark = pytest.mark.slow

# --- processes --------------------------------------------------------------------------------

def scheduler_once(database_url: str, clock_file: Path, failpoint: str | None = None) -> subprocess.CompletedProcess:
    return dao("scheduler", "--once", env=dao_env(database_url, clock_file, failpoint))


def counts(rt: Runtime) -> dict[str, object]:
    """What a rejected request must not change: row counts, the journal head, running tallies."""
    with Session(rt.engine) as s:
        out: dict[str, object] = {m.__name__: s.exec(select(func.count()).select_from(m)).one()
                                  for m in (Ballot, Purchase, JournalEntry, Proposal, ProposalEvent)}
        head = s.get(JournalHead, 1)
        out["journal_head"] = (head.seq, head.hash) if head else None
        out["tallies"] = sorted((t.proposal_id, t.for_votes, t.against_votes, t.abstain_votes, t.last_seq)
                                for t in s.exec(select(ProposalTally)))
    return out


def all_ballots(http: httpx.Client, pid: str) -> list[dict]:
    out, cursor = [], 0
    while True:
        page = http.get(f"/v1/proposals/{pid}/votes", params={"cursor": cursor, "limit": 500})
        assert page.status_code == 200, page.text
        body = page.json()
        out += body["items"]
        if body["next_cursor"] is None:
            return out
        cursor = int(body["next_cursor"])


# --- 1. the API killed while it accepts votes ------------------------------------------------

N_VOTERS, ROUNDS, THREADS = 64, 3, 4
KILL_AFTER = N_VOTERS * ROUNDS // 3  # acknowledged votes before the kill


def test_votes_acknowledged_before_a_kill_survive_it(database_url: str, tmp_path: Path) -> None:
    rt, clock = deployment(database_url, tmp_path)
    rng = random.Random(7)
    voters = [Wallet.solana() if i % 3 == 0 else Wallet.evm() for i in range(N_VOTERS)]
    weights = {}
    with TestClient(app=create_app(runtime=rt)) as client:
        gov = Gov(client, rt, make_key(rt, "operator"))
        proposer = Wallet.evm()
        gov.buy(proposer, 10)
        for i, w in enumerate(voters):
            weights[w.address] = int(gov.buy(w, 1 + i)["tokens"])
        pid = gov.proposal(proposer, "PriceChange", price=110_000)
    # every voter changes their mind: ROUNDS signed votes each, later ones replace earlier ones
    choice = {(i, r): rng.randrange(3) for i in range(N_VOTERS) for r in range(ROUNDS)}
    signed = {(i, r): w.sign(rt.domain, "Vote", vote_message(w.address, pid, choice[i, r], START - ROUNDS + r))
              for i, w in enumerate(voters) for r in range(ROUNDS)}
    key_of = {env["signature"]: key for key, env in signed.items()}
    rt.engine.dispose()

    server = Server(dao_env(database_url, tmp_path / "clock"), tmp_path / "serve.log")
    acked: dict[tuple[int, int], dict] = {}
    in_flight: set[tuple[int, int]] = set()  # sent; the answer never came
    refused: list[tuple[tuple[int, int], int, str]] = []
    lock, enough = threading.Lock(), threading.Event()

    def stream(mine: list[tuple[int, int]]) -> None:
        with httpx.Client(base_url=server.base, timeout=30) as http:
            for key in mine:
                try:
                    r = http.post("/v1/votes", json=signed[key])
                except httpx.ConnectError:
                    return  # the server is gone: nothing was sent
                except httpx.TransportError:
                    with lock:
                        in_flight.add(key)
                    return
                with lock:
                    if r.status_code in (200, 201):
                        acked[key] = r.json()
                        if len(acked) >= KILL_AFTER:
                            enough.set()
                    else:
                        refused.append((key, r.status_code, r.text))

    # each thread owns some voters and sends their rounds in order
    plans = [[(i, r) for r in range(ROUNDS) for i in range(t, N_VOTERS, THREADS)] for t in range(THREADS)]
    threads = [threading.Thread(target=stream, args=(plan,)) for plan in plans]
    try:
        for t in threads:
            t.start()
        assert enough.wait(timeout=120), f"only {len(acked)} votes acknowledged: {refused[:3]} {server.tail()}"
        assert server.kill() == -signal.SIGKILL
        for t in threads:
            t.join(timeout=60)
        assert not refused, refused[:5]
        assert KILL_AFTER <= len(acked) < len(signed), "the kill did not land mid-stream"

        server = Server(dao_env(database_url, tmp_path / "clock"), tmp_path / "serve.log")
        with httpx.Client(base_url=server.base, timeout=30) as http:
            stored = all_ballots(http, pid)
            by_key = {key_of[b["signature"]]: b for b in stored}
            assert len(by_key) == len(stored), "a ballot nobody signed"
            # every acknowledged vote is there, as acknowledged; nothing else but what was in flight
            for key, receipt in acked.items():
                b = by_key.get(key)
                assert b is not None, f"acknowledged vote {key} lost: {receipt}"
                assert (b["id"], b["seq"], b["voter"], b["choice"], b["weight"]) == (
                    receipt["id"], receipt["seq"], receipt["voter"], receipt["choice"], receipt["weight"])
            assert set(by_key) - set(acked) <= in_flight
            assert sorted(b["seq"] for b in stored) == list(range(1, len(stored) + 1)), "a gap in the ballot log"
            # the running tally agrees with the ballot log it survived with
            live = Counter()
            for b in stored:
                if not b["superseded"]:
                    live[b["choice"]] += int(b["weight"])
            tally = http.get(f"/v1/proposals/{pid}").json()["tally"]
            assert (tally["for"], tally["against"], tally["abstain"]) == (str(live[1]), str(live[0]), str(live[2]))

            # the clients retry everything: stored votes answer 200 (never a second ballot), the rest 201
            for r in range(ROUNDS):
                for i in range(N_VOTERS):
                    again = http.post("/v1/votes", json=signed[i, r])
                    assert again.status_code == (200 if (i, r) in by_key else 201), (i, r, again.text)
                    if (i, r) in acked:
                        assert again.json()["id"] == acked[i, r]["id"]

            clock.advance(SETTINGS["voting_period"])
            done = scheduler_once(database_url, tmp_path / "clock")
            assert done.returncode == 0, done.stderr[-3000:]
            p = http.get(f"/v1/proposals/{pid}").json()
            export = http.get(f"/v1/proposals/{pid}/export")
            assert export.status_code == 200, export.text
        doc = export.json()
    finally:
        server.stop()

    # recount from the exported ballot log: each voter's newest signed vote counts
    assert len(doc["ballots"]) == len(signed)
    newest: dict[str, tuple[int, int, int]] = {}
    for b in doc["ballots"]:
        msg = b["envelope"]["message"]
        if msg["voter"] not in newest or msg["timestamp"] > newest[msg["voter"]][0]:
            newest[msg["voter"]] = (msg["timestamp"], msg["choice"], int(b["weight"]))
    recount = Counter()
    for _, ch, weight in newest.values():
        recount[ch] += weight
    expected = Counter()
    for i, w in enumerate(voters):
        expected[choice[i, ROUNDS - 1]] += weights[w.address]
    assert recount == expected
    result = doc["result"]
    assert result is not None and p["result"]["outcome"] == result["outcome"]
    assert (result["for"], result["against"], result["abstain"], result["voters"]) == (
        str(expected[1]), str(expected[0]), str(expected[2]), N_VOTERS)
    (tmp_path / "export.json").write_text(json.dumps(doc))
    verified = dao("verify", str(tmp_path / "export.json"), env=dao_env(database_url, tmp_path / "clock"))
    assert verified.returncode == 0 and verified.stdout.startswith("OK"), verified.stdout + verified.stderr


# --- 2. the scheduler killed at each step of finalizing and executing --------------------------

NEW_ALLOCATION = [{"bucket": "compute", "bps": 4000}, {"bucket": "development", "bps": 2500},
                  {"bucket": "treasury", "bps": 1500}, {"bucket": "buybacks", "bps": 1500},
                  {"bucket": "community", "bps": 500}]


def _state(rt: Runtime) -> dict[str, object]:
    with Session(rt.engine) as s:
        return {
            "results": Counter(r.proposal_id for r in s.exec(select(TallyResult))),
            "queued": Counter(e.proposal_id for e in s.exec(select(ProposalEvent)
                                                            .where(ProposalEvent.event == "queued"))),
            "executed": Counter(e.proposal_id for e in s.exec(select(ProposalEvent)
                                                              .where(ProposalEvent.event == "executed"))),
            "states": {p.id: p.state for p in s.exec(select(Proposal))},
            "versions": Counter(v.proposal_id for v in s.exec(select(ParameterVersion)
                                                              .where(ParameterVersion.origin == "proposal"))),
            "spends": Counter(e.reference for e in s.exec(select(JournalEntry).where(JournalEntry.kind == "spend"))),
            "executions": {x.proposal_id: x.status for x in s.exec(select(Execution))},
        }


def test_scheduler_killed_at_every_step_finalizes_and_executes_once(database_url: str, tmp_path: Path) -> None:
    rt, clock = deployment(database_url, tmp_path)
    clock_file = tmp_path / "clock"
    with TestClient(app=create_app(runtime=rt)) as client:
        gov = Gov(client, rt, make_key(rt, "operator"))
        whale = Wallet.evm()
        gov.buy(whale, 1000)  # community bucket: 5,000,000 micro-USD
        price = gov.proposal(whale, "PriceChange", price=130_000)
        allocation = gov.proposal(whale, "AllocationChange", shares=NEW_ALLOCATION)
        spend = gov.proposal(whale, "TreasurySpend", bucket="community", amount=400_000)
        ids = [price, allocation, spend]
        for pid in ids:
            assert gov.vote(whale, pid, 1).status_code == 201
        before = client.get("/v1/treasury").json()
    clock.advance(SETTINGS["voting_period"])

    def crash(failpoint: str) -> dict[str, object]:
        run = scheduler_once(database_url, clock_file, failpoint)
        assert run.returncode == -signal.SIGKILL, f"{failpoint}: rc {run.returncode}: {run.stderr[-3000:]}"
        return _state(rt)

    def clean() -> dict[str, object]:
        run = scheduler_once(database_url, clock_file)
        assert run.returncode == 0, run.stderr[-3000:]
        return _state(rt)

    # killed with the first result written but not committed: nothing of it remains
    s = crash("mid_finalize")
    assert not s["results"] and not s["queued"] and set(s["states"].values()) == {"pending"}
    # killed right after the first commit: that one is final, the others untouched
    s = crash("after_finalize_commit")
    assert list(s["results"].values()) == [1] and sum(s["queued"].values()) == 1
    assert Counter(s["states"].values()) == {"queued": 1, "pending": 2}
    s = clean()
    assert s["results"] == s["queued"] == Counter(ids) and set(s["states"].values()) == {"queued"}

    clock.advance(SETTINGS["timelock"])
    # killed with the first effect applied but not committed: no effect, the execution ready again
    s = crash("before_execute_commit")
    assert not s["versions"] and not s["spends"] and not s["executed"]
    assert s["executions"] == dict.fromkeys(ids, "ready") and set(s["states"].values()) == {"queued"}
    # killed right after the first effect committed: exactly that one executed
    s = crash("after_execute_commit")
    assert sum(s["executed"].values()) == 1 and Counter(s["executions"].values()) == {"done": 1, "ready": 2}
    assert sum(s["versions"].values()) + sum(s["spends"].values()) == 1
    clean()
    s = clean()  # and once more: nothing new happens

    assert s["results"] == s["queued"] == s["executed"] == Counter(ids)
    assert set(s["states"].values()) == {"executed"} and set(s["executions"].values()) == {"done"}
    assert s["versions"] == Counter([price, allocation])
    assert s["spends"] == Counter([f"proposal:{spend}"])
    with TestClient(app=create_app(runtime=rt)) as client:
        after = client.get("/v1/treasury").json()
        for pid in ids:  # signatures, weights, totals, outcome and Merkle root, re-checked offline
            report = verify_export(client.get(f"/v1/proposals/{pid}/export").json())
            assert report.ok and report.outcome == "succeeded", report.problems
    assert after["price"] == 130_000
    assert after["allocation"] == {s["bucket"]: s["bps"] for s in NEW_ALLOCATION}
    assert after["buckets"]["community"] == before["buckets"]["community"] - 400_000
    ledger = dao("ledger", "verify", env=dao_env(database_url, clock_file))
    assert ledger.returncode == 0 and "journal ok" in ledger.stdout, ledger.stdout + ledger.stderr
    rt.engine.dispose()


# --- 3. the database goes away under a running API ---------------------------------------------

@contextlib.contextmanager
def sqlite_write_lock(database_url: str) -> Iterator[None]:
    """Another process's long write transaction: SQLite's one write lock, held."""
    conn = sqlite3.connect(make_url(database_url).database, isolation_level=None, timeout=5)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def assert_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "database_unavailable", r.text
    assert r.headers.get("retry-after"), r.headers


def test_database_outage_is_a_503_that_stores_nothing(database_url: str, tmp_path: Path) -> None:
    rt, _ = deployment(database_url, tmp_path)
    with TestClient(app=create_app(runtime=rt)) as client:
        gov = Gov(client, rt, make_key(rt, "operator"))
        holder, late = Wallet.evm(), Wallet.solana()
        gov.buy(holder, 100)
        gov.buy(late, 50)
        pid = gov.proposal(holder, "PriceChange", price=120_000)
        assert gov.vote(holder, pid, 1).status_code == 201
    operator = {"Authorization": f"Bearer {gov.operator_key}"}
    vote = late.sign(rt.domain, "Vote", vote_message(late.address, pid, 0, START))
    proposal = holder.sign(rt.domain, "AllocationChange",
                           proposal_message("AllocationChange", holder.address, START, shares=NEW_ALLOCATION))
    purchase = {"buyer": late.address, "payment": 7 * PRICE, "reference": "outage-1"}
    sqlite, url = is_sqlite(database_url), make_url(database_url)
    # PostgreSQL is reached through a relay the test can cut; SQLite's file is locked instead
    proxy = None if sqlite else TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    served_url = database_url if proxy is None else url.set(port=proxy.port).render_as_string(hide_password=False)
    before = counts(rt)
    server = None
    try:
        server = Server(dao_env(served_url, tmp_path / "clock", DAO_DATABASE_TIMEOUT="1"), tmp_path / "serve.log")
        with httpx.Client(base_url=server.base, timeout=30) as http:
            outage = sqlite_write_lock(database_url) if proxy is None else _cut(proxy)
            with outage:
                assert_unavailable(http.post("/v1/votes", json=vote))
                assert_unavailable(http.post("/v1/treasury/purchases", json=purchase, headers=operator))
                assert_unavailable(http.post("/v1/proposals", json=proposal))
                if sqlite:  # under WAL, readers never wait for the writer holding the lock
                    assert http.get(f"/v1/proposals/{pid}").status_code == 200
                    assert http.get("/health").status_code == 200
                else:
                    assert_unavailable(http.get(f"/v1/proposals/{pid}"))
                    assert_unavailable(http.get("/health"))
                    assert_unavailable(http.get("/v1/treasury"))
                assert counts(rt) == before  # nothing partial, even while it lasts
            # back, without a restart: the same requests now succeed, once
            assert http.get("/health").status_code == 200
            assert counts(rt) == before
            assert http.post("/v1/votes", json=vote).status_code == 201
            assert http.post("/v1/treasury/purchases", json=purchase, headers=operator).status_code == 201
            assert http.post("/v1/proposals", json=proposal).status_code == 201
            assert http.post("/v1/votes", json=vote).status_code == 200
        after = counts(rt)
        assert server.proc.poll() is None
    finally:
        if server is not None:
            server.stop()
        if proxy is not None:
            proxy.cut()
        rt.engine.dispose()
    assert {k: after[k] for k in ("Ballot", "Purchase", "Proposal")} == {
        "Ballot": before["Ballot"] + 1, "Purchase": before["Purchase"] + 1, "Proposal": before["Proposal"] + 1}


@contextlib.contextmanager
def _cut(proxy: TcpProxy) -> Iterator[None]:
    proxy.cut()
    try:
        yield
    finally:
        proxy.restore()
