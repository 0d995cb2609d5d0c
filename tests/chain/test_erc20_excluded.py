"""Excluded accounts on the erc20 source, against a real anvil node and over HTTP: the
treasury holding 10 of 100 tokens can neither propose, nor vote, nor pass a proposal alone,
on a plain ERC-20 and on an ERC20Votes token; the quorum base is 90."""

from __future__ import annotations

import pytest

from tests.support import TOKEN, Gov, Wallet

TREASURY = Wallet.evm()


@pytest.fixture(params=["PlainToken", "VotesToken"])
def token(request, anvil, deploy):
    c = deploy(request.param, "Session", "SES")
    c.votes = request.param == "VotesToken"
    return c


@pytest.fixture
def settings_overrides(anvil, token) -> dict:
    # price quorum 10% of 90 is 9: the treasury's 10 alone would have passed it
    return {"power_source": "erc20", "rpc_url": anvil.rpc_url, "erc20_token": token.address, "confirmations": 1,
            "voting_delay": 0, "voting_period": 600, "proposal_threshold": TOKEN,
            "excluded_accounts": (TREASURY.address,)}


def hold(anvil, token, wallet: Wallet, tokens: int) -> None:
    token.functions.mint(wallet.address, tokens * TOKEN).transact({"from": anvil.accounts[0]})
    if token.votes:  # ERC20Votes counts delegated votes: each holder delegates to itself, from its own account
        anvil.w3.provider.make_request("anvil_setBalance", [wallet.address, hex(10**18)])
        anvil.w3.provider.make_request("anvil_impersonateAccount", [wallet.address])
        token.functions.delegate(wallet.address).transact({"from": wallet.address})
        anvil.w3.provider.make_request("anvil_stopImpersonatingAccount", [wallet.address])


def test_excluded_account_has_no_weight_on_erc20(client, runtime, anvil, token) -> None:
    gov = Gov(client, runtime, "")
    proposer, voter = Wallet.evm(), Wallet.evm()
    for wallet, tokens in ((proposer, 60), (voter, 30), (TREASURY, 10)):
        hold(anvil, token, wallet, tokens)
    anvil.mine(2)

    r = gov.propose(TREASURY, "PriceChange", price=110_000)
    assert r.status_code == 403 and r.json()["error"] == "below_proposal_threshold", r.text
    pid = gov.proposal(proposer, "PriceChange", price=110_000)
    assert gov.get(pid)["snapshot"]["total"] == str(90 * TOKEN)  # 100 less the treasury's 10

    r = gov.vote(TREASURY, pid, 1)
    assert r.status_code == 403 and r.json()["error"] == "no_voting_power", r.text
    assert client.get(f"/v1/power/{TREASURY.address}", params={"proposal": pid}).json()["weight"] == "0"
    assert client.get(f"/v1/power/{TREASURY.address}").json()["weight"] == "0"
    assert client.get(f"/v1/power/{voter.address}", params={"proposal": pid}).json()["weight"] == str(30 * TOKEN)

    gov.advance(600)
    gov.tick()
    p = gov.get(pid)
    assert p["state"] == "defeated" and p["result"]["for"] == "0", p["result"]
