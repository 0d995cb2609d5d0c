"""On-chain spends against a real anvil node, many at once: a signed transfer reserves its
amount, so no bucket ever pays out more than it holds, and every execution ends visibly."""

from __future__ import annotations

import json

from eth_account import Account

from governance.db import session_scope
from proposals.lifecycle import State
from proposals.transitions import lock, transition
from tests.support import Wallet
from tests.support.chain import USDC, ChainTreasury


def test_eleven_spends_due_together_never_overdraw_the_bucket(anvil, deploy, database_url, tmp_path) -> None:
    with ChainTreasury(anvil, deploy, database_url, tmp_path, bucket=1000 * USDC, on_chain=2000 * USDC) as t:
        recipient = Wallet.evm()
        ids = t.queue_spends(recipient.address, [100 * USDC] * 11)
        t.clock.advance(300)  # every eta has come: one scheduler tick signs them all
        t.gov.tick()
        t.settle()

        assert t.sent_to(recipient.address) == 1000 * USDC  # never more than the bucket held
        assert t.sent_transactions() == 10
        states = [t.gov.get(pid) for pid in ids]
        done = [p for p in states if p["execution"]["status"] == "done"]
        waiting = [p for p in states if p["execution"]["status"] != "done"]
        assert len(done) == 10 and all(p["state"] == "executed" for p in done), [p["execution"] for p in waiting]
        assert len(waiting) == 1
        last = waiting[0]
        assert last["state"] == "queued" and last["execution"]["status"] == "ready"  # not signed: nothing in flight
        assert [a["ok"] for a in last["execution"]["attempts"]] == [False]
        assert "insufficient_funds" in last["execution"]["attempts"][0]["reason"]
        assert t.usdc()["community"] == "0"
        t.assert_books_hold()

        t.clock.advance(60)  # retried after the back-off, and refused again
        t.gov.tick()
        assert [a["ok"] for a in t.gov.get(last["id"])["execution"]["attempts"]] == [False, False]
        t.clock.advance(3600)  # past eta + grace: it ends, visibly
        t.gov.tick()
        last = t.gov.get(last["id"])
        assert last["state"] == "expired" and last["execution"]["status"] == "expired"
        assert t.sent_to(recipient.address) == 1000 * USDC and t.sent_transactions() == 10
        t.assert_books_hold()


def test_signed_transfer_is_reserved_against_every_balance_check(anvil, deploy, database_url, tmp_path) -> None:
    with ChainTreasury(anvil, deploy, database_url, tmp_path, bucket=1000 * USDC, on_chain=2000 * USDC) as t:
        recipient = Wallet.evm()
        (pid,) = t.queue_spends(recipient.address, [100 * USDC])
        t.clock.advance(300)
        ex_id, _ = t.sign_first_due()
        assert t.gov.get(pid)["execution"]["status"] == "signed"
        state = t.client.get("/v1/treasury").json()
        assert state["assets"]["USDC"]["community"] == str(900 * USDC)  # what is left to spend
        assert state["reserved"]["USDC"]["community"] == str(100 * USDC)
        ex = t.client.get(f"/v1/executions/{ex_id}").json()
        assert ex["reserved"] == str(100 * USDC)
        # the spend cap of a new proposal is taken on what is left: 10% of 900
        over = t.gov.propose(t.holder, "TreasurySpend", bucket="community", asset="USDC",
                             recipient=recipient.address, amount=91 * USDC, title="too much")
        assert over.status_code == 422 and over.json()["error"] == "spend_over_cap"
        t.assert_books_hold()

        t.settle()  # broadcast, mined, settled from the reservation
        p = t.gov.get(pid)
        assert p["state"] == "executed" and p["execution"]["status"] == "done"
        state = t.client.get("/v1/treasury").json()
        assert state["assets"]["USDC"]["community"] == str(900 * USDC)
        assert state["reserved"].get("USDC", {}).get("community", "0") == "0"
        assert t.client.get(f"/v1/executions/{ex_id}").json()["reserved"] is None
        assert t.sent_to(recipient.address) == 100 * USDC
        t.assert_books_hold()


def test_transfer_whose_nonce_was_taken_is_released_and_retried(anvil, deploy, database_url, tmp_path) -> None:
    with ChainTreasury(anvil, deploy, database_url, tmp_path, bucket=1000 * USDC, on_chain=2000 * USDC) as t:
        recipient = Wallet.evm()
        (pid,) = t.queue_spends(recipient.address, [100 * USDC])
        t.clock.advance(300)
        ex_id, signed = t.sign_first_due()
        # before it is broadcast, another transaction from the treasury account takes its nonce
        w3 = anvil.w3
        other = t.treasury.sign_transaction({
            "to": t.treasury.address, "value": 0, "gas": 21_000, "nonce": signed.nonce, "chainId": 31337,
            "maxFeePerGas": 2 * w3.eth.get_block("latest")["baseFeePerGas"] + 10**9, "maxPriorityFeePerGas": 10**9})
        w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(other.raw_transaction))
        assert t.usdc()["community"] == str(900 * USDC)

        t.gov.tick()  # ours can never land: its reservation comes back and the attempt failed
        ex = t.client.get(f"/v1/executions/{ex_id}").json()
        assert ex["status"] == "ready" and ex["reserved"] is None and ex["tx_hash"] is None
        assert [a["ok"] for a in ex["attempts"]] == [False]
        assert ex["attempts"][0]["tx_hash"] == signed.tx_hash
        # the evidence: the transaction that used the nonce, named
        other_hash = "0x" + other.hash.hex().removeprefix("0x")
        assert f"nonce {signed.nonce} was used by transaction {other_hash}" in ex["attempts"][0]["reason"]
        assert t.usdc()["community"] == str(1000 * USDC)
        assert t.gov.get(pid)["state"] == "queued"
        t.assert_books_hold()

        t.clock.advance(60)  # the retry signs a new transfer with the next nonce
        t.gov.tick()
        t.settle()
        p = t.gov.get(pid)
        assert p["state"] == "executed" and p["execution"]["status"] == "done"
        assert p["execution"]["tx_hash"] != signed.tx_hash
        assert t.sent_to(recipient.address) == 100 * USDC
        assert t.usdc()["community"] == str(900 * USDC)
        t.assert_books_hold()


def test_transfer_that_landed_but_cannot_be_journaled_ends_failed(anvil, deploy, database_url, tmp_path) -> None:
    with ChainTreasury(anvil, deploy, database_url, tmp_path, bucket=1000 * USDC, on_chain=2000 * USDC) as t:
        recipient = Wallet.evm()
        (pid,) = t.queue_spends(recipient.address, [100 * USDC])
        t.clock.advance(300)
        ex_id, signed = t.sign_first_due()
        # a fault: the proposal left `queued` under a signed transfer (what a cancel past the
        # cancel guard could do), so the landed transfer cannot mark it executed
        with session_scope(t.rt.engine) as s:
            transition(s, lock(s, pid), State.CANCELED, at=t.clock.now(), actor="test: a cancel without its guard")
        t.settle()
        t.clock.advance(3600)  # past the deadline, and ticks again: nothing loops, nothing changes
        t.gov.tick()
        ex = t.client.get(f"/v1/executions/{ex_id}").json()
        assert ex["status"] == "failed", ex
        assert "could not be journaled" in ex["last_error"] and signed.tx_hash in ex["last_error"]
        assert [(a["ok"], a["tx_hash"]) for a in ex["attempts"]] == [(False, signed.tx_hash)]
        assert t.sent_to(recipient.address) == 100 * USDC
        assert ex["reserved"] == str(100 * USDC)  # the money left: it stays out of the bucket
        assert t.usdc()["community"] == str(900 * USDC)
        t.assert_books_hold()


def test_transfer_never_mined_ends_when_its_nonce_is_taken(anvil, deploy, database_url, tmp_path) -> None:
    t = ChainTreasury(anvil, deploy, database_url, tmp_path, bucket=1000 * USDC, on_chain=2000 * USDC)
    w3 = anvil.w3
    try:
        recipient = Wallet.evm()
        (pid,) = t.queue_spends(recipient.address, [100 * USDC])
        t.clock.advance(300)
        ex_id, signed = t.sign_first_due()
        w3.provider.make_request("evm_setAutomine", [False])  # nothing gets mined: ours waits in the pool
        t.clock.advance(3600)  # past eta + grace
        t.gov.tick()
        t.gov.tick()
        ex = t.client.get(f"/v1/executions/{ex_id}").json()
        assert ex["status"] == "signed" and t.gov.get(pid)["state"] == "queued"  # it may still land
        assert f"nonce {signed.nonce}" in ex["last_error"] and ex["reserved"] == str(100 * USDC)
        # what the README tells the operator: take the nonce with a transaction that pays more
        fee = 4 * w3.eth.get_block("latest")["baseFeePerGas"] + 10 * 10**9
        cancel = t.treasury.sign_transaction({
            "to": t.treasury.address, "value": 0, "gas": 21_000, "nonce": signed.nonce, "chainId": 31337,
            "maxFeePerGas": fee, "maxPriorityFeePerGas": 10 * 10**9})
        w3.eth.send_raw_transaction(cancel.raw_transaction)
        anvil.mine()
        w3.provider.make_request("evm_setAutomine", [True])
        assert w3.eth.get_transaction_receipt(cancel.hash)["status"] == 1
        t.gov.tick()  # ours can never land now: released, a failed attempt
        t.gov.tick()  # and past the deadline it expires
        ex = t.client.get(f"/v1/executions/{ex_id}").json()
        assert ex["status"] == "expired" and ex["reserved"] is None, ex
        assert [a["ok"] for a in ex["attempts"]] == [False] and "nonce" in ex["attempts"][0]["reason"]
        assert t.gov.get(pid)["state"] == "expired"
        assert t.sent_to(recipient.address) == 0
        assert t.usdc()["community"] == str(1000 * USDC)
        t.assert_books_hold()
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
        t.close()


def test_transfer_the_chain_refuses_is_a_visible_failed_attempt(anvil, deploy, database_url, tmp_path) -> None:
    # the journal credits the bucket with more than the treasury account holds on chain
    with ChainTreasury(anvil, deploy, database_url, tmp_path, bucket=1000 * USDC, on_chain=50 * USDC) as t:
        recipient = Wallet.evm()
        (pid,) = t.queue_spends(recipient.address, [100 * USDC])
        t.clock.advance(300)
        t.gov.tick()
        ex = t.gov.client.get("/v1/executions").json()["items"][0]
        assert ex["status"] == "ready" and ex["reserved"] is None and ex["next_attempt_at"] == t.clock.now() + 60
        assert [a["ok"] for a in ex["attempts"]] == [False]
        assert "would revert" in ex["attempts"][0]["reason"] and ex["last_error"] == ex["attempts"][0]["reason"]
        assert t.usdc()["community"] == str(1000 * USDC) and t.sent_transactions() == 0
        t.clock.advance(3600)
        t.gov.tick()
        assert t.gov.get(pid)["state"] == "expired"
        assert t.client.get(f"/v1/executions/{ex['id']}").json()["status"] == "expired"
        t.assert_books_hold()


def test_a_transfer_that_succeeds_but_moves_no_token_is_not_a_payment(anvil, deploy, database_url,
                                                                      tmp_path) -> None:
    """A token address with no code on the RPC's chain (copied from another network): the call
    succeeds and moves nothing. It must not be journaled as paid (found by the outside attack:
    the spend ended `done`, the recipient got nothing, `dao ledger verify` said ok); it ends
    `failed`, its reservation back in the bucket, never retried."""
    nowhere = Account.create().address  # no contract there
    with ChainTreasury(anvil, deploy, database_url, tmp_path, bucket=1000 * USDC, on_chain=2000 * USDC,
                       chain_assets=json.dumps({"USDC": {"token": nowhere, "decimals": 18, "mode": "chain"}})) as t:
        recipient = Wallet.evm()
        (pid,) = t.queue_spends(recipient.address, [100 * USDC])
        t.clock.advance(300)
        t.gov.tick()
        t.settle()
        sent = t.sent_transactions()
        assert sent == 1  # the call was made, and succeeded on chain
        ex = t.gov.get(pid)["execution"]
        full = t.client.get(f"/v1/executions/{ex['id']}").json()
        assert full["status"] == "failed" and "paid no USDC" in full["last_error"], full
        assert full["reserved"] is None and t.usdc()["community"] == str(1000 * USDC)
        assert t.gov.get(pid)["state"] == "queued"
        for _ in range(3):  # never retried: the same call would move nothing again, for gas
            t.clock.advance(120)
            t.gov.tick()
        assert t.sent_transactions() == sent
        t.clock.advance(3600)  # the proposal expires at its deadline, holding nothing
        t.gov.tick()
        assert t.gov.get(pid)["state"] == "expired"
        t.assert_books_hold()
