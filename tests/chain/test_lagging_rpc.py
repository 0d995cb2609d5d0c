"""On-chain spends behind an RPC that does not answer as one consistent node (a load balancer
with a backend a few blocks behind, a node that keeps recent state only), against a real anvil
node: a signed transfer is released only when the transaction that used its nonce is found in
a confirmed block and is not ours; a missing receipt, or a node that cannot tell, keeps it in
flight. So a spend is paid exactly once."""

from __future__ import annotations

from sqlmodel import select

from governance.db import session_scope
from tests.chain.rpcproxy import LockProbe
from tests.support import Wallet
from tests.support.chain import USDC, ChainTreasury
from treasury_exec.models import ChainNonce, Execution


def _in_flight(t: ChainTreasury) -> list[int]:
    with session_scope(t.rt.engine, write=False) as s:
        return list(s.exec(select(Execution.id).where(Execution.status.in_(("signed", "ready")))))


def test_spends_behind_a_lagging_backend_are_paid_exactly_once(anvil, deploy, database_url, tmp_path,
                                                               lagging_rpc) -> None:
    # every other receipt comes from a backend 4 blocks behind: null for a transfer just mined
    lagging_rpc.lag = 4
    with ChainTreasury(anvil, deploy, database_url, tmp_path, bucket=1000 * USDC, on_chain=2000 * USDC,
                       rpc_url=lagging_rpc.url, confirmations=2) as t:
        recipients = [Wallet.evm().address for _ in range(3)]
        ids = t.queue_spends(recipients, [100 * USDC] * 3)
        t.clock.advance(300)
        for _ in range(20):  # ticks as time passes and blocks come, each past the retry back-off
            t.gov.tick()
            if not _in_flight(t):
                break
            anvil.mine()
            t.clock.advance(61)
        assert lagging_rpc.lagged > 0  # the lagging backend did answer null for mined transfers
        for pid, recipient in zip(ids, recipients, strict=True):
            p = t.gov.get(pid)
            assert p["state"] == "executed" and p["execution"]["status"] == "done", p["execution"]
            assert [a["ok"] for a in p["execution"]["attempts"]] == [True]  # never released, never re-signed
            assert t.sent_to(recipient) == 100 * USDC
        assert t.sent_transactions() == 3
        assert t.usdc()["community"] == str(700 * USDC)
        t.assert_books_hold()


def test_own_mined_transfer_without_a_receipt_stays_in_flight(anvil, deploy, database_url, tmp_path,
                                                              lagging_rpc) -> None:
    with ChainTreasury(anvil, deploy, database_url, tmp_path, bucket=1000 * USDC, on_chain=2000 * USDC,
                       rpc_url=lagging_rpc.url, confirmations=2) as t:
        recipient = Wallet.evm()
        (pid,) = t.queue_spends(recipient.address, [100 * USDC])
        t.clock.advance(300)
        lagging_rpc.lag, lagging_rpc.every = 10**6, 1  # no receipt at all, however deep it is mined
        t.gov.tick()  # signed and broadcast: mined at once
        anvil.mine(5)
        for _ in range(3):
            t.clock.advance(61)
            t.gov.tick()
        ex = t.client.get(f"/v1/executions/{t.gov.get(pid)['execution']['id']}").json()
        assert ex["status"] == "signed" and ex["reserved"] == str(100 * USDC), ex
        assert ex["attempts"] == [] and "mined in block" in ex["last_error"]
        assert t.sent_to(recipient.address) == 100 * USDC and t.sent_transactions() == 1

        lagging_rpc.lag = 0  # the receipt comes: journaled, once
        t.gov.tick()
        p = t.gov.get(pid)
        assert p["state"] == "executed" and p["execution"]["status"] == "done", p["execution"]
        assert [a["ok"] for a in p["execution"]["attempts"]] == [True]
        assert t.sent_to(recipient.address) == 100 * USDC and t.sent_transactions() == 1
        assert t.usdc()["community"] == str(900 * USDC)
        t.assert_books_hold()


def test_nonce_taken_out_of_the_nodes_state_is_not_released_until_found(anvil, deploy, database_url, tmp_path,
                                                                        lagging_rpc) -> None:
    t = ChainTreasury(anvil, deploy, database_url, tmp_path, bucket=1000 * USDC, on_chain=2000 * USDC,
                      rpc_url=lagging_rpc.url)
    w3 = anvil.w3
    try:
        recipient = Wallet.evm()
        (pid,) = t.queue_spends(recipient.address, [100 * USDC])
        t.clock.advance(300)
        ex_id, signed = t.sign_first_due()
        # another transaction of the treasury account takes the nonce, then many blocks pass: the
        # node keeps the state of the last 16 blocks only
        other = t.treasury.sign_transaction({
            "to": t.treasury.address, "value": 0, "gas": 21_000, "nonce": signed.nonce, "chainId": 31337,
            "maxFeePerGas": 2 * w3.eth.get_block("latest")["baseFeePerGas"] + 10**9, "maxPriorityFeePerGas": 10**9})
        w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(other.raw_transaction))
        other_hash = "0x" + other.hash.hex().removeprefix("0x")
        anvil.mine(100)
        lagging_rpc.keep_state = 16

        t.gov.tick()
        t.gov.tick()
        ex = t.client.get(f"/v1/executions/{ex_id}").json()
        assert lagging_rpc.pruned > 0
        assert ex["status"] == "signed" and ex["reserved"] == str(100 * USDC), ex  # no evidence: nothing released
        assert ex["attempts"] == [] and "cannot tell" in ex["last_error"]
        assert t.usdc()["community"] == str(900 * USDC)

        lagging_rpc.keep_state = None  # an archive node: the transaction that took the nonce is found
        t.gov.tick()
        ex = t.client.get(f"/v1/executions/{ex_id}").json()
        assert ex["status"] == "ready" and ex["reserved"] is None, ex
        assert [a["ok"] for a in ex["attempts"]] == [False] and other_hash in ex["attempts"][0]["reason"]
        t.clock.advance(61)
        t.gov.tick()
        t.settle()
        p = t.gov.get(pid)
        assert p["state"] == "executed" and p["execution"]["status"] == "done"
        assert t.sent_to(recipient.address) == 100 * USDC
        t.assert_books_hold()
    finally:
        t.close()


def test_spends_are_signed_and_settled_asking_the_node_holding_no_database_lock(anvil, deploy, database_url,
                                                                               tmp_path, lagging_rpc) -> None:
    # SQLite's write lock is the whole database's: a node answering slowly inside it would stall
    # every vote and purchase; on PostgreSQL the rows held would stall the proposal's other steps
    with ChainTreasury(anvil, deploy, database_url, tmp_path, bucket=1000 * USDC, on_chain=2000 * USDC,
                       rpc_url=lagging_rpc.url, confirmations=2) as t:
        recipient = Wallet.evm()
        (pid,) = t.queue_spends(recipient.address, [100 * USDC])
        t.clock.advance(300)
        lagging_rpc.on_call = probe = LockProbe(database_url)
        lagging_rpc.lag, lagging_rpc.every = 10**6, 1  # first no receipt: the nonce is looked up, a note written
        t.gov.tick()
        anvil.mine(3)
        t.gov.tick()
        lagging_rpc.lag = 0
        t.gov.tick()
        assert t.gov.get(pid)["state"] == "executed"
        asked = set(probe.calls)
        assert {"eth_estimateGas", "eth_sendRawTransaction", "eth_getTransactionReceipt",
                "eth_getTransactionCount", "eth_getBlockByNumber"} <= asked, asked
        assert probe.held == [], f"asked the node under a database lock: {probe.held}"


def test_a_node_overstating_the_pending_nonce_leaves_no_gap(anvil, deploy, database_url, tmp_path,
                                                            lagging_rpc) -> None:
    lagging_rpc.pending_bonus = 5  # a transfer signed at the nonce it says would wait forever
    with ChainTreasury(anvil, deploy, database_url, tmp_path, bucket=1000 * USDC, on_chain=2000 * USDC,
                       rpc_url=lagging_rpc.url) as t:
        recipients = [Wallet.evm().address for _ in range(2)]
        ids = t.queue_spends(recipients, [100 * USDC] * 2)
        t.clock.advance(300)
        t.gov.tick()
        t.settle()
        for pid, recipient in zip(ids, recipients, strict=True):
            assert t.gov.get(pid)["state"] == "executed"
            assert t.sent_to(recipient) == 100 * USDC
        assert t.sent_transactions() == 2


def test_a_transfer_above_a_nonce_gap_says_so_and_lands_once_the_gap_is_filled(anvil, deploy, database_url,
                                                                                tmp_path) -> None:
    with ChainTreasury(anvil, deploy, database_url, tmp_path, bucket=1000 * USDC, on_chain=2000 * USDC) as t:
        recipient = Wallet.evm().address
        (pid,) = t.queue_spends(recipient, [100 * USDC])
        t.clock.advance(300)
        with session_scope(t.rt.engine) as s:  # as if nonces 0 and 1 had been signed elsewhere
            s.add(ChainNonce(address=t.treasury.address, next_nonce=2))
        t.gov.tick()
        t.gov.tick()
        ex = t.client.get(f"/v1/executions/{t.gov.get(pid)['execution']['id']}").json()
        assert ex["status"] == "signed" and ex["last_error"].startswith("nonce gap"), ex
        assert "nonce(s) 0, 1" in ex["last_error"]
        w3 = t.anvil.w3
        for nonce in (0, 1):  # the operator fills the gap
            fill = t.treasury.sign_transaction({"to": t.treasury.address, "value": 0, "gas": 21_000, "nonce": nonce,
                                                "chainId": 31337, "maxFeePerGas": 20 * 10**9,
                                                "maxPriorityFeePerGas": 10**9})
            w3.eth.send_raw_transaction(fill.raw_transaction)
        t.anvil.mine(2)
        t.settle()
        assert t.gov.get(pid)["state"] == "executed"
        ex = t.client.get(f"/v1/executions/{ex['id']}").json()
        assert ex["status"] == "done" and ex["last_error"] is None, ex  # the note went with the wait
        assert t.sent_to(recipient) == 100 * USDC
