"""The acceptance scenarios of signed voting and the scheduled tally, by name, driven by the
settable clock over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.support import TOKEN, Gov, Wallet

FOR, AGAINST, ABSTAIN = 1, 0, 2


@pytest.fixture
def settings_overrides() -> dict:
    return {"voting_delay": 60, "voting_period": 600, "timelock": 300, "grace_period": 600,
            "proposal_threshold": TOKEN, "price_quorum_bps": 1000, "price_approval_bps": 5000}



@pytest.fixture
def holders(gov: Gov) -> dict[str, Wallet]:
    """Supply 100 tokens: a 10, b 7 (Solana), c 5, d 2, e 76 (the proposer, who does not vote)."""
    ws = {"a": Wallet.evm(), "b": Wallet.solana(), "c": Wallet.evm(), "d": Wallet.solana(), "e": Wallet.evm()}
    for name, tokens in (("a", 10), ("b", 7), ("c", 5), ("d", 2), ("e", 76)):
        gov.buy(ws[name], tokens)
    return ws


def open_proposal(gov: Gov, holders: dict[str, Wallet]) -> str:
    pid = gov.proposal(holders["e"], "PriceChange", price=110_000)
    gov.advance(60)  # voting opens
    return pid


def finish(gov: Gov, pid: str) -> dict:
    gov.advance(600)
    gov.tick()
    return gov.get(pid)


def cast(gov: Gov, w: Wallet, pid: str, choice: int) -> None:
    r = gov.vote(w, pid, choice)
    assert r.status_code == 201, r.text


def test_1_mixed_votes_succeed(gov, holders) -> None:
    pid = open_proposal(gov, holders)
    cast(gov, holders["a"], pid, FOR)
    cast(gov, holders["b"], pid, FOR)
    cast(gov, holders["c"], pid, AGAINST)
    cast(gov, holders["d"], pid, ABSTAIN)
    live = gov.get(pid)["tally"]
    assert (live["for"], live["against"], live["abstain"]) == (str(17 * TOKEN), str(5 * TOKEN), str(2 * TOKEN))
    p = finish(gov, pid)
    r = p["result"]
    assert (r["for"], r["against"], r["abstain"]) == (str(17 * TOKEN), str(5 * TOKEN), str(2 * TOKEN))
    assert r["outcome"] == "succeeded"
    assert p["state"] == "queued"


def test_2_single_vote_equal_to_quorum_succeeds(gov, holders) -> None:
    pid = open_proposal(gov, holders)
    cast(gov, holders["a"], pid, FOR)  # 10 of 100 = quorum exactly
    p = finish(gov, pid)
    assert p["result"]["quorum"] == str(10 * TOKEN)
    assert p["result"]["quorum_reached"] is True
    assert p["result"]["outcome"] == "succeeded"


def test_3_against_does_not_count_toward_quorum(gov, holders) -> None:
    pid = open_proposal(gov, holders)
    cast(gov, holders["b"], pid, FOR)  # 7
    cast(gov, holders["c"], pid, AGAINST)  # 5
    p = finish(gov, pid)
    assert p["result"]["quorum_reached"] is False
    assert p["state"] == "defeated"


def test_4_abstain_counts_toward_quorum(gov, holders) -> None:
    pid = open_proposal(gov, holders)
    cast(gov, holders["b"], pid, FOR)  # 7
    cast(gov, holders["c"], pid, ABSTAIN)  # 5 → 12 ≥ 10
    assert finish(gov, pid)["state"] == "queued"


def test_4b_too_little_abstain_is_defeated(gov, holders) -> None:
    pid = open_proposal(gov, holders)
    cast(gov, holders["b"], pid, FOR)  # 7
    cast(gov, holders["d"], pid, ABSTAIN)  # 2 → 9 < 10
    assert finish(gov, pid)["state"] == "defeated"


def test_5_tie_is_defeated(gov, holders) -> None:
    pid = open_proposal(gov, holders)
    cast(gov, holders["c"], pid, FOR)  # 5
    cast(gov, holders["d"], pid, FOR)  # 2
    cast(gov, holders["b"], pid, AGAINST)  # 7
    cast(gov, holders["a"], pid, ABSTAIN)  # quorum met by abstain
    p = finish(gov, pid)
    assert p["result"]["quorum_reached"] is True
    assert p["state"] == "defeated"


def test_6_votes_outside_the_window_are_rejected_with_the_state(gov, holders) -> None:
    pid = gov.proposal(holders["e"], "PriceChange", price=110_000)
    r = gov.vote(holders["a"], pid, FOR)  # before starts_at
    assert r.status_code == 409
    assert r.json()["error"] == "voting_not_started" and r.json()["state"] == "pending"
    gov.advance(60 + 600)  # exactly ends_at
    r = gov.vote(holders["a"], pid, FOR)
    assert r.status_code == 409 and r.json()["error"] == "voting_closed"
    assert gov.client.get(f"/v1/proposals/{pid}/votes").json()["items"] == []

    other = gov.proposal(holders["e"], "PriceChange", price=120_000)
    guardian = gov.client.post(f"/v1/proposals/{other}/cancel",
                               headers={"Authorization": f"Bearer {_guardian(gov)}"})
    assert guardian.status_code == 200 and guardian.json()["state"] == "canceled"
    gov.advance(60)
    r = gov.vote(holders["a"], other, FOR)
    assert r.status_code == 409 and r.json()["state"] == "canceled"

    unknown = "0x" + "ab" * 32
    r = gov.vote(holders["a"], unknown, FOR)
    assert r.status_code == 404 and r.json()["error"] == "proposal_not_found"


def _guardian(gov: Gov) -> str:
    from tests.support import make_key

    return make_key(gov.runtime, "guardian")


def test_7_weight_is_fixed_at_the_snapshot(gov, holders) -> None:
    pid = gov.proposal(holders["e"], "PriceChange", price=110_000)
    late = Wallet.evm()
    gov.buy(late, 50)  # bought after the snapshot
    gov.buy(holders["a"], 40)  # a buys more after the snapshot
    gov.advance(60)
    r = gov.vote(late, pid, FOR)
    assert r.status_code == 403 and r.json()["error"] == "no_voting_power"
    r = gov.vote(holders["a"], pid, FOR)
    assert r.json()["weight"] == str(10 * TOKEN)


def test_7b_tokens_sold_after_the_snapshot_still_count(gov, holders) -> None:
    pid = gov.proposal(holders["e"], "PriceChange", price=110_000)
    # a sells all 10 tokens back to the treasury after the snapshot
    r = gov.client.post("/v1/treasury/buybacks", headers={"Authorization": f"Bearer {gov.operator_key}"},
                        json={"seller": holders["a"].address, "amount": 1_000_000, "tokens": str(10 * TOKEN),
                              "reference": "sell-a"})
    assert r.status_code == 201, r.text
    gov.advance(60)
    r = gov.vote(holders["a"], pid, FOR)
    assert r.status_code == 201 and r.json()["weight"] == str(10 * TOKEN)


def test_8_tokens_minted_after_the_snapshot_do_not_change_the_quorum_base(gov, holders) -> None:
    pid = gov.proposal(holders["e"], "PriceChange", price=110_000)
    gov.buy(Wallet.evm(), 900)  # supply grows tenfold after the snapshot
    gov.advance(60)
    cast(gov, holders["a"], pid, FOR)  # 10 = 10% of the snapshot supply of 100
    p = finish(gov, pid)
    assert p["snapshot"]["total"] == str(100 * TOKEN)
    assert p["result"]["quorum"] == str(10 * TOKEN)
    assert p["state"] == "queued"


def test_9_changing_a_vote_under_latest(gov, holders) -> None:
    pid = open_proposal(gov, holders)
    first = gov.vote(holders["a"], pid, AGAINST, timestamp=gov.now - 10)
    assert first.status_code == 201
    second = gov.vote(holders["a"], pid, FOR)
    assert second.status_code == 201 and second.json()["replaces"] == first.json()["id"]
    older = gov.vote(holders["a"], pid, ABSTAIN, timestamp=gov.now - 20)
    assert older.status_code == 409 and older.json()["error"] == "superseded"
    live = gov.get(pid)["tally"]
    assert (live["for"], live["against"], live["abstain"], live["ballots"]) == (str(10 * TOKEN), "0", "0", 1)
    p = finish(gov, pid)
    assert p["result"]["for"] == str(10 * TOKEN) and p["result"]["against"] == "0"
    log = gov.client.get(f"/v1/proposals/{pid}/votes").json()["items"]
    assert [b["superseded"] for b in log] == [True, False]


def test_identical_vote_returns_the_stored_receipt(gov, holders) -> None:
    pid = open_proposal(gov, holders)
    msg_time = gov.now
    a = gov.vote(holders["a"], pid, FOR, timestamp=msg_time)
    b = gov.vote(holders["a"], pid, FOR, timestamp=msg_time)
    assert a.status_code == 201 and b.status_code == 200
    assert a.json() == b.json()
    assert gov.get(pid)["tally"]["for"] == str(10 * TOKEN)


def test_10_scheduler_twice_gives_one_result(gov, holders) -> None:
    pid = open_proposal(gov, holders)
    cast(gov, holders["a"], pid, FOR)
    gov.advance(600)
    assert gov.tick()["finalize"] == 1
    first = gov.get(pid)
    assert gov.tick()["finalize"] == 0
    assert gov.get(pid)["result"] == first["result"]


def test_11_a_proposal_nobody_reads_is_finalized_by_the_scheduler(gov, holders) -> None:
    pid = open_proposal(gov, holders)
    cast(gov, holders["a"], pid, FOR)
    gov.advance(599)
    assert gov.tick()["finalize"] == 0  # still open
    gov.advance(1)
    assert gov.tick()["finalize"] == 1
    assert gov.get(pid)["state"] == "queued"


def test_12_dao_verify_passes_on_honest_export_and_names_an_altered_ballot(gov, holders, tmp_path) -> None:
    pid = open_proposal(gov, holders)
    for name, choice in (("a", FOR), ("b", FOR), ("c", AGAINST), ("d", ABSTAIN)):
        cast(gov, holders[name], pid, choice)
    finish(gov, pid)
    export = gov.client.get(f"/v1/proposals/{pid}/export").json()
    from voting.cli import verify

    honest = tmp_path / "honest.json"
    honest.write_text(json.dumps(export))
    ok = CliRunner().invoke(verify, [str(honest)])
    assert ok.exit_code == 0, ok.output
    assert "OK: 4 ballots" in ok.output

    altered = json.loads(json.dumps(export))
    altered["ballots"][2]["envelope"]["message"]["choice"] = FOR  # c's against becomes for
    bad = tmp_path / "choice.json"
    bad.write_text(json.dumps(altered))
    out = CliRunner().invoke(verify, [str(bad)])
    assert out.exit_code == 1
    assert f"ballot #3 (voter {holders['c'].address}): signature does not verify" in out.output

    reweighted = json.loads(json.dumps(export))
    reweighted["ballots"][0]["weight"] = str(50 * TOKEN)
    bad2 = tmp_path / "weight.json"
    bad2.write_text(json.dumps(reweighted))
    out = CliRunner().invoke(verify, [str(bad2)])
    assert out.exit_code == 1
    assert f"ballot #1 (voter {holders['a'].address}): weight {50 * TOKEN} differs" in out.output
