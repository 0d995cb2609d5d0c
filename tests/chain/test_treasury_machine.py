"""A stateful property test of the treasury (hypothesis ``RuleBasedStateMachine``).

Random purchases, buybacks, deposits, replays of each with the same and with a changed body,
and treasury spends executed internally (USD), on chain by the service (USDC, and the native
coin ETH, signed by the treasury key on anvil) and by an external executor (DAI, paid on anvil by
an allowed payer), interleaved with scheduler ticks and restarts of the process's runtime. The
native coin is a journaled asset, so every transfer's network fee is journaled too (from the
community bucket). After every step:

- no bounded account is below zero, reservations included (money in flight is not
  available: a bucket's balance is what is left after every signed transfer);
- every journal entry balances and ``dao ledger verify`` passes;
- every execution is either in flight before its proposal's deadline or in a terminal state;
- nothing is paid twice: each spend's recipient received on chain exactly what the journal
  says was paid to it (the amount once, or nothing), and every payment an executor made was
  accepted;
- the journal's ETH (buckets and reservations) is what the treasury account holds on chain, once
  nothing is in flight (while a transfer is signed, the chain may already show it and its fee:
  the account then holds at least the journal's ETH less everything reserved).

Each example runs on a fresh database (SQLite, and PostgreSQL) against one anvil node.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from litestar.testing import TestClient
from sqlmodel import Session, select

from governance.app import create_app
from governance.bootstrap import bootstrap
from governance.clock import SettableClock
from governance.runtime import Runtime
from governance.settings import load_settings
from governance.setup import create_deployment
from proposals.models import Proposal
from tests.support import START, TOKEN, Gov, Wallet, make_key
from treasury_exec import journal
from treasury_exec.journal import verify_chain
from treasury_exec.models import AccountBalance, Execution, JournalEntry

UNIT = 10**6  # the test tokens' base units per whole token (6 decimals, like USDC)
MILLI_ETH = 10**15  # the native coin's step here, in wei
TERMINAL = {"done", "expired", "canceled", "failed"}
BUCKETS = ("community", "development")


@dataclass
class Spend:
    proposal: str
    mode: str  # internal | chain | native | external
    asset: str
    recipient: Wallet
    amount: int
    paid_by_executor: int = 0  # what the test's executor sent on chain for it


@dataclass
class Context:
    """What lives across examples: anvil, the two test tokens, a database factory."""

    anvil: Any
    usdc: Any  # paid by the service from the treasury account (mode chain)
    dai: Any  # paid by an external executor from its own account (mode external)
    payer: str  # the executor's on-chain account (an anvil account)
    new_database: Any  # () -> url


@dataclass
class World:
    rt: Runtime
    client: TestClient
    gov: Gov
    executor: dict[str, str]
    settings: dict[str, Any]
    holders: list[Wallet] = field(default_factory=list)
    spends: list[Spend] = field(default_factory=list)
    refs: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # reference -> (path, body)


class TreasuryMachine(RuleBasedStateMachine):
    ctx: Context  # set by the test before running

    def __init__(self) -> None:
        super().__init__()
        ctx = self.ctx
        self.clock = SettableClock(START)
        self.treasury = Account.create()
        assets = {"USDC": {"token": ctx.usdc.address, "decimals": 6, "mode": "chain"},
                  "ETH": {"native": True, "decimals": 18, "mode": "chain"},
                  "DAI": {"token": ctx.dai.address, "decimals": 6, "mode": "external", "senders": [ctx.payer]}}
        self.settings = {
            "database_url": ctx.new_database(), "chain_id": 31337, "rate_limit_per_minute": 0,
            "voting_delay": 0, "voting_period": 60, "timelock": 0, "grace_period": 300, "retry_interval": 30,
            "execution_lease_seconds": 60, "proposal_threshold": TOKEN, "spend_cap_bps": 10_000,
            "spend_quorum_bps": 100, "rpc_url": ctx.anvil.rpc_url, "confirmations": 1,
            "treasury_private_key": self.treasury.key.hex(), "chain_assets": json.dumps(assets),
            "view_cache_ms": 0, "fee_bucket": "community",
        }
        self.world: World | None = None
        self.references_made = 0
        self._start(first=True)
        self.whale = Wallet.evm()
        self.world.gov.buy(self.whale, 1_000)  # votes every spend through; $100 into the buckets
        for asset in ("USDC", "DAI"):  # something to spend on chain from the start
            for bucket in BUCKETS:
                self.deposit(asset, bucket, 500)
        self.deposit("ETH", "community", 1_000)  # the gas money, journaled: 1 ETH

    # --- process lifecycle ---------------------------------------------------------------

    def _start(self, *, first: bool = False) -> None:
        rt = bootstrap(load_settings(env={}, **self.settings), clock=self.clock)
        if first:
            create_deployment(rt)
        else:
            rt.load_deployment()
        client = TestClient(app=create_app(runtime=rt))
        client.__enter__()
        old = self.world
        gov = Gov(client, rt, make_key(rt, "operator"))
        executor = {"Authorization": f"Bearer {make_key(rt, 'executor')}"}
        self.world = World(rt, client, gov, executor, self.settings)
        if old is not None:
            self.world.spends, self.world.refs, self.world.holders = old.spends, old.refs, old.holders
            gov._refs = old.gov._refs

    def _stop(self) -> None:
        if self.world is not None:
            self.world.client.__exit__(None, None, None)
            self.world.rt.engine.dispose()

    def teardown(self) -> None:
        self._stop()

    @rule()
    def restart(self) -> None:
        """The process dies and starts again on the same database (nothing held in memory survives)."""
        self._stop()
        self._start()

    # --- money in --------------------------------------------------------------------------

    def _reference(self, prefix: str) -> str:
        # counted, not random: hypothesis replays and shrinks an example exactly
        self.references_made += 1
        return f"{prefix}-{self.references_made}"

    def _operator(self, path: str, body: dict[str, Any]):
        return self.world.client.post(path, json=body,
                                      headers={"Authorization": f"Bearer {self.world.gov.operator_key}"})

    @rule(tokens=st.integers(1, 200))
    def purchase(self, tokens: int) -> None:
        wallet = Wallet.evm()
        body = {"buyer": wallet.address, "payment": tokens * 100_000, "reference": self._reference("buy")}
        r = self._operator("/v1/treasury/purchases", body)
        assert r.status_code == 201, r.text
        self.world.holders.append(wallet)
        self.world.refs[body["reference"]] = ("/v1/treasury/purchases", body)

    @rule(asset=st.sampled_from(["USDC", "DAI", "ETH"]), bucket=st.sampled_from(BUCKETS), whole=st.integers(1, 300))
    def deposit(self, asset: str, bucket: str, whole: int) -> None:
        amount = whole * (MILLI_ETH if asset == "ETH" else UNIT)
        body = {"bucket": bucket, "asset": asset, "amount": str(amount), "reference": self._reference("dep")}
        r = self._operator("/v1/treasury/deposits", body)
        assert r.status_code == 201, r.text
        # the service pays USDC and ETH from the treasury account: the chain holds what was deposited
        if asset == "USDC":
            self.ctx.usdc.functions.mint(self.treasury.address, amount).transact({"from": self.ctx.anvil.accounts[0]})
        elif asset == "ETH":
            self.ctx.anvil.w3.eth.send_transaction({"from": self.ctx.anvil.accounts[0], "to": self.treasury.address,
                                                    "value": amount})
        self.world.refs[body["reference"]] = ("/v1/treasury/deposits", body)

    @rule(amount=st.integers(1, 2_000_000), tokens=st.integers(1, 10 * TOKEN))
    def buyback(self, amount: int, tokens: int) -> None:
        body = {"seller": self.whale.address, "amount": amount, "tokens": str(tokens),
                "reference": self._reference("bb")}
        r = self._operator("/v1/treasury/buybacks", body)
        # the bucket or the seller may hold too little: then nothing is stored
        assert r.status_code in (201, 422), r.text
        if r.status_code == 201:
            self.world.refs[body["reference"]] = ("/v1/treasury/buybacks", body)
        else:
            assert r.json()["error"] in ("insufficient_funds", "insufficient_tokens")

    @precondition(lambda self: self.world is not None and self.world.refs)
    @rule(data=st.data(), changed=st.booleans())
    def replay(self, data: st.DataObject, changed: bool) -> None:
        """The same reference again: the stored record (200) for the same body, 409 for another."""
        reference = data.draw(st.sampled_from(sorted(self.world.refs)))
        path, body = self.world.refs[reference]
        if changed:
            body = dict(body)
            key = {"/v1/treasury/purchases": "payment", "/v1/treasury/buybacks": "amount"}.get(path, "amount")
            body[key] = body[key] + 1 if isinstance(body[key], int) else str(int(body[key]) + 1)
        r = self._operator(path, body)
        if changed:
            assert r.status_code == 409 and r.json()["error"] == "reference_conflict", r.text
        else:
            assert r.status_code == 200, r.text

    # --- spends ------------------------------------------------------------------------------

    @rule(mode=st.sampled_from(["internal", "chain", "native", "external"]), bucket=st.sampled_from(BUCKETS),
          amount=st.integers(1, 400))
    def propose_spend(self, mode: str, bucket: str, amount: int) -> None:
        """A spend proposal voted through at once; it may be more than the bucket will hold by
        the time it executes (spends are capped at the bucket's balance when proposed)."""
        asset = {"internal": "USD", "chain": "USDC", "native": "ETH", "external": "DAI"}[mode]
        base = {"USD": 1_000, "ETH": MILLI_ETH}.get(asset, UNIT)  # micro-USD, wei, or the token's base units
        recipient = Wallet.evm()
        r = self.world.gov.propose(self.whale, "TreasurySpend", bucket=bucket, asset=asset,
                                   recipient=recipient.address, amount=amount * base)
        if r.status_code == 422:  # over the bucket's balance now
            assert r.json()["error"] == "spend_over_cap", r.text
            return
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        assert self.world.gov.vote(self.whale, pid, 1).status_code == 201
        self.world.spends.append(Spend(pid, mode, asset, recipient, amount * base))

    @rule(seconds=st.sampled_from([0, 1, 30, 61, 120, 301]))
    def tick(self, seconds: int) -> None:
        """Time passes, then the scheduler runs once (the tally, executions, settlements)."""
        self.clock.advance(seconds)
        self.world.gov.tick()

    def _external(self, status: str) -> list[dict[str, Any]]:
        r = self.world.client.get("/v1/executions", params={"status": status})
        return [e for e in r.json()["items"] if e["mode"] == "external"]

    @precondition(lambda self: self.world is not None and self.world.spends)
    @rule(data=st.data(), pay=st.booleans())
    def executor_claims(self, data: st.DataObject, pay: bool) -> None:
        """An executor claims a ready external execution, and either pays and completes it at
        once, or leaves the lease to run out (paying later is complete_claimed's job)."""
        ready = self._external("ready")
        if not ready:
            return
        ex = data.draw(st.sampled_from(ready))
        r = self.world.client.post(f"/v1/executions/{ex['id']}/claim", headers=self.world.executor)
        assert r.status_code in (200, 409), r.text
        if r.status_code == 200 and pay:
            self._pay_and_complete(r.json())

    @precondition(lambda self: self.world is not None and self.world.spends)
    @rule(data=st.data())
    def complete_claimed(self, data: st.DataObject) -> None:
        """An executor holding a live lease pays on chain and reports it: having paid, it must
        be accepted (the money moved)."""
        now = self.clock.now()
        held = [e for e in self._external("claimed") if (e["lease_expires_at"] or 0) > now]
        if held:
            self._pay_and_complete(data.draw(st.sampled_from(held)))

    @precondition(lambda self: self.world is not None and self.world.spends)
    @rule(data=st.data())
    def executor_fails(self, data: st.DataObject) -> None:
        now = self.clock.now()
        held = [e for e in self._external("claimed") if (e["lease_expires_at"] or 0) > now]
        if held:
            ex = data.draw(st.sampled_from(held))
            r = self.world.client.post(f"/v1/executions/{ex['id']}/fail", headers=self.world.executor,
                                       json={"reason": "the payer is out of gas"})
            assert r.status_code == 200, r.text

    def _pay_and_complete(self, ex: dict[str, Any]) -> None:
        spend = next(s for s in self.world.spends if s.proposal == ex["proposal_id"])
        tx = self.ctx.dai.functions.transfer(spend.recipient.address, spend.amount).transact({"from": self.ctx.payer})
        # anvil may answer the send before the block holding it is served; an executor reports a
        # mined payment (before that, the answer is 422 tx_not_found, retryable)
        self.ctx.anvil.w3.eth.wait_for_transaction_receipt(tx, timeout=30)
        spend.paid_by_executor += spend.amount
        r = self.world.client.post(f"/v1/executions/{ex['id']}/complete", headers=self.world.executor,
                                   json={"tx_hash": "0x" + tx.hex().removeprefix("0x")})
        assert r.status_code == 200, f"paid on chain, yet the completion was refused: {r.text}"

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def no_bounded_account_below_zero(self) -> None:
        with Session(self.world.rt.engine) as s:
            for row in s.exec(select(AccountBalance)):
                assert row.balance >= 0 or journal.may_go_negative(row.account), row

    @invariant()
    def journal_verifies(self) -> None:
        with Session(self.world.rt.engine) as s:
            report = verify_chain(s)
        assert report.ok, report

    @invariant()
    def executions_in_flight_only_before_their_deadline(self) -> None:
        # time passes only in tick(), which runs the scheduler at once: after every step, an
        # execution not yet ended has a proposal whose deadline is still ahead
        now = self.clock.now()
        with Session(self.world.rt.engine) as s:
            for ex, deadline in s.exec(select(Execution, Proposal.deadline)
                                       .join(Proposal, Proposal.id == Execution.proposal_id)):
                assert ex.status in TERMINAL or now < deadline, (ex.status, ex.proposal_id, now, deadline)

    @invariant()
    def nothing_paid_twice_and_every_payment_journaled(self) -> None:
        with Session(self.world.rt.engine) as s:
            journaled: set[str] = set()
            for reference in s.exec(select(JournalEntry.reference).where(JournalEntry.kind == "spend")):
                pid = reference.removeprefix("proposal:")
                assert pid not in journaled, f"proposal {pid} was journaled twice"
                journaled.add(pid)
            status = dict(s.exec(select(Execution.proposal_id, Execution.status)).all())
        assert journaled == {pid for pid, st_ in status.items() if st_ == "done"}
        for spend in self.world.spends:
            if spend.mode == "internal":
                continue
            if spend.mode == "native":
                on_chain = self.ctx.anvil.w3.eth.get_balance(spend.recipient.address)
            else:
                token = self.ctx.usdc if spend.mode == "chain" else self.ctx.dai
                on_chain = token.functions.balanceOf(spend.recipient.address).call()
            done = spend.proposal in journaled
            if spend.mode == "external":
                assert on_chain == spend.paid_by_executor <= spend.amount, (on_chain, spend)
                assert done == (on_chain == spend.amount), "an executor's payment was not journaled"
            else:  # the service's transfer: once, and journaled once its receipt is in
                assert on_chain == (spend.amount if done else 0) or status.get(spend.proposal) == "signed", \
                    (on_chain, spend, status.get(spend.proposal))


    @invariant()
    def native_coin_in_the_journal_is_on_chain(self) -> None:
        held = reserved = 0
        with Session(self.world.rt.engine) as s:
            for row in s.exec(select(AccountBalance).where(AccountBalance.asset == "ETH")):
                if row.account.startswith("reserved:"):
                    reserved += row.balance
                if not journal.may_go_negative(row.account):
                    held += row.balance
            in_flight = s.exec(select(Execution.id).where(Execution.status == "signed")).first() is not None
        on_chain = self.ctx.anvil.w3.eth.get_balance(self.treasury.address)
        if in_flight:
            assert held - reserved <= on_chain <= held, (held, reserved, on_chain)
        else:
            assert on_chain == held, f"the journal holds {held} wei of ETH, the treasury account {on_chain}"


def _sqlite_factory(template: Path, tmp: Path):
    def new() -> str:
        path = tmp / f"{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"

    return new


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_treasury_state_machine(backend, anvil, deploy, sqlite_template, tmp_path, request) -> None:
    if backend == "sqlite":
        new_database = _sqlite_factory(sqlite_template, tmp_path)
    else:
        factory = request.getfixturevalue("postgres_factory")
        if factory is None:
            pytest.skip("PostgreSQL not reachable (set DAO_REQUIRE_POSTGRES=1 to make this a failure)")
        new_database = factory.new
    usdc = deploy("PlainToken", "USD Coin", "USDC")
    dai = deploy("PlainToken", "Dai", "DAI")
    payer = anvil.accounts[4]
    dai.functions.mint(payer, 10**30).transact({"from": anvil.accounts[0]})
    TreasuryMachine.ctx = Context(anvil, usdc, dai, payer, new_database)
    run_state_machine_as_test(TreasuryMachine, settings=settings(
        max_examples=30, stateful_step_count=40, deadline=None, derandomize=True,
        # no shrinking: a failing run reports its whole sequence of steps at once, where shrinking a
        # sequence of HTTP requests and chain transactions took over five minutes (CI time is bounded)
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=list(HealthCheck)))
