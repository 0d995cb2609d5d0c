"""Proposals and votes weighted by an ERC-20 on a real anvil node, over HTTP."""

from __future__ import annotations

import pytest

from tests.support import Gov, Wallet

TOKEN = 10**18


@pytest.fixture
def token(anvil, deploy):
    return deploy("PlainToken", "Session", "SES")


@pytest.fixture
def settings_overrides(anvil, token) -> dict:
    return {"power_source": "erc20", "rpc_url": anvil.rpc_url, "erc20_token": token.address, "confirmations": 1,
            "voting_delay": 0, "voting_period": 600, "proposal_threshold": TOKEN}


def test_weight_at_the_snapshot_block(client, runtime, anvil, token) -> None:
    gov = Gov(client, runtime, "")
    proposer, voter, late = Wallet.evm(), Wallet.evm(), Wallet.evm()
    for w, amount in ((proposer, 50), (voter, 20)):
        token.functions.mint(w.address, amount * TOKEN).transact({"from": anvil.accounts[0]})
    anvil.mine(2)
    pid = gov.proposal(proposer, "PriceChange", price=110_000)
    p = gov.get(pid)
    assert p["snapshot"]["source"] == "erc20"
    assert p["snapshot"]["ref"] == anvil.w3.eth.block_number - 1
    assert p["snapshot"]["total"] == str(70 * TOKEN)

    token.functions.mint(late.address, 500 * TOKEN).transact({"from": anvil.accounts[0]})
    token.functions.mint(voter.address, 500 * TOKEN).transact({"from": anvil.accounts[0]})
    anvil.mine(2)
    r = gov.vote(voter, pid, 1)
    assert r.status_code == 201 and r.json()["weight"] == str(20 * TOKEN)
    r = gov.vote(late, pid, 1)
    assert r.status_code == 403 and r.json()["error"] == "no_voting_power"
    power = client.get(f"/v1/power/{late.address}", params={"proposal": pid}).json()
    assert power["weight"] == "0"
    now = client.get(f"/v1/power/{late.address}").json()
    assert now["weight"] == str(500 * TOKEN)


def test_rpc_failure_is_503_and_stores_nothing(runtime, anvil, token) -> None:
    import socket

    from litestar.testing import TestClient

    from governance.app import create_app
    from governance.bootstrap import bootstrap

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    # the same deployment, served by a process whose RPC endpoint is down
    down = bootstrap(runtime.settings.with_overrides(rpc_url=dead), clock=runtime.clock)
    with TestClient(app=create_app(runtime=down)) as client:
        gov = Gov(client, down, "")
        r = gov.propose(Wallet.evm(), "PriceChange", price=110_000)
        assert r.status_code == 503 and r.json()["error"] == "rpc_unavailable"
        assert client.get("/v1/proposals").json()["items"] == []


def test_proposals_and_votes_ask_the_node_holding_no_database_lock(runtime, anvil, token, lagging_rpc) -> None:
    # SQLite's write lock is the whole database's: a token read inside it would stall every writer
    from litestar.testing import TestClient

    from governance.app import create_app
    from governance.bootstrap import bootstrap
    from tests.chain.rpcproxy import LockProbe

    proposer, voters = Wallet.evm(), [Wallet.evm() for _ in range(3)]
    for w, amount in ((proposer, 50), *((v, 5) for v in voters)):
        token.functions.mint(w.address, amount * TOKEN).transact({"from": anvil.accounts[0]})
    anvil.mine(2)
    proxied = bootstrap(runtime.settings.with_overrides(rpc_url=lagging_rpc.url), clock=runtime.clock)
    lagging_rpc.on_call = probe = LockProbe(runtime.settings.database_url)
    with TestClient(app=create_app(runtime=proxied)) as client:
        gov = Gov(client, proxied, "")
        pid = gov.proposal(proposer, "PriceChange", price=110_000)
        for v in voters:
            r = gov.vote(v, pid, 1)
            assert r.status_code == 201 and r.json()["weight"] == str(5 * TOKEN), r.text
    proxied.close()
    assert "eth_call" in probe.calls, probe.calls
    assert probe.held == [], f"asked the node under a database lock: {probe.held}"
