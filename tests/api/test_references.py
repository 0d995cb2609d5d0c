"""Writes with a client reference (purchases, buybacks, deposits, holder lists) are idempotent:
201 once, 200 with the stored record for the same body, 409 ``reference_conflict`` for
another; one record per reference even when identical requests race (several API instances
on one database, as several server processes would be). SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlmodel import Session, func, select

from governance.app import create_app
from governance.bootstrap import bootstrap
from governance.runtime import Runtime
from tests.support import TOKEN, Wallet
from treasury_exec.journal import verify_chain
from treasury_exec.models import JournalEntry, Purchase
from voting.models import HolderBalance, HolderList

ASSETS = json.dumps({"ETH": {"native": True, "decimals": 18, "mode": "external",
                             "senders": ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"]}})


@pytest.fixture
def settings_overrides() -> dict:
    return {"chain_assets": ASSETS, "rpc_url": "http://127.0.0.1:9"}  # the RPC is never called here


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def deposit(reference: str, amount: int, bucket: str = "community", asset: str = "ETH") -> dict[str, Any]:
    return {"bucket": bucket, "asset": asset, "amount": str(amount), "reference": reference}


def count(runtime: Runtime, model: Any, *where: Any) -> int:
    with Session(runtime.engine) as s:
        return s.exec(select(func.count()).select_from(model).where(*where)).one()


def race(runtime: Runtime, key: str, requests: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Send every request at once, each from its own thread through its own API instance
    (its own engine and connections) on the shared database; the answers, in order."""
    barrier = threading.Barrier(len(requests))
    answers: list[Any] = [None] * len(requests)

    def send(i: int, path: str, body: dict[str, Any]) -> None:
        instance = bootstrap(runtime.settings, clock=runtime.clock)
        with TestClient(app=create_app(runtime=instance)) as client:
            barrier.wait(timeout=30)
            answers[i] = client.post(path, json=body, headers=auth(key))

    threads = [threading.Thread(target=send, args=(i, path, body)) for i, (path, body) in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(a is not None for a in answers), "a request did not finish"
    return answers


# --- deposits --------------------------------------------------------------------------------

def test_replayed_deposit_answers_the_stored_deposit(client, operator_key, runtime) -> None:
    first = client.post("/v1/treasury/deposits", headers=auth(operator_key), json=deposit("d-1", 5 * TOKEN))
    assert first.status_code == 201, first.text
    client.post("/v1/treasury/deposits", headers=auth(operator_key), json=deposit("d-2", 2 * TOKEN))
    again = client.post("/v1/treasury/deposits", headers=auth(operator_key), json=deposit("d-1", 5 * TOKEN))
    assert again.status_code == 200, again.text
    # the record stored the first time, not an echo of the request nor today's balance
    assert again.json() == first.json()
    assert first.json()["balance"] == str(5 * TOKEN) and first.json()["reference"] == "d-1"
    assert count(runtime, JournalEntry, JournalEntry.kind == "deposit") == 2
    assert client.get("/v1/treasury").json()["assets"]["ETH"]["community"] == str(7 * TOKEN)


@pytest.mark.parametrize("change", [{"amount": str(6 * TOKEN)}, {"bucket": "compute"}])
def test_deposit_reference_with_another_body_is_a_conflict(client, operator_key, runtime, change) -> None:
    body = deposit("d-1", 5 * TOKEN)
    assert client.post("/v1/treasury/deposits", headers=auth(operator_key), json=body).status_code == 201
    other = client.post("/v1/treasury/deposits", headers=auth(operator_key), json=body | change)
    assert other.status_code == 409, other.text
    assert other.json()["error"] == "reference_conflict"
    assert count(runtime, JournalEntry, JournalEntry.kind == "deposit") == 1
    assert client.get("/v1/treasury").json()["assets"]["ETH"] == {"community": str(5 * TOKEN)}


def test_concurrent_identical_deposits_journal_each_reference_once(runtime, operator_key) -> None:
    amounts = {f"race-{i}": (i + 1) * TOKEN for i in range(6)}
    pairs = [("/v1/treasury/deposits", deposit(ref, amount)) for ref, amount in amounts.items() for _ in range(2)]
    answers = race(runtime, operator_key, pairs)
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {201: 6, 200: 6}, [a.text for a in answers]
    by_reference: dict[str, list[dict]] = {}
    for a in answers:
        by_reference.setdefault(a.json()["reference"], []).append(a.json())
    assert all(first == second for first, second in by_reference.values())  # both answers: the one record
    with Session(runtime.engine) as s:
        journaled = Counter(e.reference for e in s.exec(select(JournalEntry).where(JournalEntry.kind == "deposit")))
        assert journaled == {ref: 1 for ref in amounts}
        assert verify_chain(s).ok
    with TestClient(app=create_app(runtime=bootstrap(runtime.settings, clock=runtime.clock))) as c:
        assert c.get("/v1/treasury").json()["assets"]["ETH"] == {"community": str(sum(amounts.values()))}


# --- purchases and buybacks -------------------------------------------------------------------

def test_concurrent_identical_purchases_answer_201_once_and_200_otherwise(runtime, operator_key) -> None:
    body = {"buyer": Wallet.evm().address, "payment": 1_000_000, "reference": "order-1"}
    answers = race(runtime, operator_key, [("/v1/treasury/purchases", body)] * 6)
    assert sorted(a.status_code for a in answers) == [200] * 5 + [201], [a.text for a in answers]
    assert len({json.dumps(a.json(), sort_keys=True) for a in answers}) == 1
    assert count(runtime, Purchase) == 1
    assert count(runtime, JournalEntry) == 1


def test_concurrent_identical_buybacks_pay_once(runtime, operator_key) -> None:
    seller = Wallet.evm()
    with TestClient(app=create_app(runtime=bootstrap(runtime.settings, clock=runtime.clock))) as c:
        c.post("/v1/treasury/purchases", headers=auth(operator_key),
               json={"buyer": seller.address, "payment": 10_000_000, "reference": "p"})  # buybacks bucket: 1,000,000
    body = {"seller": seller.address, "amount": 600_000, "tokens": str(10 * TOKEN), "reference": "bb-1"}
    answers = race(runtime, operator_key, [("/v1/treasury/buybacks", body)] * 4)
    assert sorted(a.status_code for a in answers) == [200] * 3 + [201], [a.text for a in answers]
    assert count(runtime, JournalEntry, JournalEntry.kind == "buyback") == 1


def test_buyback_replay_answers_200_and_another_body_409(client, operator_key, runtime) -> None:
    seller = Wallet.evm()
    client.post("/v1/treasury/purchases", headers=auth(operator_key),
                json={"buyer": seller.address, "payment": 10_000_000, "reference": "p"})
    body = {"seller": seller.address, "amount": 600_000, "tokens": str(10 * TOKEN), "reference": "bb"}
    first = client.post("/v1/treasury/buybacks", headers=auth(operator_key), json=body)
    # replayed after the bucket ran low: the stored buyback, not a refusal for lack of funds
    again = client.post("/v1/treasury/buybacks", headers=auth(operator_key), json=body)
    assert (first.status_code, again.status_code) == (201, 200) and again.json() == first.json()
    other = client.post("/v1/treasury/buybacks", headers=auth(operator_key), json=body | {"tokens": str(TOKEN)})
    assert other.status_code == 409 and other.json()["error"] == "reference_conflict"
    assert count(runtime, JournalEntry, JournalEntry.kind == "buyback") == 1


def test_purchase_at_a_price_past_a_32_bit_integer(client, operator_key, runtime) -> None:
    # $3,000 a token is 3,000,000,000 micro-USD: past PostgreSQL's INTEGER, which was a 500
    runtime.settings = runtime.settings.with_overrides(initial_price=3_000_000_000)
    from governance.db import session_scope
    from treasury_exec.service import add_parameter_version

    with session_scope(runtime.engine) as s:
        add_parameter_version(s, "price", 3_000_000_000, now=runtime.clock.now(), proposal_id=None)
    body = {"buyer": Wallet.evm().address, "payment": 6_000_000_000, "reference": "dear"}
    r = client.post("/v1/treasury/purchases", headers=auth(operator_key), json=body)
    assert r.status_code == 201, r.text
    assert r.json()["price"] == 3_000_000_000 and r.json()["tokens"] == str(2 * TOKEN)
    again = client.post("/v1/treasury/purchases", headers=auth(operator_key), json=body)
    assert again.status_code == 200 and again.json() == r.json()


# --- holder lists ----------------------------------------------------------------------------

class TestHolderListReference:
    @pytest.fixture
    def settings_overrides(self) -> dict:
        return {"power_source": "holders-file"}

    def test_same_list_again_is_the_stored_list(self, client, operator_key, runtime) -> None:
        a, b = Wallet.solana().address, Wallet.evm().address
        holders = [{"address": a, "balance": str(70 * TOKEN)}, {"address": b, "balance": str(30 * TOKEN)}]
        body = {"label": "slot 1", "reference": "snap-1", "holders": holders}
        first = client.post("/v1/power/holder-lists", headers=auth(operator_key), json=body)
        assert first.status_code == 201, first.text
        # the same list in another order is the same list (its canonical form is its Merkle root)
        again = client.post("/v1/power/holder-lists", headers=auth(operator_key),
                            json=body | {"holders": holders[::-1]})
        assert again.status_code == 200, again.text
        assert again.json() == first.json() and first.json()["reference"] == "snap-1"
        assert count(runtime, HolderList) == 1 and count(runtime, HolderBalance) == 2

    @pytest.mark.parametrize("change", [{"label": "slot 2"}, {"balance": str(31 * TOKEN)}])
    def test_another_list_under_the_reference_is_a_conflict(self, client, operator_key, runtime, change) -> None:
        a = Wallet.solana().address
        body = {"label": "slot 1", "reference": "snap-1", "holders": [{"address": a, "balance": str(30 * TOKEN)}]}
        assert client.post("/v1/power/holder-lists", headers=auth(operator_key), json=body).status_code == 201
        other = {**body, "label": change.get("label", body["label"]),
                 "holders": [{"address": a, "balance": change.get("balance", str(30 * TOKEN))}]}
        r = client.post("/v1/power/holder-lists", headers=auth(operator_key), json=other)
        assert r.status_code == 409 and r.json()["error"] == "reference_conflict", r.text
        assert count(runtime, HolderList) == 1

    def test_without_a_reference_every_upload_is_a_new_list(self, client, operator_key, runtime) -> None:
        body = {"holders": [{"address": Wallet.evm().address, "balance": "1"}]}
        ids = [client.post("/v1/power/holder-lists", headers=auth(operator_key), json=body) for _ in range(2)]
        assert [r.status_code for r in ids] == [201, 201] and ids[0].json()["id"] != ids[1].json()["id"]
        assert ids[0].json()["reference"] is None

    def test_concurrent_identical_uploads_store_one_list(self, runtime, operator_key) -> None:
        holders = [{"address": Wallet.evm().address, "balance": str(i + 1)} for i in range(20)]
        body = {"label": "slot 9", "reference": "snap-9", "holders": holders}
        answers = race(runtime, operator_key, [("/v1/power/holder-lists", body)] * 4)
        assert sorted(a.status_code for a in answers) == [200] * 3 + [201], [a.text for a in answers]
        assert len({a.json()["id"] for a in answers}) == 1
        assert count(runtime, HolderList) == 1 and count(runtime, HolderBalance) == 20
