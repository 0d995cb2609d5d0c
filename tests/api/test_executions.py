"""Passed proposals change the economy exactly once, over HTTP, driven by the settable clock."""

from __future__ import annotations

import pytest
from sqlmodel import Session, func, select

from tests.support import TOKEN, Gov, Wallet
from treasury_exec.journal import verify_chain
from treasury_exec.models import ExecutionAttempt, JournalEntry, ParameterVersion

SETTINGS = {"voting_delay": 0, "voting_period": 600, "timelock": 300, "grace_period": 600, "retry_interval": 60,
            "proposal_threshold": TOKEN, "external_buckets": ("development",), "execution_lease_seconds": 120}


@pytest.fixture
def settings_overrides() -> dict:
    return dict(SETTINGS)



def pass_proposals(gov: Gov, voter: Wallet, ids: list[str]) -> None:
    for pid in ids:
        assert gov.vote(voter, pid, 1).status_code == 201
    gov.advance(600)
    gov.tick()
    for pid in ids:
        assert gov.get(pid)["state"] == "queued"


def count(runtime, model, *where) -> int:
    with Session(runtime.engine) as s:
        return s.exec(select(func.count()).select_from(model).where(*where)).one()


def test_end_to_end_price_allocation_and_spend_execute_once(gov, runtime) -> None:
    a, b = Wallet.evm(), Wallet.solana()
    gov.buy(a, 100)  # $10: community bucket 500,000 micro-USD
    price = gov.proposal(a, "PriceChange", price=120_000)
    shares = [{"bucket": "compute", "bps": 4000}, {"bucket": "development", "bps": 2500},
              {"bucket": "treasury", "bps": 1500}, {"bucket": "buybacks", "bps": 1500},
              {"bucket": "community", "bps": 500}]
    alloc = gov.proposal(a, "AllocationChange", shares=shares)
    spend = gov.proposal(a, "TreasurySpend", bucket="community", asset="USD", recipient=b.address, amount=50_000)
    pass_proposals(gov, a, [price, alloc, spend])

    gov.advance(299)
    assert gov.tick()["executions"] == 0  # the timelock holds
    assert gov.get(price)["state"] == "queued"
    gov.advance(1)
    assert gov.tick()["executions"] == 3
    for pid in (price, alloc, spend):
        p = gov.get(pid)
        assert p["state"] == "executed" and p["execution"]["status"] == "done"
        assert [at["ok"] for at in p["execution"]["attempts"]] == [True]
    assert gov.get(price)["execution"]["parameter_version"] is not None
    assert gov.get(spend)["execution"]["journal_seq"] is not None

    history = gov.client.get("/v1/treasury/history").json()["items"]
    assert [(v["kind"], v["proposal_id"]) for v in history[2:]] == [("price", price), ("allocation", alloc)] or \
        [(v["kind"], v["proposal_id"]) for v in history[2:]] == [("allocation", alloc), ("price", price)]
    state = gov.client.get("/v1/treasury").json()
    assert state["price"] == 120_000 and state["allocation"]["compute"] == 4000
    assert state["buckets"]["community"] == 500_000 - 50_000

    # running the scheduler again changes nothing
    gov.advance(60)
    assert gov.tick()["executions"] == 0
    assert count(runtime, ParameterVersion) == 4
    assert count(runtime, JournalEntry, JournalEntry.kind == "spend") == 1

    # the next purchase follows the new price and split
    r = gov.client.post("/v1/treasury/purchases", headers={"Authorization": f"Bearer {gov.operator_key}"},
                        json={"buyer": b.address, "payment": 1_200_000, "reference": "after"})
    assert r.status_code == 201
    assert r.json()["tokens"] == str(10 * TOKEN)
    assert r.json()["split"] == {"compute": 480_000, "development": 300_000, "treasury": 180_000,
                                 "buybacks": 180_000, "community": 60_000}


def test_insufficient_funds_is_retried_then_expires(gov, runtime) -> None:
    a = Wallet.evm()
    gov.buy(a, 100)  # buybacks bucket: 1,000,000
    spend = gov.proposal(a, "TreasurySpend", bucket="buybacks", amount=100_000)
    pass_proposals(gov, a, [spend])
    r = gov.client.post("/v1/treasury/buybacks", headers={"Authorization": f"Bearer {gov.operator_key}"},
                        json={"seller": a.address, "amount": 950_000, "tokens": str(TOKEN), "reference": "drain"})
    assert r.status_code == 201
    gov.advance(300)
    assert gov.tick()["executions"] == 0
    p = gov.get(spend)
    assert p["state"] == "queued"
    assert p["execution"]["status"] == "ready"
    assert [at["ok"] for at in p["execution"]["attempts"]] == [False]
    assert "insufficient_funds" in p["execution"]["attempts"][0]["reason"]
    gov.advance(30)
    gov.tick()  # inside the back-off: no new attempt
    assert len(gov.get(spend)["execution"]["attempts"]) == 1
    gov.advance(30)
    gov.tick()
    assert len(gov.get(spend)["execution"]["attempts"]) == 2
    gov.advance(600)  # past eta + grace
    gov.tick()
    p = gov.get(spend)
    assert p["state"] == "expired" and p["execution"]["status"] == "expired"
    assert count(runtime, JournalEntry, JournalEntry.kind == "spend") == 0  # never a partial payment
    assert gov.client.get("/v1/treasury").json()["buckets"]["buybacks"] == 50_000


def ex_auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def queued_external_spend(gov: Gov) -> tuple[str, int]:
    a = Wallet.evm()
    gov.buy(a, 100)  # development bucket: 2,000,000
    spend = gov.proposal(a, "TreasurySpend", bucket="development", amount=150_000)
    pass_proposals(gov, a, [spend])
    gov.advance(300)
    gov.tick()
    ready = gov.client.get("/v1/executions", params={"status": "ready"}).json()["items"]
    assert [e["proposal_id"] for e in ready] == [spend]
    assert ready[0]["mode"] == "external"
    return spend, ready[0]["id"]


def test_external_executor_lease_expiry_and_reclaim(gov, runtime, executor_key) -> None:
    from tests.support import make_key

    other = make_key(runtime, "executor")
    spend, ex = queued_external_spend(gov)
    assert gov.client.post(f"/v1/executions/{ex}/claim").status_code == 401
    first = gov.client.post(f"/v1/executions/{ex}/claim", headers=ex_auth(executor_key))
    assert first.status_code == 200 and first.json()["status"] == "claimed"
    busy = gov.client.post(f"/v1/executions/{ex}/claim", headers=ex_auth(other))
    assert busy.status_code == 409 and busy.json()["error"] == "not_claimable"
    gov.advance(121)  # the lease ran out
    second = gov.client.post(f"/v1/executions/{ex}/claim", headers=ex_auth(other))
    assert second.status_code == 200
    late = gov.client.post(f"/v1/executions/{ex}/complete", headers=ex_auth(executor_key), json={"reference": "w1"})
    assert late.status_code == 409 and late.json()["error"] == "not_claimed"
    done = gov.client.post(f"/v1/executions/{ex}/complete", headers=ex_auth(other), json={"reference": "wire-77"})
    assert done.status_code == 200 and done.json()["status"] == "done"
    assert gov.get(spend)["state"] == "executed"
    again = gov.client.post(f"/v1/executions/{ex}/complete", headers=ex_auth(other), json={"reference": "wire-77"})
    assert again.status_code == 200  # the identical completion
    double = gov.client.post(f"/v1/executions/{ex}/complete", headers=ex_auth(other), json={"reference": "wire-78"})
    assert double.status_code == 409 and double.json()["error"] == "already_completed"
    assert count(runtime, JournalEntry, JournalEntry.kind == "spend") == 1
    assert gov.client.get("/v1/treasury").json()["buckets"]["development"] == 2_000_000 - 150_000


def test_executor_fail_frees_the_execution(gov, runtime, executor_key) -> None:
    _spend, ex = queued_external_spend(gov)
    gov.client.post(f"/v1/executions/{ex}/claim", headers=ex_auth(executor_key))
    r = gov.client.post(f"/v1/executions/{ex}/fail", headers=ex_auth(executor_key), json={"reason": "bank closed"})
    assert r.status_code == 200 and r.json()["status"] == "ready"
    assert r.json()["attempts"][0]["reason"] == "bank closed"
    assert count(runtime, ExecutionAttempt, ExecutionAttempt.ok == False) == 1  # noqa: E712
    assert gov.client.post(f"/v1/executions/{ex}/claim", headers=ex_auth(executor_key)).status_code == 200


def test_an_off_chain_spend_takes_a_reference_not_an_unchecked_transaction_hash(gov, runtime, executor_key) -> None:
    """A USD spend paid by an executor cannot be completed with a transaction hash: nothing
    checks it, and it would take the place of the on-chain transaction that really paid
    another spend (found by the outside attack)."""
    _spend, ex = queued_external_spend(gov)
    gov.client.post(f"/v1/executions/{ex}/claim", headers=ex_auth(executor_key))
    r = gov.client.post(f"/v1/executions/{ex}/complete", headers=ex_auth(executor_key),
                        json={"tx_hash": "0x" + "ab" * 32})
    assert r.status_code == 422 and r.json()["error"] == "tx_hash_not_applicable", r.text
    after = gov.client.get(f"/v1/executions/{ex}").json()
    assert after["status"] == "claimed" and after["tx_hash"] is None
    assert count(runtime, JournalEntry, JournalEntry.kind == "spend") == 0
    r = gov.client.post(f"/v1/executions/{ex}/complete", headers=ex_auth(executor_key),
                        json={"reference": "wire-9", "tx_hash": "0x" + "ab" * 32})
    assert r.status_code == 422 and r.json()["error"] == "tx_hash_not_applicable"
    r = gov.client.post(f"/v1/executions/{ex}/complete", headers=ex_auth(executor_key), json={"reference": "wire-9"})
    assert r.status_code == 200 and r.json()["status"] == "done" and r.json()["tx_hash"] is None


def test_identical_completions_at_once_all_answer_200(gov, runtime, executor_key) -> None:
    """The same completion sent to several API processes at once: one records it, the others
    answer the stored completion (200), not a conflict naming a status it no longer has."""
    import threading

    from litestar.testing import TestClient

    from governance.app import create_app
    from governance.bootstrap import bootstrap

    _spend, ex = queued_external_spend(gov)
    assert gov.client.post(f"/v1/executions/{ex}/claim", headers=ex_auth(executor_key)).status_code == 200
    n = 6
    processes = [bootstrap(runtime.settings, clock=runtime.clock) for _ in range(n)]
    start, answers = threading.Barrier(n), []

    def complete(rt) -> None:
        with TestClient(app=create_app(runtime=rt)) as c:
            start.wait()
            r = c.post(f"/v1/executions/{ex}/complete", headers=ex_auth(executor_key), json={"reference": "wire-1"})
            answers.append((r.status_code, r.json().get("error"), r.json().get("status")))

    threads = [threading.Thread(target=complete, args=(rt,)) for rt in processes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert answers == [(200, None, "done")] * n
    assert count(runtime, JournalEntry, JournalEntry.kind == "spend") == 1


def test_executor_endpoints_need_an_executor_key(gov, operator_key) -> None:
    _, ex = queued_external_spend(gov)
    for path, body in (("claim", None), ("complete", {"reference": "x"}), ("fail", {"reason": "x"})):
        r = gov.client.post(f"/v1/executions/{ex}/{path}", json=body)
        assert r.status_code == 401
        r = gov.client.post(f"/v1/executions/{ex}/{path}", json=body, headers=ex_auth(operator_key))
        assert r.status_code == 403 and r.json()["error"] == "wrong_role"


def test_guardian_cancel_of_a_queued_proposal_stops_its_execution(gov, guardian_key) -> None:
    spend, ex = queued_external_spend(gov)
    r = gov.client.post(f"/v1/proposals/{spend}/cancel", headers=ex_auth(guardian_key))
    assert r.status_code == 200 and r.json()["state"] == "canceled"
    gov.tick()
    assert gov.client.get(f"/v1/executions/{ex}").json()["status"] == "canceled"


def external_spends(gov: Gov, amounts: list[int]) -> list[int]:
    """Queued external spends from the development bucket (2,000,000 after one purchase); their
    execution ids, ready for executors."""
    a = Wallet.evm()
    gov.buy(a, 100)
    ids = [gov.proposal(a, "TreasurySpend", bucket="development", amount=x, title=f"grant {i}")
           for i, x in enumerate(amounts)]
    pass_proposals(gov, a, ids)
    gov.advance(300)
    gov.tick()
    items = gov.client.get("/v1/executions", params={"status": "ready"}).json()["items"]
    ready = {e["proposal_id"]: e["id"] for e in items}
    return [ready[pid] for pid in ids]


def test_claimed_external_spend_cannot_be_canceled_until_its_executor_fails_it(gov, executor_key,
                                                                             guardian_key) -> None:
    (ex,) = external_spends(gov, [100_000])
    pid = gov.client.get(f"/v1/executions/{ex}").json()["proposal_id"]
    auth = ex_auth(executor_key)
    assert gov.client.post(f"/v1/executions/{ex}/claim", headers=auth).status_code == 200
    # the executor may be paying right now: a cancel would strand its payment unjournaled
    r = gov.client.post(f"/v1/proposals/{pid}/cancel", headers=ex_auth(guardian_key))
    assert r.status_code == 409 and r.json()["error"] == "execution_in_flight", r.text
    assert gov.get(pid)["state"] == "queued" and development(gov) == (1_900_000, 100_000)
    gov.advance(121)  # a lapsed lease still may have been paid: still no cancel
    r = gov.client.post(f"/v1/proposals/{pid}/cancel", headers=ex_auth(guardian_key))
    assert r.status_code == 409 and r.json()["error"] == "execution_in_flight", r.text
    gov.client.post(f"/v1/executions/{ex}/claim", headers=auth)
    assert gov.client.post(f"/v1/executions/{ex}/fail", headers=auth, json={"reason": "not paid"}).status_code == 200
    r = gov.client.post(f"/v1/proposals/{pid}/cancel", headers=ex_auth(guardian_key))
    assert r.status_code == 200 and r.json()["state"] == "canceled", r.text


def development(gov: Gov) -> tuple[int, int]:
    """The development bucket: what is left to spend, and what is reserved."""
    state = gov.client.get("/v1/treasury").json()
    return state["buckets"]["development"], int(state["reserved"].get("USD", {}).get("development", "0"))


@pytest.mark.parametrize("settings_overrides", [{**SETTINGS, "spend_cap_bps": 10_000}])
def test_external_claim_reserves_the_spend_until_it_ends(gov, runtime, executor_key) -> None:
    first, second = external_spends(gov, [1_500_000, 1_500_000])  # together more than the bucket's 2,000,000
    auth = ex_auth(executor_key)
    claimed = gov.client.post(f"/v1/executions/{first}/claim", headers=auth)
    assert claimed.status_code == 200
    # the executor pays now; nothing may drain the bucket before it reports: a second claim is refused
    r = gov.client.post(f"/v1/executions/{second}/claim", headers=auth)
    assert r.status_code == 422 and r.json()["error"] == "insufficient_funds", r.text
    assert gov.client.get(f"/v1/executions/{second}").json()["status"] == "ready"  # stored nothing
    assert claimed.json()["reserved"] == "1500000"
    assert development(gov) == (500_000, 1_500_000)
    gov.advance(121)  # the lease lapses; the reservation stays: the executor may have paid already
    assert development(gov) == (500_000, 1_500_000)
    r = gov.client.post(f"/v1/executions/{first}/complete", headers=auth, json={"reference": "wire-1"})
    assert r.status_code == 409 and r.json()["error"] == "lease_expired"
    assert gov.client.post(f"/v1/executions/{first}/claim", headers=auth).status_code == 200
    r = gov.client.post(f"/v1/executions/{first}/complete", headers=auth, json={"reference": "wire-1"})
    assert r.status_code == 200 and r.json()["status"] == "done" and r.json()["reserved"] is None
    assert development(gov) == (500_000, 0)
    assert count(runtime, JournalEntry, JournalEntry.kind == "spend") == 1

    # giving up releases; so does expiry
    r = gov.client.post("/v1/treasury/purchases", headers={"Authorization": f"Bearer {gov.operator_key}"},
                        json={"buyer": Wallet.evm().address, "payment": 10_000_000, "reference": "more"})
    assert r.status_code == 201
    assert development(gov) == (2_500_000, 0)
    assert gov.client.post(f"/v1/executions/{second}/claim", headers=auth).status_code == 200
    assert development(gov) == (1_000_000, 1_500_000)
    assert gov.client.post(f"/v1/executions/{second}/fail", headers=auth, json={"reason": "bank closed"}).json()[
        "reserved"] is None
    assert development(gov) == (2_500_000, 0)
    assert gov.client.post(f"/v1/executions/{second}/claim", headers=auth).status_code == 200
    gov.advance(600)  # past eta + grace
    gov.tick()
    ex = gov.client.get(f"/v1/executions/{second}").json()
    assert ex["status"] == "expired" and ex["reserved"] is None
    assert development(gov) == (2_500_000, 0)
    with Session(runtime.engine) as s:
        assert verify_chain(s).ok


def test_completion_after_the_deadline_is_refused_as_expired(gov, runtime, executor_key) -> None:
    spend, ex = queued_external_spend(gov)
    auth = ex_auth(executor_key)
    deadline = gov.get(spend)["deadline"]
    gov.advance(deadline - gov.now - 60)  # claimed a minute before the deadline, with a two-minute lease
    claimed = gov.client.post(f"/v1/executions/{ex}/claim", headers=auth).json()
    gov.advance(60)  # the deadline, before any scheduler tick notices it
    r = gov.client.post(f"/v1/executions/{ex}/complete", headers=auth, json={"reference": "wire-late"})
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "execution_expired" and r.json()["status"] == "expired"
    after = gov.client.get(f"/v1/executions/{ex}").json()
    assert after["reference"] is None and after["attempts"] == []  # stored nothing
    assert claimed["deadline"] == deadline and claimed["lease_expires_at"] == deadline  # the executor knew
    assert gov.get(spend)["state"] == "queued"
    assert count(runtime, JournalEntry, JournalEntry.kind == "spend") == 0
    gov.tick()
    assert gov.get(spend)["state"] == "expired"
    r = gov.client.post(f"/v1/executions/{ex}/complete", headers=auth, json={"reference": "wire-late"})
    assert r.status_code == 409 and r.json()["status"] == "expired"
    assert count(runtime, JournalEntry, JournalEntry.kind == "spend") == 0


def test_claim_after_the_deadline_is_refused_as_expired(gov, executor_key) -> None:
    spend, ex = queued_external_spend(gov)
    gov.advance(gov.get(spend)["deadline"] - gov.now)
    r = gov.client.post(f"/v1/executions/{ex}/claim", headers=ex_auth(executor_key))
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "execution_expired" and r.json()["status"] == "expired"
    assert gov.client.get(f"/v1/executions/{ex}").json()["status"] == "ready"


def test_execution_status_filter_rejects_unknown_statuses(gov) -> None:
    queued_external_spend(gov)
    for status in ("ready", "claimed", "signed", "done", "expired", "canceled", "failed"):
        assert gov.client.get("/v1/executions", params={"status": status}).status_code == 200
    for status in ("bogus", "READY", "running", "settling", ""):
        r = gov.client.get("/v1/executions", params={"status": status})
        assert r.status_code == 400 and r.json()["error"] == "invalid_filter", (status, r.text)


@pytest.mark.parametrize("settings_overrides", [{**SETTINGS, "spend_cap_bps": 10_000}])
def test_a_completion_the_bucket_cannot_pay_is_422_insufficient_funds(gov, runtime, executor_key) -> None:
    """A claim made before reservations existed holds none: its completion is paid from the
    bucket, and a bucket holding less refuses it as every journal write does (422
    insufficient_funds, nothing stored), not as a 409 carrying the 422's code."""
    from governance.db import session_scope
    from treasury_exec import reservations
    from treasury_exec.models import Execution

    first, second = external_spends(gov, [1_500_000, 1_500_000])
    auth = ex_auth(executor_key)
    assert gov.client.post(f"/v1/executions/{first}/claim", headers=auth).status_code == 200
    with session_scope(runtime.engine) as s:  # the first claim as an earlier version made it: nothing reserved
        reservations.release(s, runtime, s.get(Execution, first), runtime.clock.now())
    assert gov.client.post(f"/v1/executions/{second}/claim", headers=auth).status_code == 200
    assert development(gov) == (500_000, 1_500_000)
    r = gov.client.post(f"/v1/executions/{first}/complete", headers=auth, json={"reference": "wire-1"})
    assert r.status_code == 422 and r.json()["error"] == "insufficient_funds", r.text
    assert set(r.json()) == {"error", "detail"}
    assert gov.client.get(f"/v1/executions/{first}").json()["status"] == "claimed"  # stored nothing
    assert count(runtime, JournalEntry, JournalEntry.kind == "spend") == 0


def test_an_executor_call_reads_its_key_once(gov, runtime, executor_key) -> None:
    """The key was checked by a guard, then read again by the handler for the executor's id."""
    from sqlalchemy import event

    (ex,) = external_spends(gov, [100_000])
    lookups: list[str] = []

    def count(_conn, _cursor, statement: str, *_args) -> None:
        if "FROM api_key" in statement:
            lookups.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", count)
    try:
        r = gov.client.post(f"/v1/executions/{ex}/claim", headers=ex_auth(executor_key))
    finally:
        event.remove(runtime.engine, "before_cursor_execute", count)
    assert r.status_code == 200, r.text
    assert len(lookups) == 1, lookups
