"""The streaming tally equals the in-memory definition it replaces.

Finalize counts a million-ballot log without holding it: :class:`RootBuilder` folds leaves into
at most one pending node per level, and :func:`count_by_voter` picks each voter's effective
ballot from a voter-ordered stream. Both are checked here against the plain definitions
(level-by-level Merkle tree; effective ballot per voter from a dict, summed by hand).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voting import merkle
from voting.tally import ABSTAIN, AGAINST, FOR, BallotRecord, count_by_voter, effective_ballots


def reference_root(leaves: list[bytes]) -> bytes:
    """The definition: hash pairs level by level, an odd last node moves up unchanged."""
    level = [merkle.leaf_hash(x) for x in leaves]
    if not level:
        return merkle.EMPTY_ROOT
    while len(level) > 1:
        nxt = [merkle.node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


@pytest.mark.parametrize("n", range(0, 70))
def test_streamed_root_equals_level_by_level_root(n: int) -> None:
    leaves = [i.to_bytes(4, "big") for i in range(n)]
    builder = merkle.RootBuilder()
    for leaf in leaves:
        builder.add(leaf)
    assert builder.leaves == n
    assert builder.root() == reference_root(leaves)
    assert merkle.root(leaves) == reference_root(leaves)


def test_root_depends_on_every_leaf_and_their_order() -> None:
    leaves = [bytes([i]) for i in range(11)]
    base = merkle.root(leaves)
    assert merkle.root(leaves[:-1]) != base
    assert merkle.root(leaves[1:] + leaves[:1]) != base
    assert merkle.root([*leaves[:5], b"x", *leaves[6:]]) != base


ballots = st.lists(
    st.builds(
        BallotRecord,
        id=st.text("0123456789abcdef", min_size=4, max_size=4),
        voter=st.sampled_from(["0xA1", "0xB2", "0xb2", "7Xy", "9zz", "Zq"]),
        choice=st.sampled_from([AGAINST, FOR, ABSTAIN]),
        weight=st.integers(0, 2**96),
        signed_at=st.integers(1_000, 1_010),
    ),
    max_size=60,
    unique_by=lambda b: b.id,  # vote ids are unique (the hash of the signed message)
)


@given(ballots, st.randoms(use_true_random=False))
def test_count_by_voter_equals_the_definition(log: list[BallotRecord], rnd) -> None:
    effective = effective_ballots(log)
    sums = {FOR: 0, AGAINST: 0, ABSTAIN: 0}
    for b in effective.values():
        sums[b.choice] += b.weight
    expected_root = reference_root([merkle.ballot_leaf(effective[v].id, effective[v].weight)
                                    for v in sorted(effective)])

    # voters ascending, each voter's ballots in any order among themselves
    stream = sorted(log, key=lambda b: (b.voter, rnd.random()))
    totals, root = count_by_voter(stream)

    assert (totals.for_votes, totals.against_votes, totals.abstain_votes) == (sums[FOR], sums[AGAINST],
                                                                               sums[ABSTAIN])
    assert totals.voters == len(effective)
    assert root == expected_root


def test_count_by_voter_refuses_a_stream_out_of_voter_order() -> None:
    a = BallotRecord("0x" + "11" * 32, "0xA", FOR, 5, 1)
    b = BallotRecord("0x" + "22" * 32, "0xB", AGAINST, 7, 1)
    assert count_by_voter([a, b])[0].voters == 2
    with pytest.raises(ValueError, match="out of voter order"):
        count_by_voter([b, a])
