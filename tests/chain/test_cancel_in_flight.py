"""A proposal whose transfer is signed and on its way cannot be canceled, by a guardian key or
a guardian's signed Cancel, against a real anvil node: the cancel guard is wired at start and
has no permissive fallback."""

from __future__ import annotations

import json

import pytest
from eth_account import Account

from tests.support import TOKEN, Gov, Wallet, cancel_message
from tests.support.chain import USDC

TREASURY = Account.create()
GUARDIAN = Wallet.evm()


@pytest.fixture
def usdc(anvil, deploy):
    token = deploy("PlainToken", "USD Coin", "USDC")
    anvil.w3.eth.send_transaction({"from": anvil.accounts[0], "to": TREASURY.address, "value": 10**18})
    token.functions.mint(TREASURY.address, 1000 * USDC).transact({"from": anvil.accounts[0]})
    return token


@pytest.fixture
def settings_overrides(anvil, usdc) -> dict:
    # three confirmations: the mined transfer stays in flight (signed) while the test cancels
    return {"voting_delay": 0, "voting_period": 600, "timelock": 300, "grace_period": 3600,
            "proposal_threshold": TOKEN, "rpc_url": anvil.rpc_url, "confirmations": 3,
            "treasury_private_key": TREASURY.key.hex(), "guardians": (GUARDIAN.address,),
            "chain_assets": json.dumps({"USDC": {"token": usdc.address, "decimals": 18, "mode": "chain"}})}


def test_proposal_with_a_transfer_in_flight_cannot_be_canceled(client, runtime, anvil, usdc, operator_key,
                                                               guardian_key) -> None:
    gov = Gov(client, runtime, operator_key)
    holder, recipient = Wallet.evm(), Wallet.evm()
    gov.buy(holder, 100)
    dep = client.post("/v1/treasury/deposits", headers={"Authorization": f"Bearer {operator_key}"},
                      json={"bucket": "community", "asset": "USDC", "amount": str(1000 * USDC), "reference": "d1"})
    assert dep.status_code == 201, dep.text
    pid = gov.proposal(holder, "TreasurySpend", bucket="community", asset="USDC", recipient=recipient.address,
                       amount=50 * USDC)
    assert gov.vote(holder, pid, 1).status_code == 201
    gov.advance(600)
    gov.tick()
    gov.advance(300)
    gov.tick()
    ex = gov.get(pid)["execution"]
    assert ex["status"] == "signed" and ex["tx_hash"], ex
    assert usdc.functions.balanceOf(recipient.address).call() == 50 * USDC  # the money has moved

    r = client.post(f"/v1/proposals/{pid}/cancel", headers={"Authorization": f"Bearer {guardian_key}"})
    assert r.status_code == 409 and r.json()["error"] == "execution_in_flight", r.text
    signed = GUARDIAN.sign(gov.domain, "Cancel", cancel_message(GUARDIAN.address, pid, gov.now))
    r = client.post(f"/v1/proposals/{pid}/cancel", json=signed)
    assert r.status_code == 409 and r.json()["error"] == "execution_in_flight", r.text
    assert gov.get(pid)["state"] == "queued"

    anvil.mine(3)
    gov.tick()
    p = gov.get(pid)
    assert p["state"] == "executed" and p["execution"]["status"] == "done", p["execution"]
