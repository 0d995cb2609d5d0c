"""Deployments that move tokens on a real anvil node (tests/chain): their settings, and a
treasury whose spends are sent on chain (:class:`ChainTreasury`)."""

from __future__ import annotations

import json
from pathlib import Path

from eth_account import Account
from litestar.testing import TestClient
from sqlmodel import select

from governance.app import create_app
from governance.bootstrap import bootstrap
from governance.clock import FileClock
from governance.db import session_scope
from governance.settings import load_settings
from governance.setup import create_deployment
from tests.support import START, Gov, Wallet, make_key
from tests.support.processes import SETTINGS
from treasury_exec import executions, jobs, journal
from treasury_exec.journal import verify_chain
from treasury_exec.models import AccountBalance, Execution

USDC = 10**18  # one whole unit of the test token (18 decimals)


def settings_for(anvil, token: str, key: str, clock_file: Path, database_url: str) -> dict:
    """Settings of a deployment whose USDC is the ``token`` contract on ``anvil``, paid from the
    treasury ``key`` (``mode: chain``), with one confirmation and the clock in ``clock_file``."""
    return {**SETTINGS, "database_url": database_url, "rpc_url": anvil.rpc_url, "confirmations": 1,
            "treasury_private_key": key,
            "chain_assets": json.dumps({"USDC": {"token": token, "decimals": 18, "mode": "chain"}}),
            "test_clock_file": str(clock_file)}


class ChainTreasury:
    """A deployment whose ``community`` bucket holds ``bucket`` USDC in the journal, and whose
    treasury account holds ``on_chain`` USDC on anvil (more than the bucket: the chain would
    let it overpay) and ``gas_money`` wei of the native coin. With ``eth_bucket``, the native
    coin is asset ``ETH`` (mode chain) too, the bucket holds that much of it, and it pays the
    network fees (``DAO_FEE_BUCKET``)."""

    def __init__(self, anvil, deploy, database_url: str, tmp_path: Path, *, bucket: int, on_chain: int,
                 gas_money: int = 10**18, eth_bucket: int = 0, **overrides) -> None:
        self.anvil = anvil
        self.token = deploy("PlainToken", "USD Coin", "USDC")
        self.treasury = Account.create()
        if gas_money:  # the native coin the treasury account pays fees with
            anvil.w3.eth.send_transaction({"from": anvil.accounts[0], "to": self.treasury.address,
                                           "value": gas_money})
        self.token.functions.mint(self.treasury.address, on_chain).transact({"from": anvil.accounts[0]})
        self.clock = FileClock(tmp_path / "clock")
        self.clock.set(START)
        settings = settings_for(anvil, self.token.address, self.treasury.key.hex(), tmp_path / "clock",
                                database_url) | overrides
        if eth_bucket:  # the journal holds the native coin: fees are journaled, from the community bucket
            settings["chain_assets"] = json.dumps(json.loads(settings["chain_assets"]) | {
                "ETH": {"native": True, "decimals": 18, "mode": "chain"}})
            settings.setdefault("fee_bucket", "community")
        self.rt = bootstrap(load_settings(env={}, **settings), clock=self.clock)
        create_deployment(self.rt)
        self._client_cm = TestClient(app=create_app(runtime=self.rt))
        self.client = self._client_cm.__enter__()
        self.gov = Gov(self.client, self.rt, make_key(self.rt, "operator"))
        self.holder = Wallet.evm()
        self.gov.buy(self.holder, 100)
        for asset, amount in (("USDC", bucket), ("ETH", eth_bucket)):
            if amount:
                dep = self.client.post("/v1/treasury/deposits",
                                       headers={"Authorization": f"Bearer {self.gov.operator_key}"},
                                       json={"bucket": "community", "asset": asset, "amount": str(amount),
                                             "reference": f"d-{asset}"})
                assert dep.status_code == 201, dep.text

    def close(self) -> None:
        self._client_cm.__exit__(None, None, None)
        self.rt.engine.dispose()

    def __enter__(self) -> ChainTreasury:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def queue_spends(self, recipient: str | list[str], amounts: list[int], asset: str = "USDC") -> list[str]:
        """Propose, pass and queue one spend per amount (to ``recipient``, or to each of a list in
        turn); returns their ids (eta = now + 300)."""
        recipients = recipient if isinstance(recipient, list) else [recipient] * len(amounts)
        ids = [self.gov.proposal(self.holder, "TreasurySpend", bucket="community", asset=asset,
                                 recipient=r, amount=a, title=f"grant {i}")
               for i, (r, a) in enumerate(zip(recipients, amounts, strict=True))]
        for pid in ids:
            assert self.gov.vote(self.holder, pid, 1).status_code == 201
        self.clock.advance(600)
        self.gov.tick()
        for pid in ids:
            assert self.gov.get(pid)["state"] == "queued"
        return ids

    def sign_first_due(self) -> tuple[int, object]:
        """The scheduler's first step for the one due execution, alone: signed and stored, not
        yet broadcast (what a scheduler killed right after that commit leaves)."""
        now = self.clock.now()
        with session_scope(self.rt.engine) as s:
            executions.create_due(s, self.rt, now)
        with session_scope(self.rt.engine, write=False) as s:
            ex_id = s.exec(select(Execution.id)).one()
        signed = jobs.sign_one(self.rt, ex_id, now)
        assert signed is not None
        self.rt.view_cache.invalidate()  # as a scheduler tick does
        return ex_id, signed

    def settle(self) -> None:
        """Tick (the clock standing still) until no transfer is in flight: a receipt may come
        a moment after the broadcast."""
        for _ in range(10):
            with session_scope(self.rt.engine, write=False) as s:
                if not s.exec(select(Execution.id).where(Execution.status == "signed")).all():
                    return
            self.gov.tick()
        raise AssertionError("transfers still in flight after 10 ticks")

    def sent_to(self, address: str) -> int:
        return self.token.functions.balanceOf(address).call()

    def sent_transactions(self) -> int:
        return self.anvil.w3.eth.get_transaction_count(self.treasury.address)

    def usdc(self) -> dict[str, str]:
        return self.client.get("/v1/treasury").json()["assets"]["USDC"]

    def journaled(self, asset: str) -> int:
        """What the journal says the treasury holds of ``asset``: every bucket and reservation."""
        with session_scope(self.rt.engine, write=False) as s:
            return sum(r.balance for r in s.exec(select(AccountBalance).where(AccountBalance.asset == asset))
                       if not journal.may_go_negative(r.account))

    def assert_books_hold(self) -> None:
        """No bounded account below zero, reservations included, and the journal verifies."""
        with session_scope(self.rt.engine, write=False) as s:
            for row in s.exec(select(AccountBalance)).all():
                assert row.balance >= 0 or journal.may_go_negative(row.account), row
            report = verify_chain(s)
            assert report.ok, report
