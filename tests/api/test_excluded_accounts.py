"""Excluded accounts (treasury-held tokens) weigh nothing on the ledger and holders-file
sources: no vote, no proposal, and the quorum base is the supply less what each holds, once.
The erc20 source is tested the same way on anvil (tests/chain/test_erc20_excluded.py)."""

from __future__ import annotations

import pytest

from governance.db import session_scope
from tests.support import TOKEN, Gov, Wallet
from voting.power import ExcludingAccounts, LedgerPowerSource

TREASURY = Wallet.evm()  # holds 10 of the 100 tokens; excluded
SOL_TREASURY = Wallet.solana()  # excluded too, holds nothing: an excluded account may hold nothing


@pytest.fixture(params=["ledger", "holders-file"])
def settings_overrides(request) -> dict:
    return {"power_source": request.param, "excluded_accounts": (TREASURY.address, SOL_TREASURY.address),
            "voting_delay": 0, "voting_period": 600, "proposal_threshold": TOKEN}



def holders(gov: Gov, runtime, *pairs: tuple[Wallet, int]) -> None:
    if runtime.settings.power_source == "ledger":
        for wallet, tokens in pairs:
            gov.buy(wallet, tokens)
        return
    r = gov.client.post("/v1/power/holder-lists", headers={"Authorization": f"Bearer {gov.operator_key}"},
                        json={"holders": [{"address": w.address, "balance": str(t * TOKEN)} for w, t in pairs]})
    assert r.status_code == 201, r.text


def test_excluded_account_cannot_vote_nor_propose_nor_pass_a_proposal(gov, runtime) -> None:
    a, b = Wallet.evm(), Wallet.solana()
    holders(gov, runtime, (a, 60), (b, 30), (TREASURY, 10))

    r = gov.propose(TREASURY, "PriceChange", price=110_000)
    assert r.status_code == 403 and r.json()["error"] == "below_proposal_threshold", r.text
    pid = gov.proposal(a, "PriceChange", price=110_000)
    assert gov.get(pid)["snapshot"]["total"] == str(90 * TOKEN)  # 100 less the treasury's 10, once

    r = gov.vote(TREASURY, pid, 1)
    assert r.status_code == 403 and r.json()["error"] == "no_voting_power", r.text
    power = gov.client.get(f"/v1/power/{TREASURY.address}", params={"proposal": pid}).json()
    assert power["weight"] == "0"
    assert gov.client.get(f"/v1/power/{TREASURY.address}").json()["weight"] == "0"
    assert gov.client.get(f"/v1/power/{a.address}").json()["weight"] == str(60 * TOKEN)

    gov.advance(600)
    gov.tick()
    p = gov.get(pid)
    assert p["state"] == "defeated" and p["result"]["for"] == "0", p["result"]
    assert p["result"]["supply"] == str(90 * TOKEN)


class TestListedTwice:
    @pytest.fixture
    def settings_overrides(self) -> dict:
        return {"excluded_accounts": (TREASURY.address,), "proposal_threshold": TOKEN}

    def test_an_account_listed_twice_is_subtracted_once(self, gov, runtime) -> None:
        """The settings refuse a duplicate (tests/unit/test_settings.py); the exclusion itself
        still takes an account out once, so no list can bring the quorum base to 0 and let any
        single vote pass."""
        a = Wallet.evm()
        holders(gov, runtime, (a, 60), (TREASURY, 40))
        source = ExcludingAccounts(LedgerPowerSource(runtime.token_ledger), [TREASURY.address, TREASURY.address])
        with session_scope(runtime.engine, write=False) as s:
            assert source.take_snapshot(s).total == 60 * TOKEN
            assert runtime.power.take_snapshot(s).total == 60 * TOKEN
