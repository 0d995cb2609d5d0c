"""External completion against a real anvil node: only a transaction from a sender the
deployment allows for the asset, mined after the claim, completes a spend, and it completes
one spend only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from litestar.testing import TestClient
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select
from web3 import Web3

from governance.app import create_app
from governance.bootstrap import bootstrap
from governance.clock import FileClock
from governance.settings import load_settings
from governance.setup import create_deployment
from tests.chain.rpcproxy import LockProbe
from tests.support import START, Gov, Wallet, make_key
from tests.support.chain import USDC, settings_for
from treasury_exec.chain import parse_assets
from treasury_exec.models import Execution, JournalEntry


class ExternalTreasury:
    """A deployment whose USDC and ETH are paid by external executors from ``payer`` (the
    only allowed sender of both), with 1,000 of each in the ``community`` bucket."""

    def __init__(self, anvil, deploy, database_url: str, tmp_path: Path, rpc_url: str | None = None) -> None:
        self.anvil = anvil
        self.token = deploy("PlainToken", "USD Coin", "USDC")
        self.payer, self.stranger = anvil.accounts[3], anvil.accounts[4]
        for who in (self.payer, self.stranger):
            self.token.functions.mint(who, 1000 * USDC).transact({"from": anvil.accounts[0]})
        self.clock = FileClock(tmp_path / "clock")
        self.clock.set(START)
        settings = settings_for(anvil, self.token.address, "", tmp_path / "clock", database_url)
        settings["rpc_url"] = rpc_url or anvil.rpc_url
        settings["chain_assets"] = json.dumps({
            "USDC": {"token": self.token.address, "decimals": 18, "mode": "external", "senders": [self.payer]},
            "ETH": {"native": True, "decimals": 18, "mode": "external", "senders": [self.payer]}})
        self.rt = bootstrap(load_settings(env={}, **settings), clock=self.clock)
        create_deployment(self.rt)
        self._cm = TestClient(app=create_app(runtime=self.rt))
        self.client = self._cm.__enter__()
        self.gov = Gov(self.client, self.rt, make_key(self.rt, "operator"))
        self.executor = {"Authorization": f"Bearer {make_key(self.rt, 'executor')}"}
        self.holder = Wallet.evm()
        self.gov.buy(self.holder, 100)
        for asset in ("USDC", "ETH"):
            r = self.client.post("/v1/treasury/deposits", headers={"Authorization": f"Bearer {self.gov.operator_key}"},
                                 json={"bucket": "community", "asset": asset, "amount": str(1000 * USDC),
                                       "reference": f"d-{asset}"})
            assert r.status_code == 201, r.text

    def close(self) -> None:
        self._cm.__exit__(None, None, None)
        self.rt.engine.dispose()

    def pay_usdc(self, to: str, amount: int, sender: str | None = None) -> str:
        return self._mined(self.token.functions.transfer(to, amount).transact({"from": sender or self.payer}))

    def pay_eth(self, to: str, amount: int, sender: str | None = None) -> str:
        return self._mined(self.anvil.w3.eth.send_transaction({"from": sender or self.payer, "to": to,
                                                               "value": amount}))

    def _mined(self, tx) -> str:
        """The payment's hash once it is mined: anvil can answer the send before the block holding
        it is served, and a report of an unmined payment is another test's case."""
        self.anvil.w3.eth.wait_for_transaction_receipt(tx, timeout=30)
        return "0x" + tx.hex().removeprefix("0x")

    def ready_spends(self, recipient: str, amounts: list[int], asset: str = "USDC") -> list[int]:
        """Pass and queue one spend per amount; returns their execution ids, ready for executors."""
        ids = [self.gov.proposal(self.holder, "TreasurySpend", bucket="community", asset=asset, recipient=recipient,
                                 amount=a, title=f"grant {i}") for i, a in enumerate(amounts)]
        for pid in ids:
            assert self.gov.vote(self.holder, pid, 1).status_code == 201
        self.clock.advance(600)
        self.gov.tick()
        self.clock.advance(300)
        self.gov.tick()
        ready = {e["proposal_id"]: e["id"] for e in
                 self.client.get("/v1/executions", params={"status": "ready"}).json()["items"]}
        return [ready[pid] for pid in ids]

    def claim(self, ex: int) -> dict:
        r = self.client.post(f"/v1/executions/{ex}/claim", headers=self.executor)
        assert r.status_code == 200, r.text
        return r.json()

    def complete(self, ex: int, tx_hash: str):
        return self.client.post(f"/v1/executions/{ex}/complete", headers=self.executor, json={"tx_hash": tx_hash})

    def spends(self) -> int:
        with Session(self.rt.engine) as s:
            return s.exec(select(func.count()).select_from(JournalEntry).where(JournalEntry.kind == "spend")).one()


@pytest.fixture
def ext(anvil, deploy, database_url, tmp_path):
    t = ExternalTreasury(anvil, deploy, database_url, tmp_path)
    yield t
    t.close()


def test_transfer_mined_before_the_claim_does_not_complete_a_spend(ext: ExternalTreasury) -> None:
    recipient = Wallet.evm()
    old = ext.pay_usdc(recipient.address, 40 * USDC)  # before the proposal even existed
    (ex,) = ext.ready_spends(recipient.address, [40 * USDC])
    claimed = ext.claim(ex)

    r = ext.complete(ex, old)
    assert r.status_code == 422 and r.json()["error"] == "tx_before_claim", r.text
    assert claimed["claimed_block"] >= ext.anvil.w3.eth.get_transaction_receipt(old)["blockNumber"]
    after = ext.client.get(f"/v1/executions/{ex}").json()
    assert after["status"] == "claimed" and after["tx_hash"] is None and after["attempts"] == []
    assert ext.spends() == 0

    paid = ext.pay_usdc(recipient.address, 40 * USDC)  # the payment made for this claim does
    r = ext.complete(ex, paid)
    assert r.status_code == 200 and r.json()["status"] == "done", r.text
    assert ext.spends() == 1


def test_transfer_from_a_sender_not_allowed_does_not_complete_a_spend(ext: ExternalTreasury) -> None:
    recipient = Wallet.evm()
    (usdc,) = ext.ready_spends(recipient.address, [40 * USDC])
    (eth,) = ext.ready_spends(recipient.address, [30 * USDC], asset="ETH")
    for ex in (usdc, eth):
        ext.claim(ex)

    r = ext.complete(usdc, ext.pay_usdc(recipient.address, 40 * USDC, sender=ext.stranger))
    assert r.status_code == 422 and r.json()["error"] == "sender_not_allowed", r.text
    r = ext.complete(eth, ext.pay_eth(recipient.address, 30 * USDC, sender=ext.stranger))
    assert r.status_code == 422 and r.json()["error"] == "sender_not_allowed", r.text
    assert ext.spends() == 0

    assert ext.complete(usdc, ext.pay_usdc(recipient.address, 40 * USDC)).status_code == 200
    assert ext.complete(eth, ext.pay_eth(recipient.address, 30 * USDC)).status_code == 200
    assert ext.spends() == 2


def test_one_transaction_completes_at_most_one_execution(ext: ExternalTreasury) -> None:
    recipient = Wallet.evm()
    first, second = ext.ready_spends(recipient.address, [40 * USDC, 40 * USDC])
    ext.claim(first)
    ext.claim(second)
    paid = ext.pay_usdc(recipient.address, 40 * USDC)  # pays one of them
    assert ext.complete(first, paid).status_code == 200
    for same in (paid, "0x" + paid[2:].upper()):  # the same transaction, however it is spelled
        r = ext.complete(second, same)
        assert r.status_code == 409 and r.json()["error"] == "tx_already_used", r.text
    assert ext.client.get(f"/v1/executions/{second}").json()["status"] == "claimed"
    assert ext.spends() == 1
    # and the database itself refuses a second execution with that hash, whoever writes it
    with Session(ext.rt.engine) as s:
        row = s.get(Execution, second)
        row.tx_hash = paid
        s.add(row)
        with pytest.raises(IntegrityError):
            s.commit()


def test_external_asset_needs_valid_distinct_senders() -> None:
    token, sender = Web3.to_checksum_address("0x" + "11" * 20), Web3.to_checksum_address("0x" + "ab" * 20)
    ok = parse_assets(json.dumps({"USDC": {"token": token, "mode": "external", "senders": [sender]}}))
    assert ok["USDC"].senders == (sender,)
    for bad in ([], [sender.lower()], [sender, sender], "0x", [1]):
        with pytest.raises(ValueError, match="senders"):
            parse_assets(json.dumps({"USDC": {"token": token, "mode": "external", "senders": bad}}))
    with pytest.raises(ValueError, match="senders"):
        parse_assets(json.dumps({"USDC": {"token": token, "mode": "external"}}))


def test_a_payment_made_under_a_lapsed_lease_stays_reportable_after_another_executor_fails(
        ext: ExternalTreasury) -> None:
    """An executor pays, its lease lapses before it reports, a second executor claims and gives
    up: the first payment must still complete the spend (found by the outside attack: the
    second claim's starting block, reset by the fail, put the payment before every new claim)."""
    from tests.support import make_key

    other = {"Authorization": f"Bearer {make_key(ext.rt, 'executor')}"}
    recipient = Wallet.evm()
    (ex,) = ext.ready_spends(recipient.address, [25 * USDC])
    first = ext.claim(ex)
    paid = ext.pay_usdc(recipient.address, 25 * USDC)
    ext.anvil.mine(3)
    ext.clock.advance(ext.rt.settings.execution_lease_seconds + 1)  # the lease lapses before the report
    r = ext.client.post(f"/v1/executions/{ex}/claim", headers=other)
    assert r.status_code == 200 and r.json()["claimed_block"] == first["claimed_block"], r.text
    r = ext.client.post(f"/v1/executions/{ex}/fail", headers=other, json={"reason": "gave up"})
    assert r.status_code == 200 and r.json()["status"] == "ready", r.text
    assert r.json()["claimed_block"] == first["claimed_block"]  # kept: the first executor may have paid
    again = ext.claim(ex)
    assert again["claimed_block"] == first["claimed_block"]
    r = ext.complete(ex, paid)
    assert r.status_code == 200 and r.json()["status"] == "done", r.text
    assert ext.spends() == 1


def test_a_real_payment_the_node_has_not_seen_yet_is_refused_as_retryable(anvil, deploy, database_url, tmp_path,
                                                                          lagging_rpc) -> None:
    # behind a load balancer, the backend that answers may not have the block holding the payment
    ext = ExternalTreasury(anvil, deploy, database_url, tmp_path, rpc_url=lagging_rpc.url)
    try:
        recipient = Wallet.evm()
        (ex,) = ext.ready_spends(recipient.address, [40 * USDC])
        ext.claim(ex)
        paid = ext.pay_usdc(recipient.address, 40 * USDC)
        lagging_rpc.lag, lagging_rpc.every = 10**6, 1  # no receipt, however deep the block
        r = ext.complete(ex, paid)
        assert r.status_code == 422, r.text
        assert r.json()["error"] == "tx_not_found" and r.json()["retryable"] is True, r.json()
        after = ext.client.get(f"/v1/executions/{ex}").json()
        assert after["status"] == "claimed" and after["tx_hash"] is None and ext.spends() == 0

        lagging_rpc.lag = 0  # the node caught up: the same report completes the spend
        r = ext.complete(ex, paid)
        assert r.status_code == 200 and r.json()["status"] == "done", r.text
        assert ext.spends() == 1
    finally:
        ext.close()


def test_claim_and_complete_ask_the_node_holding_no_database_lock(anvil, deploy, database_url, tmp_path,
                                                                  lagging_rpc) -> None:
    # SQLite's write lock is the whole database's: a node answering slowly inside it would stall
    # every vote and purchase; on PostgreSQL the rows held would stall the proposal's other steps
    ext = ExternalTreasury(anvil, deploy, database_url, tmp_path, rpc_url=lagging_rpc.url)
    try:
        recipient = Wallet.evm()
        (ex,) = ext.ready_spends(recipient.address, [40 * USDC])
        lagging_rpc.on_call = probe = LockProbe(database_url)
        ext.claim(ex)
        assert ext.complete(ex, ext.pay_usdc(recipient.address, 40 * USDC)).status_code == 200
        assert {"eth_blockNumber", "eth_getTransactionReceipt"} <= set(probe.calls), probe.calls
        assert probe.held == [], f"asked the node under a database lock: {probe.held}"
    finally:
        ext.close()
