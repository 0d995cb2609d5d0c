"""One key, one identity: a Solana address is accepted only written exactly as base58 encodes
its key, wherever it enters (signed envelopes, purchases, holder lists, the power path).

``base58.b58decode`` strips trailing whitespace, so "ADDR " and "ADDR\\n" decoded to ADDR's key:
the same wallet could sign as several identities, each escaping exact-match lists (guardians,
excluded accounts, holder lists). Only a 43-digit address leaves room for the extra character
within an address's length, so these tests use one.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlmodel import Session, func, select

from tests.support import TOKEN, Wallet, proposal_message, vote_message
from treasury_exec.models import JournalEntry, Purchase
from voting.models import Ballot, HolderList

SUFFIXES = [" ", "\n", "\t"]


@pytest.fixture
def settings_overrides() -> dict:
    return {"voting_delay": 0, "proposal_threshold": TOKEN}



def stored(runtime) -> dict[str, int]:
    with Session(runtime.engine) as s:
        return {m.__name__: s.exec(select(func.count()).select_from(m)).one()
                for m in (Purchase, JournalEntry, Ballot, HolderList)}


def spaced(wallet: Wallet, suffix: str) -> Wallet:
    """The same key, claiming the address with ``suffix`` appended."""
    return Wallet("ed25519", wallet.address + suffix, wallet._key)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_signed_envelopes_from_a_solana_signer_with_trailing_whitespace_are_refused(gov, runtime, suffix) -> None:
    holder, other = Wallet.solana(digits=43), Wallet.evm()
    gov.buy(holder, 10)
    gov.buy(other, 10)
    pid = gov.proposal(other, "PriceChange", price=110_000)
    before = stored(runtime)
    twin = spaced(holder, suffix)

    vote = gov.client.post("/v1/votes", json=twin.sign(gov.domain, "Vote", vote_message(twin.address, pid, 1, gov.now)))
    assert vote.status_code == 400 and vote.json()["error"] == "invalid_address", vote.text
    msg = proposal_message("PriceChange", twin.address, gov.now, price=105_000)
    proposal = gov.client.post("/v1/proposals", json=twin.sign(gov.domain, "PriceChange", msg))
    assert proposal.status_code == 400 and proposal.json()["error"] == "invalid_address", proposal.text
    assert stored(runtime) == before
    assert gov.vote(holder, pid, 1).status_code == 201  # the wallet itself votes under its one address


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_purchase_for_a_solana_address_with_trailing_whitespace_is_refused(gov, runtime, suffix) -> None:
    buyer = Wallet.solana(digits=43)
    before = stored(runtime)
    r = gov.client.post("/v1/treasury/purchases", headers={"Authorization": f"Bearer {gov.operator_key}"},
                        json={"buyer": buyer.address + suffix, "payment": 1_000_000, "reference": "spaced"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_address", r.text
    assert stored(runtime) == before


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_power_of_a_solana_address_with_trailing_whitespace_is_refused(gov, suffix) -> None:
    holder = Wallet.solana(digits=43)
    gov.buy(holder, 10)
    ok = gov.client.get(f"/v1/power/{holder.address}")
    assert ok.status_code == 200 and ok.json()["weight"] == str(10 * TOKEN)
    r = gov.client.get(f"/v1/power/{quote(holder.address + suffix)}")
    assert r.status_code == 400 and r.json()["error"] == "invalid_address", r.text


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_holder_list_with_trailing_whitespace_in_an_address_is_refused(gov, runtime, suffix) -> None:
    holder = Wallet.solana(digits=43)
    before = stored(runtime)
    r = gov.client.post("/v1/power/holder-lists", headers={"Authorization": f"Bearer {gov.operator_key}"},
                        json={"holders": [{"address": holder.address, "balance": "5"},
                                          {"address": holder.address + suffix, "balance": "7"}]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_address", r.text
    assert stored(runtime) == before
