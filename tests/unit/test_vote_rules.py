"""The rules for one vote, pure: every refusal with its status and code, every acceptance with
the change it makes to the running totals, and the order the checks are made in. No database:
the writer's batching around these rules is tested in tests/api/test_vote_batches.py."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from governance.errors import Conflict, Forbidden, GovernanceError, Unprocessable
from voting.rules import Accept, Limits, ProposalTerms, Vote, decide_vote
from voting.tally import ABSTAIN, AGAINST, FOR, BallotRecord, Totals, count, effective_ballots

STARTS, ENDS, NOW = 1_000, 2_000, 1_500
OPEN = ProposalTerms("pending", STARTS, ENDS, "latest")
FORBID = ProposalTerms("pending", STARTS, ENDS, "forbid")
LIMITS = Limits(max_clock_skew=60, reason_max_chars=10)
ALICE = "0x" + "a1" * 20


def vote(choice: int = FOR, at: int = NOW, vid: str = "0x02", reason: str = "", voter: str = ALICE) -> Vote:
    return Vote(vid, voter, choice, reason, at)


def counted(choice: int = AGAINST, weight: int = 7, at: int = NOW, vid: str = "0x02") -> BallotRecord:
    return BallotRecord(vid, ALICE, choice, weight, at)


def decide(v: Vote | None = None, *, proposal: ProposalTerms = OPEN, weight: int = 5,
           current: BallotRecord | None = None, now: int = NOW) -> Accept | GovernanceError:
    return decide_vote(proposal, v or vote(), weight=weight, counted=current, now=now, limits=LIMITS)


def refused(decision: Accept | GovernanceError, kind: type[GovernanceError], status: int, code: str) -> dict:
    assert isinstance(decision, kind), decision
    assert (decision.status_code, decision.code) == (status, code)
    return decision.extra


# ---------------------------------------------------------------- voting window


def test_before_starts_at_voting_has_not_started() -> None:
    extra = refused(decide(now=STARTS - 1), Conflict, 409, "voting_not_started")
    assert extra == {"state": "pending"}


def test_voting_opens_at_starts_at_and_closes_at_ends_at() -> None:
    assert isinstance(decide(vote(at=STARTS), now=STARTS), Accept)
    assert isinstance(decide(vote(at=ENDS - 1), now=ENDS - 1), Accept)
    d = decide(vote(at=ENDS), now=ENDS)
    assert refused(d, Conflict, 409, "voting_closed") == {"state": "active"}  # not tallied yet
    assert d.detail == f"voting closed at {ENDS}"  # type: ignore[union-attr]


@pytest.mark.parametrize("state", ["succeeded", "defeated", "queued", "executed", "expired", "canceled"])
def test_a_finalized_proposal_takes_no_votes_whatever_the_clock(state: str) -> None:
    d = decide(proposal=ProposalTerms(state, STARTS, ENDS, "latest"))
    assert refused(d, Conflict, 409, "voting_closed") == {"state": state}
    assert d.detail == f"the proposal is {state}"  # type: ignore[union-attr]


# ---------------------------------------------------------------- the vote itself


def test_the_signed_timestamp_must_be_within_the_clock_skew() -> None:
    assert isinstance(decide(vote(at=NOW - 60)), Accept)
    assert isinstance(decide(vote(at=NOW + 60)), Accept)
    refused(decide(vote(at=NOW - 61)), Unprocessable, 422, "stale_timestamp")
    refused(decide(vote(at=NOW + 61)), Unprocessable, 422, "future_timestamp")


@pytest.mark.parametrize("choice", [3, 255, -1])
def test_a_choice_is_against_for_or_abstain(choice: int) -> None:
    refused(decide(vote(choice)), Unprocessable, 422, "invalid_choice")


def test_the_reason_is_bounded_in_characters() -> None:
    assert isinstance(decide(vote(reason="é" * 10)), Accept)  # 20 bytes, 10 characters
    refused(decide(vote(reason="x" * 11)), Unprocessable, 422, "reason_too_long")


@pytest.mark.parametrize("weight", [0, -1])
def test_a_voter_without_power_is_refused(weight: int) -> None:
    refused(decide(weight=weight), Forbidden, 403, "no_voting_power")


def test_the_checks_come_in_order() -> None:
    """Each refusal wins over every check after it: closed, then timestamp, then choice, then
    reason, then power, then the voter's earlier ballot."""
    bad = vote(choice=9, at=NOW - 999, reason="x" * 99)
    refused(decide(bad, weight=0, current=counted(at=NOW + 9), now=STARTS - 1), Conflict, 409,
            "voting_not_started")
    refused(decide(bad, weight=0, current=counted(at=NOW + 9)), Unprocessable, 422, "stale_timestamp")
    refused(decide(vote(choice=9, reason="x" * 99), weight=0), Unprocessable, 422, "invalid_choice")
    refused(decide(vote(reason="x" * 99), weight=0), Unprocessable, 422, "reason_too_long")
    refused(decide(weight=0, current=counted(at=NOW + 9), proposal=FORBID), Forbidden, 403, "no_voting_power")


# ---------------------------------------------------------------- acceptance and its tally change


@pytest.mark.parametrize(("choice", "delta"), [(FOR, Totals(5, 0, 0, 1)), (AGAINST, Totals(0, 5, 0, 1)),
                                               (ABSTAIN, Totals(0, 0, 5, 1))])
def test_a_first_ballot_is_counted_with_its_weight(choice: int, delta: Totals) -> None:
    d = decide(vote(choice))
    assert d == Accept(BallotRecord("0x02", ALICE, choice, 5, NOW), None, delta)


def test_under_latest_a_newer_ballot_replaces_the_counted_one() -> None:
    old = counted(AGAINST, weight=7, at=NOW - 1)
    d = decide(vote(FOR, at=NOW), weight=5, current=old)
    # the old ballot's weight leaves its choice, the new one's joins; the voter count is unchanged
    assert d == Accept(BallotRecord("0x02", ALICE, FOR, 5, NOW), old, Totals(5, -7, 0, 0))


def test_under_latest_an_older_ballot_is_superseded() -> None:
    old = counted(at=NOW)
    extra = refused(decide(vote(at=NOW - 1), current=old), Conflict, 409, "superseded")
    assert extra == {"vote": old.id}


def test_on_equal_timestamps_the_greater_vote_id_counts() -> None:
    old = counted(at=NOW, vid="0x55")
    assert isinstance(decide(vote(at=NOW, vid="0x56"), current=old), Accept)
    assert refused(decide(vote(at=NOW, vid="0x54"), current=old), Conflict, 409, "superseded") == {"vote": "0x55"}


def test_a_change_to_the_same_choice_still_replaces_the_ballot() -> None:
    d = decide(vote(FOR, at=NOW), weight=5, current=counted(FOR, weight=5, at=NOW - 1))
    assert isinstance(d, Accept) and d.delta == Totals(0, 0, 0, 0)


@pytest.mark.parametrize("at", [NOW - 1, NOW, NOW + 1])
def test_under_forbid_a_second_ballot_is_refused_newer_or_not(at: int) -> None:
    old = counted(at=NOW, vid="0x01")
    extra = refused(decide(vote(at=at, vid="0x99"), proposal=FORBID, current=old), Conflict, 409, "already_voted")
    assert extra == {"vote": "0x01"}


def test_under_forbid_a_first_ballot_is_counted() -> None:
    assert decide(vote(ABSTAIN), proposal=FORBID) == Accept(BallotRecord("0x02", ALICE, ABSTAIN, 5, NOW), None,
                                                           Totals(0, 0, 5, 1))


# ---------------------------------------------------------------- decisions applied one after another

ballots = st.lists(st.tuples(st.sampled_from(["0xa", "0xb", "0xc"]), st.sampled_from([AGAINST, FOR, ABSTAIN]),
                             st.integers(1, 10), st.integers(NOW - 3, NOW + 3), st.integers(0, 15)),
                   max_size=30)


@given(ballots)
def test_deciding_votes_in_turn_keeps_the_totals_of_the_final_count(votes: list) -> None:
    """What the writer does with a batch: each vote sees the ballots accepted before it, and the
    running totals moved by every delta are the totals a recount of the accepted log gives."""
    current: dict[str, BallotRecord] = {}
    accepted: list[BallotRecord] = []
    totals = Totals()
    for voter, choice, weight, at, n in votes:
        d = decide_vote(OPEN, Vote(f"0x{n:02x}", voter, choice, "", at), weight=weight,
                        counted=current.get(voter), now=NOW, limits=LIMITS)
        if isinstance(d, Accept):
            assert d.replaces == current.get(voter)
            current[voter] = d.ballot
            accepted.append(d.ballot)
            totals += d.delta
    assert current == effective_ballots(accepted)
    assert totals == count(effective_ballots(accepted))[0]
