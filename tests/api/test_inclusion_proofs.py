"""Inclusion proofs over HTTP (``GET /v1/proposals/{id}/proof``): every counted ballot of a
tallied proposal, Ethereum and Solana voters mixed, proves into the recorded root, checked
by a re-computation written here from docs/protocol.md (not the project's Merkle code); a
superseded ballot says so and gets no path; and the refusals. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sha3 import keccak_256

from tests.support import TOKEN, Gov, Wallet


@pytest.fixture
def settings_overrides() -> dict:
    return {"voting_delay": 60, "voting_period": 600, "proposal_threshold": TOKEN}


def _check(leaf_hex: str, path: list[str], root_hex: str) -> bool:
    """docs/protocol.md, Inclusion proofs: h = leafHash(x); h = nodeHash(h, s) for s in path."""
    h = keccak_256(b"\x00" + bytes.fromhex(leaf_hex[2:])).digest()
    for s in path:
        sib = bytes.fromhex(s[2:])
        lo, hi = sorted((h, sib))
        h = keccak_256(b"\x01" + lo + hi).digest()
    return "0x" + h.hex() == root_hex


def _tallied(gov: Gov, voters: list[Wallet]) -> tuple[str, dict[str, str]]:
    proposer = Wallet.evm()
    gov.buy(proposer, 10)
    for i, v in enumerate(voters):
        gov.buy(v, 1 + i)
    pid = gov.proposal(proposer, "PriceChange", price=110_000)
    gov.advance(60)
    ids = {}
    for i, v in enumerate(voters):
        r = gov.vote(v, pid, i % 3)
        assert r.status_code == 201, r.text
        ids[v.address] = r.json()["id"]
    return pid, ids


def test_every_counted_ballot_proves_into_the_recorded_root(gov: Gov) -> None:
    voters = [Wallet.evm() if i % 2 else Wallet.solana() for i in range(7)]
    pid, ids = _tallied(gov, voters)
    r = gov.client.get(f"/v1/proposals/{pid}/proof", params={"voter": voters[0].address})
    assert r.status_code == 409 and r.json()["error"] == "not_tallied" and r.json()["state"] == "active", r.text
    gov.advance(600)
    gov.tick()
    root = gov.get(pid)["result"]["merkle_root"]
    seen = set()
    for i, v in enumerate(voters):
        for params in ({"voter": v.address}, {"vote": ids[v.address]}):
            p = gov.client.get(f"/v1/proposals/{pid}/proof", params=params).json()
            assert p["counted"] is True and p["vote_id"] == ids[v.address] and p["voter"] == v.address, p
            assert p["merkle_root"] == root and p["leaves"] == len(voters) and p["choice"] == i % 3
            assert p["weight"] == str((1 + i) * TOKEN)
            # the leaf is the vote id and the weight, as the document says
            assert p["leaf"] == ids[v.address] + (((1 + i) * TOKEN).to_bytes(32, "big")).hex()
            assert _check(p["leaf"], p["path"], root), p
            assert not _check(p["leaf"][:-1] + ("0" if p["leaf"][-1] != "0" else "1"), p["path"], root)
            seen.add(p["index"])
    assert seen == set(range(len(voters)))  # one leaf each, in voter order


def test_a_superseded_ballot_says_so_and_gets_no_path(gov: Gov) -> None:
    voter, other = Wallet.solana(), Wallet.evm()
    pid, ids = _tallied(gov, [voter, other])
    first = ids[voter.address]
    gov.advance(5)
    second = gov.vote(voter, pid, 1).json()["id"]  # a vote change: the newer ballot counts
    gov.advance(600)
    gov.tick()
    p = gov.client.get(f"/v1/proposals/{pid}/proof", params={"vote": first}).json()
    assert p["counted"] is False and p["superseded_by"] == second and p["path"] == [] and p["index"] is None, p
    q = gov.client.get(f"/v1/proposals/{pid}/proof", params={"voter": voter.address}).json()
    assert q["counted"] is True and q["vote_id"] == second and q["choice"] == 1
    assert _check(q["leaf"], q["path"], q["merkle_root"])


def test_refusals_name_what_is_wrong(gov: Gov) -> None:
    voter = Wallet.evm()
    pid, _ = _tallied(gov, [voter])
    gov.advance(600)
    gov.tick()
    url = f"/v1/proposals/{pid}/proof"
    cases = [
        ({}, 400, "invalid_query"),
        ({"voter": voter.address, "vote": "0x" + "00" * 32}, 400, "invalid_query"),
        ({"vote": "0x1234"}, 400, "invalid_query"),
        ({"voter": voter.address.lower()}, 400, "invalid_address"),  # one canonical form: EIP-55
        ({"voter": Wallet.evm().address}, 404, "ballot_not_found"),
        ({"vote": "0x" + "ab" * 32}, 404, "ballot_not_found"),
    ]
    for params, status, code in cases:
        r = gov.client.get(url, params=params)
        assert r.status_code == status and r.json()["error"] == code, (params, r.text)
    r = gov.client.get(f"/v1/proposals/0x{'cd' * 32}/proof", params={"voter": voter.address})
    assert r.status_code == 404 and r.json()["error"] == "proposal_not_found"
    one = gov.client.get(url, params={"voter": voter.address}).json()
    assert one["path"] == [] and one["leaves"] == 1 and _check(one["leaf"], [], one["merkle_root"])
