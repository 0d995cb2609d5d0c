"""The token economy over HTTP: purchases and their exact split, idempotent replay, buybacks,
the journal, balances at past sequences, operator key authentication. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlmodel import Session, func, select

from governance.db import session_scope
from governance.keys import revoke_key
from tests.support import TOKEN, Wallet
from treasury_exec import ledger, service
from treasury_exec.journal import verify_chain
from treasury_exec.models import JournalEntry, JournalPosting

BUCKETS = ("compute", "development", "treasury", "buybacks", "community")


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def buy(client, key, buyer: str, payment: int, reference: str):
    return client.post("/v1/treasury/purchases", headers=auth(key),
                       json={"buyer": buyer, "payment": payment, "reference": reference})


def entries(runtime) -> int:
    with Session(runtime.engine) as s:
        return s.exec(select(func.count()).select_from(JournalEntry)).one()


@pytest.mark.parametrize(("payment", "split"), [
    (1, {"compute": 0, "development": 0, "treasury": 1, "buybacks": 0, "community": 0}),
    (7, {"compute": 3, "development": 1, "treasury": 3, "buybacks": 0, "community": 0}),
    (9_999, {"compute": 4999, "development": 1999, "treasury": 1503, "buybacks": 999, "community": 499}),
    (10_001, {"compute": 5000, "development": 2000, "treasury": 1501, "buybacks": 1000, "community": 500}),
    (123_456_789, {"compute": 61_728_394, "development": 24_691_357, "treasury": 18_518_521,
                   "buybacks": 12_345_678, "community": 6_172_839}),
])
def test_purchase_mints_at_the_price_and_splits_exactly(client, operator_key, payment, split) -> None:
    w = Wallet.evm()
    r = buy(client, operator_key, w.address, payment, "p1")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["split"] == split and sum(split.values()) == payment
    assert body["tokens"] == str(payment * 10**18 // 100_000)
    state = client.get("/v1/treasury").json()
    assert state["buckets"] == split
    assert state["supply"] == body["tokens"]


def test_solana_buyer(client, operator_key) -> None:
    w = Wallet.solana()
    r = buy(client, operator_key, w.address, 100_000, "sol")
    assert r.status_code == 201 and r.json()["tokens"] == str(TOKEN)


def test_replayed_reference_returns_the_first_result(client, operator_key, runtime) -> None:
    w = Wallet.evm()
    first = buy(client, operator_key, w.address, 500_000, "order-42")
    n = entries(runtime)
    again = buy(client, operator_key, w.address, 500_000, "order-42")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert entries(runtime) == n
    other = buy(client, operator_key, w.address, 600_000, "order-42")
    assert other.status_code == 409 and other.json()["error"] == "reference_conflict"
    assert entries(runtime) == n


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"buyer": "0xabc", "payment": 1, "reference": "r"}, 400, "invalid_address"),
    ({"buyer": "LOWER", "payment": 1, "reference": "r"}, 400, "invalid_address"),
    ({"buyer": "EVM", "payment": 0, "reference": "r"}, 422, "invalid_amount"),
    ({"buyer": "EVM", "payment": -5, "reference": "r"}, 422, "invalid_amount"),
    ({"buyer": "EVM", "payment": "100", "reference": "r"}, 400, "invalid_body"),
    ({"buyer": "EVM", "payment": 1, "reference": "r", "extra": 1}, 400, "invalid_body"),
    ({"buyer": "EVM", "payment": 1}, 400, "invalid_body"),
    ({"buyer": "EVM", "payment": 1, "reference": ""}, 400, "invalid_body"),
])
def test_bad_purchases_store_nothing(client, operator_key, runtime, body, status, code) -> None:
    w = Wallet.evm()
    body = {k: (w.address if v == "EVM" else w.address.lower() if v == "LOWER" else v) for k, v in body.items()}
    r = client.post("/v1/treasury/purchases", headers=auth(operator_key), json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"] == code
    assert entries(runtime) == 0


def test_price_too_high_for_payment(client, operator_key, runtime) -> None:
    runtime.settings = runtime.settings.with_overrides(token_decimals=0)
    r = buy(client, operator_key, Wallet.evm().address, 99_999, "tiny")
    assert r.status_code == 422 and r.json()["error"] == "payment_too_small"


def test_buyback_spends_bucket_and_burns(client, operator_key, runtime) -> None:
    w = Wallet.evm()
    buy(client, operator_key, w.address, 10_000_000, "p")  # 100 tokens; buybacks bucket 1,000,000
    r = client.post("/v1/treasury/buybacks", headers=auth(operator_key),
                    json={"seller": w.address, "amount": 400_000, "tokens": str(30 * TOKEN), "reference": "b1"})
    assert r.status_code == 201, r.text
    state = client.get("/v1/treasury").json()
    assert state["buckets"]["buybacks"] == 600_000
    assert state["supply"] == str(70 * TOKEN)


def test_buyback_refused_when_the_bucket_lacks_funds(client, operator_key, runtime) -> None:
    w = Wallet.evm()
    buy(client, operator_key, w.address, 10_000_000, "p")
    n = entries(runtime)
    r = client.post("/v1/treasury/buybacks", headers=auth(operator_key),
                    json={"seller": w.address, "amount": 1_000_001, "tokens": str(TOKEN), "reference": "b"})
    assert r.status_code == 422 and r.json()["error"] == "insufficient_funds"
    r = client.post("/v1/treasury/buybacks", headers=auth(operator_key),
                    json={"seller": w.address, "amount": 1, "tokens": str(101 * TOKEN), "reference": "b"})
    assert r.status_code == 422 and r.json()["error"] == "insufficient_tokens"
    assert entries(runtime) == n
    assert client.get("/v1/treasury").json()["buckets"]["buybacks"] == 1_000_000


def test_balances_and_supply_at_past_sequences(client, operator_key, runtime) -> None:
    a, b = Wallet.evm(), Wallet.solana()
    buy(client, operator_key, a.address, 1_000_000, "1")  # seq 1: a 10
    buy(client, operator_key, b.address, 500_000, "2")  # seq 2: b 5
    with session_scope(runtime.engine) as s:
        service.transfer_tokens(s, runtime, sender=a.address, recipient=b.address, amount=4 * TOKEN,
                                reference="t")  # seq 3
    client.post("/v1/treasury/buybacks", headers=auth(operator_key),
                json={"seller": b.address, "amount": 1, "tokens": str(TOKEN), "reference": "bb"})  # seq 4
    with Session(runtime.engine) as s:
        assert ledger.current_seq(s) == 4
        assert [ledger.balance_at(s, a.address, q) for q in range(5)] == [0, 10 * TOKEN, 10 * TOKEN, 6 * TOKEN,
                                                                          6 * TOKEN]
        assert [ledger.balance_at(s, b.address, q) for q in range(5)] == [0, 0, 5 * TOKEN, 9 * TOKEN, 8 * TOKEN]
        assert [ledger.supply_at(s, q) for q in range(5)] == [0, 10 * TOKEN, 15 * TOKEN, 15 * TOKEN, 14 * TOKEN]


def test_journal_tamper_is_detected_and_named(client, operator_key, runtime, database_url, monkeypatch) -> None:
    from click.testing import CliRunner

    from governance.cli import main

    for i in range(5):
        buy(client, operator_key, Wallet.evm().address, 1_000_000 + i, f"p{i}")
    with Session(runtime.engine) as s:
        assert verify_chain(s).ok
    monkeypatch.setenv("DAO_DATABASE_URL", database_url)
    ok = CliRunner().invoke(main, ["ledger", "verify"])
    assert ok.exit_code == 0 and "journal ok: 5 entries" in ok.output
    with Session(runtime.engine) as s:
        posting = s.exec(select(JournalPosting).where(JournalPosting.entry_seq == 3,
                                                      JournalPosting.account == "bucket:compute")).one()
        s.execute(text("UPDATE journal_posting SET amount = :v WHERE id = :id"),
                  {"v": str(posting.amount + 1) if runtime.engine.dialect.name == "sqlite" else posting.amount + 1,
                   "id": posting.id})
        s.commit()
        report = verify_chain(s)
    assert not report.ok and report.broken_at == 3
    bad = CliRunner().invoke(main, ["ledger", "verify"])
    assert bad.exit_code == 1 and "BROKEN at entry 3" in bad.output


def test_edited_reference_is_detected(client, operator_key, runtime) -> None:
    for i in range(3):
        buy(client, operator_key, Wallet.evm().address, 1_000_000, f"p{i}")
    with Session(runtime.engine) as s:
        s.execute(text("UPDATE journal_entry SET reference = 'forged' WHERE seq = 2"))
        s.commit()
        report = verify_chain(s)
    assert (report.ok, report.broken_at) == (False, 2)


def test_ledger_pagination_has_no_gaps_or_duplicates(client, operator_key) -> None:
    for i in range(7):
        buy(client, operator_key, Wallet.evm().address, 100_000, f"p{i}")
    seqs, cursor = [], 0
    while True:
        page = client.get("/v1/treasury/ledger", params={"cursor": cursor, "limit": 3}).json()
        seqs += [e["seq"] for e in page["items"]]
        if not page["next_cursor"]:
            break
        cursor = int(page["next_cursor"])
    assert seqs == list(range(1, 8))
    first = client.get("/v1/treasury/ledger", params={"limit": 1}).json()["items"][0]
    assert first["prev_hash"] == "0" * 64 and len(first["postings"]) == 8  # payment, 5 buckets, mint


def test_history_shows_initial_parameters(client) -> None:
    items = client.get("/v1/treasury/history").json()["items"]
    assert [(v["kind"], v["origin"]) for v in items] == [("price", "initial"), ("allocation", "initial")]
    assert items[0]["value"] == 100_000 and items[1]["value"]["compute"] == 5000


def test_operator_key_authentication(client, runtime, operator_key, executor_key) -> None:
    body = {"buyer": Wallet.evm().address, "payment": 1000, "reference": "k"}
    missing = client.post("/v1/treasury/purchases", json=body)
    assert missing.status_code == 401 and missing.json()["error"] == "missing_api_key"
    wrong = client.post("/v1/treasury/purchases", json=body, headers=auth("dao_op_not-a-real-key"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_api_key"
    other_role = client.post("/v1/treasury/purchases", json=body, headers=auth(executor_key))
    assert other_role.status_code == 403 and other_role.json()["error"] == "wrong_role"
    with session_scope(runtime.engine) as s:
        from governance.keys import list_keys

        key_id = next(k.id for k in list_keys(s, "operator"))
        revoke_key(s, key_id, now=runtime.clock.now())
    revoked = client.post("/v1/treasury/purchases", json=body, headers=auth(operator_key))
    assert revoked.status_code == 401 and revoked.json()["error"] == "revoked_api_key"
    assert entries(runtime) == 0
