"""Numbers a client or a file sends are read in ASCII digits only. ``int()`` and
``str.isdigit`` take every script's digits (``int("١٠٠")`` is 100): what the service wrote as
"100" must not be matched by something it never wrote. The HTTP cases are in the hostile
catalogue (tests/api/test_hostile.py); these are the ones outside a request."""

from __future__ import annotations

import pytest

from governance.types import UINT256_MAX, parse_uint
from tests.support import TOKEN, Gov, Wallet
from voting.export import verify_export


def arabic_indic(text: str) -> str:
    return "".join(chr(0x660 + int(d)) for d in text)


@pytest.mark.parametrize("text", ["١٠٠", "１００", "²", "100\n", " 100", "+100", "1_00", "", "1" * 5000,
                                  str(UINT256_MAX + 1)])
def test_parse_uint_reads_ascii_digits_only(text: str) -> None:
    assert parse_uint(text) is None


def test_parse_uint_reads_what_the_service_writes() -> None:
    assert [parse_uint(t) for t in ("0", "100", "007", str(UINT256_MAX))] == [0, 100, 7, UINT256_MAX]
    assert parse_uint(str(2**63), 2**63 - 1) is None


@pytest.fixture
def settings_overrides() -> dict:
    return {"voting_delay": 0, "voting_period": 600, "proposal_threshold": TOKEN}


def test_dao_verify_reads_weights_in_ascii_digits_only(client, runtime, operator_key) -> None:
    gov = Gov(client, runtime, operator_key)
    voter = Wallet.evm()
    gov.buy(voter, 10)
    pid = gov.proposal(voter, "PriceChange", price=110_000)
    assert gov.vote(voter, pid, 1).status_code == 201
    gov.advance(600)
    gov.tick()
    export = client.get(f"/v1/proposals/{pid}/export").json()
    assert verify_export(export).ok
    # the same numbers in Arabic-Indic digits, in the ballot and in the snapshot alike: read by
    # int() they agreed, and an export the service never wrote verified
    weight = export["ballots"][0]["weight"]
    export["ballots"][0]["weight"] = arabic_indic(weight)
    export["snapshot"]["weights"][voter.address] = arabic_indic(weight)
    report = verify_export(export)
    assert not report.ok
    assert any("not a decimal string" in p and "weight" in p for p in report.problems), report.problems
