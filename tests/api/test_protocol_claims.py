"""What docs/protocol.md says the service answers, checked against the service over HTTP: the
same-second tie rule, what a replay of a superseded vote returns and where a client sees that
it no longer counts, the status and code of a bad signature, and that a holder list uploaded
through the API has the root the document's construction (and its vectors) give."""

from __future__ import annotations

import json
from pathlib import Path

import base58
import pytest

from tests.support import TOKEN, Gov, Wallet, vote_message

VECTORS = Path(__file__).resolve().parents[2] / "docs" / "vectors"


@pytest.fixture
def settings_overrides() -> dict:
    return {"voting_delay": 60, "voting_period": 600, "proposal_threshold": TOKEN}


def _open(gov: Gov) -> tuple[str, Wallet]:
    proposer, voter = Wallet.evm(), Wallet.solana()
    gov.buy(proposer, 10)
    gov.buy(voter, 5)
    pid = gov.proposal(proposer, "PriceChange", price=110_000)
    gov.advance(60)
    return pid, voter


def _signed(gov: Gov, voter: Wallet, pid: str, choice: int, at: int, reason: str) -> tuple[str, dict]:
    msg = vote_message(voter.address, pid, choice, at, reason)
    return "0x" + gov.runtime.encoder.digest("Vote", msg).hex(), voter.sign(gov.domain, "Vote", msg)


def _two_in_one_second(gov: Gov, voter: Wallet, pid: str) -> tuple[tuple[str, dict], tuple[str, dict]]:
    """Two votes of ``voter`` signed in the same second: (lower id, greater id)."""
    a = _signed(gov, voter, pid, 0, gov.now, "first")
    b = _signed(gov, voter, pid, 1, gov.now, "second")
    lo, hi = sorted((a, b), key=lambda x: int(x[0], 16))
    return lo, hi


def test_equal_timestamps_the_greater_id_counts_whichever_arrives_first(gov) -> None:
    pid, voter = _open(gov)
    (lo_id, lo), (hi_id, hi) = _two_in_one_second(gov, voter, pid)
    assert gov.client.post("/v1/votes", json=lo).status_code == 201
    r = gov.client.post("/v1/votes", json=hi)
    assert r.status_code == 201 and r.json()["replaces"] == lo_id

    pid2, voter2 = _open(gov)
    (lo_id, lo), (hi_id, hi) = _two_in_one_second(gov, voter2, pid2)
    assert gov.client.post("/v1/votes", json=hi).status_code == 201
    r = gov.client.post("/v1/votes", json=lo)
    assert r.status_code == 409 and r.json()["error"] == "superseded" and r.json()["vote"] == hi_id


def test_a_replay_of_a_superseded_vote_answers_its_stored_receipt_and_the_log_says_superseded(gov) -> None:
    pid, voter = _open(gov)
    old_id, old = _signed(gov, voter, pid, 0, gov.now - 10, "")
    first = gov.client.post("/v1/votes", json=old)
    assert first.status_code == 201
    newer = gov.client.post("/v1/votes", json=_signed(gov, voter, pid, 1, gov.now, "")[1])
    assert newer.status_code == 201 and newer.json()["replaces"] == old_id
    gov.advance(600)  # voting closed: a replay is still answered from the store
    again = gov.client.post("/v1/votes", json=old)
    assert again.status_code == 200
    assert again.json() == first.json() and "superseded" not in again.json()
    log = {b["id"]: b["superseded"] for b in gov.client.get(f"/v1/proposals/{pid}/votes").json()["items"]}
    assert log == {old_id: True, newer.json()["id"]: False}


def test_a_bad_signature_is_403_bad_signature_and_stores_nothing(gov) -> None:
    pid, voter = _open(gov)
    _, env = _signed(gov, voter, pid, 1, gov.now, "")
    raw = bytearray(base58.b58decode(env["signature"]))
    raw[0] ^= 1
    r = gov.client.post("/v1/votes", json=env | {"signature": base58.b58encode(bytes(raw)).decode()})
    assert r.status_code == 403 and r.json()["error"] == "bad_signature"
    assert gov.client.get(f"/v1/proposals/{pid}/votes").json()["items"] == []


def test_a_holder_list_uploaded_has_the_root_of_the_vectors(gov) -> None:
    trees = json.loads((VECTORS / "merkle.json").read_text(encoding="utf-8"))["holderTrees"]
    for t in trees:
        if not t["n"]:
            continue  # an empty list is refused (422 empty_holder_list)
        r = gov.client.post("/v1/power/holder-lists", headers={"Authorization": f"Bearer {gov.operator_key}"},
                            json={"holders": t["holders"]})
        assert r.status_code == 201, r.text
        assert r.json()["merkle_root"] == t["root"]
        assert r.json()["total"] == str(sum(int(h["balance"]) for h in t["holders"]))
