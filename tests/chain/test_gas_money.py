"""A treasury account without the native coin to pay fees with, against a real anvil node: a
spend it cannot pay the fee for is not signed (a node would refuse it, and a signed transfer
can neither expire nor be canceled) but fails its attempt with ``insufficient_gas``, is retried,
and expires at its deadline; the transfers already in flight are counted first."""

from __future__ import annotations

from sqlmodel import select

from governance.db import session_scope
from tests.support import Wallet
from tests.support.chain import USDC, ChainTreasury
from treasury_exec import executions, jobs
from treasury_exec.chain import decode, max_cost
from treasury_exec.models import Execution

ETH = 10**18


def _set_balance(t: ChainTreasury, wei: int) -> None:
    t.anvil.w3.provider.make_request("anvil_setBalance", [t.treasury.address, hex(wei)])


def _execution(t: ChainTreasury, pid: str) -> dict:
    return t.client.get(f"/v1/executions/{t.gov.get(pid)['execution']['id']}").json()


def test_spend_without_gas_money_is_not_signed_and_expires(anvil, deploy, database_url, tmp_path) -> None:
    with ChainTreasury(anvil, deploy, database_url, tmp_path, bucket=1000 * USDC, on_chain=2000 * USDC,
                       gas_money=0) as t:
        recipient = Wallet.evm()
        (pid,) = t.queue_spends(recipient.address, [100 * USDC])
        t.clock.advance(300)
        t.gov.tick()
        ex = _execution(t, pid)
        assert ex["status"] == "ready" and ex["tx_hash"] is None and ex["reserved"] is None, ex
        assert ex["next_attempt_at"] == t.clock.now() + 60
        assert [a["ok"] for a in ex["attempts"]] == [False]
        assert ex["attempts"][0]["reason"].startswith("insufficient_gas: the treasury account")
        assert ex["last_error"] == ex["attempts"][0]["reason"]
        assert t.usdc()["community"] == str(1000 * USDC) and t.sent_transactions() == 0

        t.clock.advance(60)  # retried after the back-off, refused again
        t.gov.tick()
        assert [a["ok"] for a in _execution(t, pid)["attempts"]] == [False, False]
        t.clock.advance(3600)  # past eta + grace: it ends, visibly, holding nothing
        t.gov.tick()
        ex = _execution(t, pid)
        assert ex["status"] == "expired" and ex["reserved"] is None and t.gov.get(pid)["state"] == "expired"
        _set_balance(t, ETH)  # topped up too late: nothing was signed, nothing pays
        t.gov.tick()
        assert t.sent_transactions() == 0 and t.sent_to(recipient.address) == 0
        assert t.usdc()["community"] == str(1000 * USDC)
        t.assert_books_hold()


def test_transfers_in_flight_take_their_fees_first(anvil, deploy, database_url, tmp_path) -> None:
    with ChainTreasury(anvil, deploy, database_url, tmp_path, bucket=1000 * USDC, on_chain=2000 * USDC) as t:
        recipients = [Wallet.evm().address for _ in range(2)]
        ids = t.queue_spends(recipients, [50 * USDC, 50 * USDC])
        t.clock.advance(300)
        now = t.clock.now()
        with session_scope(t.rt.engine) as s:
            executions.create_due(s, t.rt, now)
        with session_scope(t.rt.engine, write=False) as s:  # by proposal: ids need not follow their order
            first, second = (s.exec(select(Execution.id).where(Execution.proposal_id == pid)).one() for pid in ids)
        signed = jobs.sign_one(t.rt, first, now)  # stored, not yet broadcast
        assert signed is not None
        # enough for one more transfer, not for the one in flight and another
        _set_balance(t, max_cost(decode(signed.raw)) * 3 // 2)
        assert jobs.sign_one(t.rt, second, now) is None
        t.rt.view_cache.invalidate()  # as a scheduler tick does
        ex = _execution(t, ids[1])
        assert ex["status"] == "ready" and ex["tx_hash"] is None and ex["reserved"] is None, ex
        assert ex["last_error"].startswith("insufficient_gas:") and "1 transfer(s) in flight" in ex["last_error"]

        _set_balance(t, ETH)  # topped up: the retry signs it, and each spend is paid once
        t.clock.advance(60)
        t.gov.tick()
        t.settle()
        for pid, recipient in zip(ids, recipients, strict=True):
            assert t.gov.get(pid)["execution"]["status"] == "done"
            assert t.sent_to(recipient) == 50 * USDC
        assert t.sent_transactions() == 2
        t.assert_books_hold()


def test_native_spend_needs_its_value_and_its_fee(anvil, deploy, database_url, tmp_path) -> None:
    with ChainTreasury(anvil, deploy, database_url, tmp_path, bucket=1000 * USDC, on_chain=2000 * USDC,
                       eth_bucket=10 * ETH) as t:
        recipient = Wallet.evm()
        (pid,) = t.queue_spends(recipient.address, [ETH], asset="ETH")
        _set_balance(t, ETH)  # the value, and nothing for the fee
        t.clock.advance(300)
        t.gov.tick()
        ex = _execution(t, pid)
        assert ex["status"] == "ready" and ex["tx_hash"] is None, ex
        assert ex["last_error"].startswith("insufficient_gas:") and f"a value of {ETH}" in ex["last_error"]

        _set_balance(t, 2 * ETH)
        t.clock.advance(60)
        t.gov.tick()
        t.settle()
        assert t.gov.get(pid)["execution"]["status"] == "done"
        assert anvil.w3.eth.get_balance(recipient.address) == ETH
        t.assert_books_hold()


def test_network_fees_are_journaled_so_the_native_coin_matches_the_chain(anvil, deploy, database_url,
                                                                         tmp_path) -> None:
    # the journal holds exactly what the treasury account holds; every transfer burns gas from it
    with ChainTreasury(anvil, deploy, database_url, tmp_path, bucket=1000 * USDC, on_chain=2000 * USDC,
                       gas_money=10 * ETH, eth_bucket=10 * ETH) as t:
        assert t.journaled("ETH") == anvil.w3.eth.get_balance(t.treasury.address) == 10 * ETH
        recipients = [Wallet.evm().address for _ in range(3)]
        ids = t.queue_spends(recipients[:2], [100 * USDC, 50 * USDC]) + \
            t.queue_spends(recipients[2], [ETH], asset="ETH")
        t.clock.advance(300)
        t.gov.tick()
        t.settle()
        for pid in ids:
            assert t.gov.get(pid)["state"] == "executed"
        on_chain = anvil.w3.eth.get_balance(t.treasury.address)
        assert on_chain < 9 * ETH  # a value of 1 ETH and three fees left it
        assert t.journaled("ETH") == on_chain
        assert t.client.get("/v1/treasury").json()["reserved"] == {}  # every fee reservation settled
        fees = t.client.get("/v1/treasury/ledger", params={"limit": 500}).json()["items"]
        assert sum(1 for e in fees if e["kind"] == "fee") == 3
        t.assert_books_hold()


def test_a_reverted_transfer_pays_its_fee_and_releases_the_rest(anvil, deploy, database_url, tmp_path) -> None:
    with ChainTreasury(anvil, deploy, database_url, tmp_path, bucket=1000 * USDC, on_chain=2000 * USDC,
                       gas_money=10 * ETH, eth_bucket=10 * ETH) as t:
        (pid,) = t.queue_spends(Wallet.evm().address, [100 * USDC])
        t.clock.advance(300)
        t.sign_first_due()  # its fee is reserved with its amount
        reserved = t.client.get("/v1/treasury").json()["reserved"]
        assert reserved["USDC"] == {"community": str(100 * USDC)} and int(reserved["ETH"]["community"]) > 0
        code = anvil.w3.eth.get_code(t.token.address)
        anvil.w3.provider.make_request("anvil_setCode", [t.token.address, "0x60006000fd"])  # every call reverts
        try:
            t.gov.tick()
            t.settle()
        finally:
            anvil.w3.provider.make_request("anvil_setCode", [t.token.address, "0x" + code.hex()])
        ex = _execution(t, pid)
        assert ex["status"] == "ready" and ex["attempts"][0]["reason"] == "the transfer reverted on chain", ex
        assert t.client.get("/v1/treasury").json()["reserved"] == {}
        assert t.journaled("ETH") == anvil.w3.eth.get_balance(t.treasury.address) < 10 * ETH
        assert t.usdc()["community"] == str(1000 * USDC)
        t.assert_books_hold()


def test_a_native_spend_to_a_contract_that_logs_on_receipt_is_paid_once(anvil, deploy, database_url,
                                                                         tmp_path) -> None:
    # a Safe emits SafeReceived on receipt: 21,000 gas would not do, and the transfer would
    # revert, burning its fee every retry until the deadline
    with ChainTreasury(anvil, deploy, database_url, tmp_path, bucket=1000 * USDC, on_chain=2000 * USDC,
                       gas_money=10 * ETH, eth_bucket=10 * ETH) as t:
        wallet = Wallet.evm().address
        anvil.w3.provider.make_request("anvil_setCode", [wallet, "0x5f5fa000"])  # PUSH0 PUSH0 LOG0 STOP
        (pid,) = t.queue_spends(wallet, [ETH], asset="ETH")
        t.clock.advance(300)
        t.gov.tick()
        t.settle()
        p = t.gov.get(pid)
        assert p["state"] == "executed" and [a["ok"] for a in p["execution"]["attempts"]] == [True], p["execution"]
        assert anvil.w3.eth.get_balance(wallet) == ETH and t.sent_transactions() == 1
        assert t.journaled("ETH") == anvil.w3.eth.get_balance(t.treasury.address)
        t.assert_books_hold()


def test_the_fee_of_a_transaction_that_takes_a_transfers_nonce_is_journaled(anvil, deploy, database_url,
                                                                              tmp_path) -> None:
    # the README's way to end a transfer that never gets mined: any transaction with its nonce
    with ChainTreasury(anvil, deploy, database_url, tmp_path, bucket=1000 * USDC, on_chain=2000 * USDC,
                       gas_money=10 * ETH, eth_bucket=10 * ETH) as t:
        (pid,) = t.queue_spends(Wallet.evm().address, [100 * USDC])
        t.clock.advance(300)
        _, signed = t.sign_first_due()  # stored, never broadcast
        w3 = anvil.w3
        end = t.treasury.sign_transaction({"to": t.treasury.address, "value": 0, "gas": 21_000, "nonce": signed.nonce,
                                           "chainId": 31337, "maxFeePerGas": 20 * 10**9, "maxPriorityFeePerGas": 10**9})
        w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(end.raw_transaction))
        anvil.mine(3)
        t.gov.tick()
        ex = _execution(t, pid)
        assert ex["status"] == "ready" and "can never land" in ex["attempts"][0]["reason"], ex
        assert t.client.get("/v1/treasury").json()["reserved"] == {}
        assert t.journaled("ETH") == w3.eth.get_balance(t.treasury.address) < 10 * ETH
        t.assert_books_hold()
