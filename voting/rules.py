"""The rules for one vote, pure: plain values in, a decision out (no I/O, no clock, no session).

The vote writer (:func:`voting.service.record_votes`) loads what a batch needs in bulk, calls
:func:`decide_vote` for each vote in arrival order, each seeing the ballots accepted before it,
and writes the accepted ones in bulk. A vote is, in this order:

- refused 409 ``voting_not_started`` / ``voting_closed`` unless voting is open;
- refused 422 ``stale_timestamp`` / ``future_timestamp`` if signed too far from ``now``;
- refused 422 ``invalid_choice``, ``reason_too_long``;
- refused 403 ``no_voting_power`` if the voter weighed nothing at the proposal's snapshot;
- accepted if it is the voter's first counted ballot;
- otherwise refused 409 ``already_voted`` under ``vote_change = forbid``, refused 409
  ``superseded`` if the counted ballot is newer (:func:`voting.tally.newer`: signed later, or
  signed in the same second with the greater id), else accepted in its place.

A replay (the same signed vote again) is not decided here: it is answered from the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from governance.errors import Conflict, Forbidden, GovernanceError, Unprocessable
from governance.signatures import check_freshness
from proposals.lifecycle import State, effective_state, voting_open
from voting.tally import CHOICES, BallotRecord, Totals, newer


@dataclass(frozen=True, slots=True)
class ProposalTerms:
    """What a vote is decided against: the proposal's stored state, voting window and rule."""

    state: str
    starts_at: int
    ends_at: int
    vote_change: str  # "latest": a newer ballot replaces the counted one; "forbid": one ballot each


@dataclass(frozen=True, slots=True)
class Limits:
    """The deployment's settings a vote is checked against."""

    max_clock_skew: int
    reason_max_chars: int


class Vote(NamedTuple):
    """A verified vote (its signature already checked): the id is the signed message's digest.
    A tuple, like :class:`BallotRecord`: the writer builds one per vote on its hot path."""

    id: str
    voter: str
    choice: int
    reason: str
    signed_at: int


@dataclass(frozen=True, slots=True)
class Accept:
    """The vote is counted: ``ballot`` becomes the voter's counted ballot, ``replaces`` (if any)
    is the ballot it supersedes, and ``delta`` is what the running totals change by."""

    ballot: BallotRecord
    replaces: BallotRecord | None
    delta: Totals


Decision = Accept | GovernanceError  # a refusal is the error the voter gets, with its status and code


def decide_vote(proposal: ProposalTerms, vote: Vote, *, weight: int, counted: BallotRecord | None, now: int,
                limits: Limits) -> Decision:
    """Decide one vote. ``weight`` is the voter's power at the proposal's snapshot; ``counted``
    the voter's ballot counted so far (stored, or accepted earlier in the same batch)."""
    if not voting_open(proposal.state, proposal.starts_at, proposal.ends_at, now):
        return _closed(proposal, now)
    try:
        check_freshness(vote.signed_at, now, limits.max_clock_skew)
    except Unprocessable as exc:
        return exc
    if vote.choice not in CHOICES:
        return Unprocessable("choice is 0 (against), 1 (for) or 2 (abstain)", code="invalid_choice")
    if len(vote.reason) > limits.reason_max_chars:
        return Unprocessable(f"the reason is longer than {limits.reason_max_chars} characters",
                             code="reason_too_long")
    if weight <= 0:
        return Forbidden(f"{vote.voter} had no voting power at this proposal's snapshot", code="no_voting_power")
    ballot = BallotRecord(vote.id, vote.voter, vote.choice, weight, vote.signed_at)
    added = Totals().add(ballot.choice, weight)
    if counted is None:
        return Accept(ballot, None, added)
    if proposal.vote_change == "forbid":
        return Conflict("this voter has already voted on this proposal", code="already_voted",
                        extra={"vote": counted.id})
    if not newer(ballot, counted):
        return Conflict("a newer vote of this voter is already counted", code="superseded",
                        extra={"vote": counted.id})
    return Accept(ballot, counted, added.add(counted.choice, counted.weight, sign=-1))


def _closed(proposal: ProposalTerms, now: int) -> Conflict:
    state = effective_state(proposal.state, proposal.starts_at, now)
    if state is State.PENDING:
        code, why = "voting_not_started", f"voting opens at {proposal.starts_at}; the proposal is pending"
    elif state is State.ACTIVE and now >= proposal.ends_at:
        code, why = "voting_closed", f"voting closed at {proposal.ends_at}"
    else:
        code, why = "voting_closed", f"the proposal is {state.value}"
    return Conflict(why, code=code, extra={"state": state.value})
