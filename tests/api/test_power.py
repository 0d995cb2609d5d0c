"""Voting power: the ledger source through /v1/power, and the holders-file source."""

from __future__ import annotations

import pytest

from tests.support import TOKEN, Wallet


def test_power_now_and_at_a_proposal(gov) -> None:
    a = Wallet.evm()
    gov.buy(a, 10)
    pid = gov.proposal(a, "PriceChange", price=110_000)
    gov.buy(a, 5)
    at = gov.client.get(f"/v1/power/{a.address}", params={"proposal": pid}).json()
    now = gov.client.get(f"/v1/power/{a.address}").json()
    assert at["weight"] == str(10 * TOKEN) and now["weight"] == str(15 * TOKEN)
    assert at["snapshot"]["source"] == "ledger"
    bad = gov.client.get("/v1/power/0xnope")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_address"


class TestHoldersFile:
    @pytest.fixture
    def settings_overrides(self) -> dict:
        return {"power_source": "holders-file", "voting_delay": 0, "proposal_threshold": TOKEN}

    def test_proposals_use_the_current_list(self, gov, operator_key) -> None:
        a, b = Wallet.solana(), Wallet.evm()
        auth = {"Authorization": f"Bearer {operator_key}"}
        none = gov.propose(a, "PriceChange", price=110_000)
        assert none.status_code == 409 and none.json()["error"] == "no_holder_list"
        first = gov.client.post("/v1/power/holder-lists", headers=auth, json={"label": "slot 1", "holders": [
            {"address": a.address, "balance": str(70 * TOKEN)}, {"address": b.address, "balance": str(30 * TOKEN)}]})
        assert first.status_code == 201, first.text
        assert first.json()["total"] == str(100 * TOKEN) and first.json()["merkle_root"].startswith("0x")
        pid = gov.proposal(a, "PriceChange", price=110_000)
        # a newer list does not change the proposal created under the first one
        second = gov.client.post("/v1/power/holder-lists", headers=auth, json={"holders": [
            {"address": b.address, "balance": str(500 * TOKEN)}]})
        assert second.status_code == 201
        p = gov.get(pid)
        assert p["snapshot"] == {"source": "holders-file", "ref": first.json()["id"], "total": str(100 * TOKEN),
                                 "ledger_head": {"seq": 0, "hash": "0" * 64}}  # the journal's head: empty
        r = gov.vote(b, pid, 1)
        assert r.status_code == 201 and r.json()["weight"] == str(30 * TOKEN)

    @pytest.mark.parametrize(("holders", "status", "code"), [
        ([], 422, "empty_holder_list"),
        ([{"address": "nope", "balance": "1"}], 400, "invalid_address"),
        ([{"address": "SOL", "balance": "-1"}], 400, "invalid_balance"),
        ([{"address": "SOL", "balance": "1"}, {"address": "SOL", "balance": "2"}], 422, "duplicate_holder"),
    ])
    def test_bad_lists(self, gov, operator_key, holders, status, code) -> None:
        sol = Wallet.solana().address
        holders = [{**h, "address": sol if h["address"] == "SOL" else h["address"]} for h in holders]
        r = gov.client.post("/v1/power/holder-lists", headers={"Authorization": f"Bearer {operator_key}"},
                            json={"holders": holders})
        assert r.status_code == status and r.json()["error"] == code

    def test_upload_needs_an_operator_key(self, gov) -> None:
        r = gov.client.post("/v1/power/holder-lists", json={"holders": []})
        assert r.status_code == 401
