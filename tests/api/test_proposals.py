"""Signed proposals over HTTP: each kind from each wallet family, and every rejection with its
status, its code, and nothing stored."""

from __future__ import annotations

import pytest
from sqlmodel import Session, func, select

from proposals.models import Proposal
from tests.support import TOKEN, Wallet, cancel_message, proposal_message

KINDS = ["PriceChange", "AllocationChange", "TreasurySpend"]


@pytest.fixture
def settings_overrides() -> dict:
    return {"voting_delay": 60, "voting_period": 600, "proposal_threshold": 5 * TOKEN}



@pytest.fixture
def evm(gov) -> Wallet:
    w = Wallet.evm()
    gov.buy(w, 1000)  # $100: the community bucket gets $5 = 5,000,000 micro-USD
    return w


@pytest.fixture
def sol(gov) -> Wallet:
    w = Wallet.solana()
    gov.buy(w, 1000)
    return w


def stored(runtime) -> int:
    with Session(runtime.engine) as s:
        return s.exec(select(func.count()).select_from(Proposal)).one()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scheme", ["eip712", "ed25519"])
def test_each_kind_from_each_wallet_is_accepted_and_read_back(gov, evm, sol, kind, scheme) -> None:
    w = evm if scheme == "eip712" else sol
    r = gov.propose(w, kind)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["kind"] == kind and body["scheme"] == scheme and body["proposer"] == w.address
    assert body["state"] == "pending"
    assert body["starts_at"] == gov.now + 60 and body["ends_at"] == gov.now + 660
    assert body["snapshot"]["source"] == "ledger"
    assert body["proposer_weight"] == str(1000 * TOKEN)
    read = gov.get(body["id"])
    assert read["message"] == body["message"] and read["signature"] == body["signature"]
    listed = gov.client.get("/v1/proposals", params={"kind": kind, "proposer": w.address}).json()
    assert [p["id"] for p in listed["items"]] == [body["id"]]


def test_identical_submission_returns_the_stored_proposal(gov, evm) -> None:
    msg = proposal_message("PriceChange", evm.address, gov.now)
    env = evm.sign(gov.domain, "PriceChange", msg)
    first = gov.client.post("/v1/proposals", json=env)
    again = gov.client.post("/v1/proposals", json=env)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert stored(gov.runtime) == 1


def test_rules_and_snapshot_are_frozen_at_creation(gov, evm, runtime) -> None:
    pid = gov.proposal(evm, "TreasurySpend")
    before = gov.get(pid)
    runtime.settings = runtime.settings.with_overrides(spend_quorum_bps=9000, voting_period=5)
    gov.buy(Wallet.evm(), 5000)
    after = gov.get(pid)
    assert after["rules"] == before["rules"] and after["snapshot"] == before["snapshot"]
    assert after["ends_at"] == before["ends_at"]


def reject(gov, env, status: int, code: str) -> dict:
    n = stored(gov.runtime)
    r = gov.client.post("/v1/proposals", json=env)
    assert r.status_code == status, r.text
    assert r.json()["error"] == code, r.json()
    assert stored(gov.runtime) == n, "a rejected proposal was stored"
    return r.json()


def signed(gov, w, kind="PriceChange", **fields):
    return w.sign(gov.domain, kind, proposal_message(kind, w.address, gov.now, **fields))


@pytest.mark.parametrize(("fields", "code"), [
    ({"price": 0}, "invalid_price"),
    ({"price": 150_001}, "price_change_too_large"),
    ({"price": 49_999}, "price_change_too_large"),
    ({"title": ""}, "title_empty"),
    ({"title": "x" * 201}, "title_too_long"),
    ({"description": "x" * 20_001}, "description_too_long"),
])
def test_price_change_rejections(gov, evm, fields, code) -> None:
    reject(gov, signed(gov, evm, **fields), 422, code)


SHARES = [("compute", 5000), ("development", 2000), ("treasury", 1500), ("buybacks", 1000), ("community", 500)]


def shares(pairs):
    return [{"bucket": b, "bps": v} for b, v in pairs]


@pytest.mark.parametrize(("pairs", "code"), [
    ([*SHARES[:-1], ("community", 499)], "allocation_not_100"),
    ([*SHARES[:-1], ("community", 501)], "allocation_not_100"),
    ([*SHARES, ("compute", 0)], "duplicate_bucket"),
    (SHARES[:-1], "missing_bucket"),
    ([*SHARES[:-1], ("marketing", 500)], "unknown_bucket"),
    ([("compute", 10001), *SHARES[1:]], "share_out_of_range"),
])
def test_allocation_rejections(gov, sol, pairs, code) -> None:
    reject(gov, signed(gov, sol, "AllocationChange", shares=shares(pairs)), 422, code)


@pytest.mark.parametrize(("fields", "code"), [
    ({"bucket": "marketing"}, "unknown_bucket"),
    ({"asset": "DOGE"}, "unknown_asset"),
    ({"recipient": "0xnot-an-address"}, "invalid_recipient"),
    ({"amount": 0}, "invalid_amount"),
    ({"amount": 500_001}, "spend_over_cap"),  # cap: 10% of the community bucket's 5,000,000
])
def test_spend_rejections(gov, evm, fields, code) -> None:
    reject(gov, signed(gov, evm, "TreasurySpend", **fields), 422, code)


def test_spend_at_the_cap_is_accepted(gov, evm) -> None:
    r = gov.client.post("/v1/proposals", json=signed(gov, evm, "TreasurySpend", amount=500_000))
    assert r.status_code == 201, r.text


def test_below_threshold_is_403(gov) -> None:
    small = Wallet.evm()
    gov.buy(small, 4)
    body = reject(gov, signed(gov, small), 403, "below_proposal_threshold")
    assert small.address in body["detail"]


def test_signature_rejections(gov, evm, sol) -> None:
    env = signed(gov, evm)
    env["message"]["title"] = "changed after signing"
    reject(gov, env, 403, "bad_signature")

    env = signed(gov, evm)
    env["signer"] = sol.address  # an ed25519 address under eip712
    reject(gov, env, 400, "invalid_address")

    other = Wallet.evm()
    env = other.sign(gov.domain, "PriceChange", proposal_message("PriceChange", evm.address, gov.now))
    env["signer"] = other.address
    reject(gov, env, 403, "signer_mismatch")

    env = signed(gov, evm)
    env["message"]["extra"] = 1
    reject(gov, env, 400, "invalid_message")

    env = signed(gov, evm)
    env["surprise"] = True
    reject(gov, env, 400, "invalid_body")

    env = signed(gov, evm)
    del env["message"]["description"]
    reject(gov, env, 400, "invalid_message")

    env = signed(gov, evm)
    env["signature"] = env["signature"][:-2]
    reject(gov, env, 400, "malformed_signature")


def test_stale_and_future_timestamps(gov, evm, runtime) -> None:
    skew = runtime.settings.max_clock_skew
    stale = evm.sign(gov.domain, "PriceChange", proposal_message("PriceChange", evm.address, gov.now - skew - 1))
    reject(gov, stale, 422, "stale_timestamp")
    future = evm.sign(gov.domain, "PriceChange", proposal_message("PriceChange", evm.address, gov.now + skew + 1))
    reject(gov, future, 422, "future_timestamp")


def test_another_deployments_signature_is_rejected(gov, evm) -> None:
    from governance.typed_data import Domain

    d = gov.domain
    for other in (Domain(name=d.name, version="1", chain_id=d.chain_id, salt="0x" + "11" * 32),
                  Domain(name=d.name, version="1", chain_id=d.chain_id + 1, salt=d.salt)):
        env = evm.sign(other, "PriceChange", proposal_message("PriceChange", evm.address, gov.now))
        reject(gov, env, 403, "bad_signature")


def test_vote_envelope_is_not_a_proposal(gov, evm) -> None:
    env = evm.sign(gov.domain, "Vote", {"voter": evm.address, "proposal": "0x" + "00" * 32, "choice": 1,
                                        "reason": "", "timestamp": gov.now})
    reject(gov, env, 400, "wrong_message_type")


def test_cancel_by_proposer_while_pending_then_not(gov, evm, sol) -> None:
    pid = gov.proposal(evm)
    stranger = gov.client.post(f"/v1/proposals/{pid}/cancel",
                               json=sol.sign(gov.domain, "Cancel", cancel_message(sol.address, pid, gov.now)))
    assert stranger.status_code == 403 and stranger.json()["error"] == "not_allowed_to_cancel"
    assert gov.get(pid)["state"] == "pending"

    later = gov.proposal(evm, title="another")
    gov.advance(60)  # now active: the proposer may no longer cancel
    r = gov.client.post(f"/v1/proposals/{later}/cancel",
                        json=evm.sign(gov.domain, "Cancel", cancel_message(evm.address, later, gov.now)))
    assert r.status_code == 409 and r.json()["error"] == "wrong_state" and r.json()["state"] == "active"

    ok = gov.client.post(f"/v1/proposals/{pid}/cancel",
                         json=evm.sign(gov.domain, "Cancel", cancel_message(evm.address, pid, gov.now)))
    assert ok.status_code == 409  # pid is active too now
    listing = gov.client.get("/v1/proposals", params={"state": "active"}).json()
    assert {p["id"] for p in listing["items"]} == {pid, later}


def test_cancel_by_proposer_while_pending(gov, evm) -> None:
    pid = gov.proposal(evm)
    r = gov.client.post(f"/v1/proposals/{pid}/cancel",
                        json=evm.sign(gov.domain, "Cancel", cancel_message(evm.address, pid, gov.now)))
    assert r.status_code == 200 and r.json()["state"] == "canceled"
    assert r.json()["canceled_by"] == evm.address


def test_cancel_by_guardian_key_and_guardian_address(gov, evm, runtime, guardian_key) -> None:
    pid = gov.proposal(evm)
    gov.advance(60)
    bad = gov.client.post(f"/v1/proposals/{pid}/cancel", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    r = gov.client.post(f"/v1/proposals/{pid}/cancel", headers={"Authorization": f"Bearer {guardian_key}"})
    assert r.status_code == 200 and r.json()["state"] == "canceled"

    guardian = Wallet.solana()
    runtime.settings = runtime.settings.with_overrides(guardians=(guardian.address,))
    pid2 = gov.proposal(evm, title="second")
    gov.advance(60)
    r = gov.client.post(f"/v1/proposals/{pid2}/cancel",
                        json=guardian.sign(gov.domain, "Cancel", cancel_message(guardian.address, pid2, gov.now)))
    assert r.status_code == 200 and r.json()["canceled_by"] == guardian.address


def test_listing_paginates_without_gaps_or_duplicates(gov, evm) -> None:
    ids = {gov.proposal(evm, title=f"p{i}") for i in range(7)}
    seen, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = gov.client.get("/v1/proposals", params=params).json()
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 7 and set(seen) == ids


def test_unknown_proposal_is_404(gov) -> None:
    r = gov.client.get("/v1/proposals/0x" + "00" * 32)
    assert r.status_code == 404 and r.json()["error"] == "proposal_not_found"
    r = gov.client.get("/v1/proposals/not-an-id")
    assert r.status_code == 400
