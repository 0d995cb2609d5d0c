"""The tally rules, pure: quorum counts for + abstain inclusively; passing needs
for × 10000 > approval × (for + against); integers only."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from voting.tally import (
    ABSTAIN,
    AGAINST,
    FOR,
    BallotRecord,
    Totals,
    count,
    decide,
    effective_ballots,
    quorum_needed,
)


def totals(f: int = 0, a: int = 0, ab: int = 0) -> Totals:
    return Totals(f, a, ab, 0)


def test_quorum_is_ceiling_of_share_of_supply() -> None:
    assert quorum_needed(1000, 100) == 10
    assert quorum_needed(1000, 101) == 11  # 10.1 rounds up
    assert quorum_needed(0, 100) == 0
    assert quorum_needed(10000, 7) == 7


def test_quorum_is_inclusive() -> None:
    o = decide(totals(10), supply=100, quorum_bps=1000, approval_bps=5000)
    assert o.quorum_reached and o.passed


def test_against_does_not_count_toward_quorum() -> None:
    o = decide(totals(7, 5), supply=100, quorum_bps=1000, approval_bps=5000)
    assert not o.quorum_reached and not o.passed


def test_abstain_counts_toward_quorum_only() -> None:
    assert decide(totals(7, 0, 5), supply=100, quorum_bps=1000, approval_bps=5000).passed
    assert not decide(totals(7, 0, 2), supply=100, quorum_bps=1000, approval_bps=5000).passed


def test_tie_is_defeated() -> None:
    o = decide(totals(10, 10), supply=100, quorum_bps=1000, approval_bps=5000)
    assert o.quorum_reached and not o.passed


def test_supermajority_threshold_is_strict() -> None:
    # 60% approval: exactly 60% for is not enough, just above is
    assert not decide(totals(60, 40), supply=100, quorum_bps=0, approval_bps=6000).passed
    assert decide(totals(61, 40), supply=100, quorum_bps=0, approval_bps=6000).passed


def test_exact_integers_beyond_float_precision() -> None:
    big = 10**27
    o = decide(totals(big + 1, big), supply=2 * big, quorum_bps=5000, approval_bps=5000)
    assert o.passed  # for exceeds against by one base unit: floats would call it a tie


def test_latest_ballot_counts_and_ties_break_by_id() -> None:
    b1 = BallotRecord("0x" + "01" * 32, "alice", FOR, 5, 100)
    b2 = BallotRecord("0x" + "02" * 32, "alice", AGAINST, 5, 200)
    b3 = BallotRecord("0x" + "03" * 32, "alice", ABSTAIN, 5, 200)
    eff = effective_ballots([b2, b1, b3])
    assert eff["alice"] is b3  # same timestamp as b2, greater id


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 2),
                          st.integers(1, 10**30), st.integers(0, 1000)), max_size=40))
def test_count_equals_sum_of_effective_ballots(rows) -> None:
    ballots = [BallotRecord("0x" + f"{i:064x}", v, c, w, t) for i, (v, c, w, t) in enumerate(rows)]
    eff = effective_ballots(ballots)
    t, root = count(eff)
    assert t.voters == len(eff)
    assert t.for_votes + t.against_votes + t.abstain_votes == sum(b.weight for b in eff.values())
    # the root is independent of input order
    assert count(effective_ballots(list(reversed(ballots))))[1] == root
