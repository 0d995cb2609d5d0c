"""On-chain spends against a real anvil node: the transfer is signed and stored before it is
broadcast, and a scheduler killed (SIGKILL) at any step neither sends twice nor loses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from eth_account import Account
from litestar.testing import TestClient

from governance.app import create_app
from governance.bootstrap import bootstrap
from governance.clock import FileClock
from governance.settings import load_settings
from governance.setup import create_deployment
from tests.support import START, Gov, Wallet, make_key
from tests.support.chain import USDC, settings_for


def run_scheduler_once(settings: dict, failpoint: str | None) -> subprocess.CompletedProcess:
    env = {**os.environ, **{f"DAO_{k.upper()}": str(v) for k, v in settings.items()}}
    env.pop("DAO_FAILPOINT", None)
    if failpoint:
        env["DAO_FAILPOINT"] = failpoint
    return subprocess.run([sys.executable, "-m", "governance.cli", "scheduler", "--once"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("crash", [None, "before_sign_commit", "after_sign_commit", "after_broadcast"])
def test_chain_spend_survives_a_kill_at_every_step(anvil, deploy, database_url, tmp_path, crash) -> None:
    token = deploy("PlainToken", "USD Coin", "USDC")
    treasury = Account.create()
    anvil.w3.eth.send_transaction({"from": anvil.accounts[0], "to": treasury.address, "value": 10**18})
    token.functions.mint(treasury.address, 1000 * USDC).transact({"from": anvil.accounts[0]})
    clock = FileClock(tmp_path / "clock")
    clock.set(START)
    settings = settings_for(anvil, token.address, treasury.key.hex(), tmp_path / "clock", database_url)
    rt = bootstrap(load_settings(env={}, **settings), clock=clock)
    create_deployment(rt)
    recipient = Wallet.evm()
    with TestClient(app=create_app(runtime=rt)) as client:
        gov = Gov(client, rt, make_key(rt, "operator"))
        holder = Wallet.evm()
        gov.buy(holder, 100)
        dep = client.post("/v1/treasury/deposits", headers={"Authorization": f"Bearer {gov.operator_key}"},
                          json={"bucket": "community", "asset": "USDC", "amount": str(1000 * USDC), "reference": "d1"})
        assert dep.status_code == 201, dep.text
        pid = gov.proposal(holder, "TreasurySpend", bucket="community", asset="USDC", recipient=recipient.address,
                           amount=50 * USDC)
        assert gov.vote(holder, pid, 1).status_code == 201
        clock.advance(600)
        gov.tick()
        clock.advance(300)

        if crash:
            killed = run_scheduler_once(settings, crash)
            assert killed.returncode == -9, killed.stderr[-2000:]
            ex = client.get("/v1/executions").json()["items"][0]
            if crash == "before_sign_commit":
                assert ex["status"] == "ready" and ex["tx_hash"] is None  # nothing stored, nothing sent
                assert token.functions.balanceOf(recipient.address).call() == 0
            else:
                assert ex["status"] == "signed" and ex["tx_hash"]  # stored before it was broadcast
                sent = token.functions.balanceOf(recipient.address).call()
                assert sent == (50 * USDC if crash == "after_broadcast" else 0)
        restarted = run_scheduler_once(settings, None)
        assert restarted.returncode == 0, restarted.stderr[-2000:]
        run_scheduler_once(settings, None)  # and once more: nothing new happens

        p = gov.get(pid)
        assert p["state"] == "executed", p["execution"]
        assert p["execution"]["status"] == "done" and p["execution"]["tx_hash"]
        assert token.functions.balanceOf(recipient.address).call() == 50 * USDC  # exactly once
        assert anvil.w3.eth.get_transaction_count(treasury.address) == 1  # one transfer ever signed and sent
        receipt = anvil.w3.eth.get_transaction_receipt(p["execution"]["tx_hash"])
        assert receipt["status"] == 1
        state = client.get("/v1/treasury").json()
        assert state["assets"]["USDC"]["community"] == str(950 * USDC)
    rt.engine.dispose()


def test_external_completion_is_checked_on_chain(anvil, deploy, database_url, tmp_path) -> None:
    token = deploy("PlainToken", "USD Coin", "USDC")
    clock = FileClock(tmp_path / "clock")
    clock.set(START)
    payer = anvil.accounts[3]
    settings = settings_for(anvil, token.address, "", tmp_path / "clock", database_url)
    settings["chain_assets"] = json.dumps({"USDC": {"token": token.address, "decimals": 18, "mode": "external",
                                                    "senders": [payer]}})
    rt = bootstrap(load_settings(env={}, **settings), clock=clock)
    create_deployment(rt)
    recipient = Wallet.evm()
    token.functions.mint(payer, 500 * USDC).transact({"from": anvil.accounts[0]})
    with TestClient(app=create_app(runtime=rt)) as client:
        gov = Gov(client, rt, make_key(rt, "operator"))
        executor = {"Authorization": f"Bearer {make_key(rt, 'executor')}"}
        holder = Wallet.evm()
        gov.buy(holder, 100)
        client.post("/v1/treasury/deposits", headers={"Authorization": f"Bearer {gov.operator_key}"},
                    json={"bucket": "community", "asset": "USDC", "amount": str(1000 * USDC), "reference": "d"})
        pid = gov.proposal(holder, "TreasurySpend", bucket="community", asset="USDC", recipient=recipient.address,
                           amount=40 * USDC)
        gov.vote(holder, pid, 1)
        clock.advance(600)
        gov.tick()
        clock.advance(300)
        gov.tick()
        ex = client.get("/v1/executions", params={"status": "ready"}).json()["items"][0]["id"]
        assert client.post(f"/v1/executions/{ex}/claim", headers=executor).status_code == 200

        wrong = token.functions.transfer(recipient.address, 39 * USDC).transact({"from": payer})
        r = client.post(f"/v1/executions/{ex}/complete", headers=executor, json={"tx_hash": "0x" + wrong.hex()})
        assert r.status_code == 422 and r.json()["error"] == "tx_mismatch" and r.json()["retryable"] is False
        missing = "0x" + "ab" * 32  # unknown to the node: maybe not yet, so the executor may report it again
        r = client.post(f"/v1/executions/{ex}/complete", headers=executor, json={"tx_hash": missing})
        assert r.status_code == 422 and r.json()["error"] == "tx_not_found" and r.json()["retryable"] is True
        r = client.post(f"/v1/executions/{ex}/complete", headers=executor, json={"reference": "trust me"})
        assert r.status_code == 422 and r.json()["error"] == "tx_hash_required"

        paid = token.functions.transfer(recipient.address, 40 * USDC).transact({"from": payer})
        r = client.post(f"/v1/executions/{ex}/complete", headers=executor, json={"tx_hash": "0x" + paid.hex()})
        assert r.status_code == 200, r.text
        assert gov.get(pid)["state"] == "executed"
        again = client.post(f"/v1/executions/{ex}/complete", headers=executor, json={"tx_hash": "0x" + paid.hex()})
        assert again.status_code == 200
    rt.engine.dispose()
