"""The proposal lifecycle as a pure state machine (no I/O).

Stored states are the ones a transition writes (``proposals.transitions.transition``, the one
writer, checks ``TRANSITIONS``): ``pending`` (accepted, not yet tallied),
``succeeded``, ``defeated``, ``queued``, ``executed``, ``expired``, ``canceled``. ``active``
is never stored: a ``pending`` proposal is *active* from ``starts_at`` on, by the clock.
Between ``ends_at`` and the scheduler's tally it stays ``active`` with voting closed.

::

    pending ─(starts_at)→ active ─(tally)→ succeeded ─(queue)→ queued ─(eta)→ executed
                                  └──────→ defeated                   └(eta+grace)→ expired
    any state before executed ─(cancel)→ canceled
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    SUCCEEDED = "succeeded"
    DEFEATED = "defeated"
    QUEUED = "queued"
    EXECUTED = "executed"
    EXPIRED = "expired"
    CANCELED = "canceled"



# stored state -> stored states a transition may lead to
TRANSITIONS: dict[State, frozenset[State]] = {
    # a passed proposal is queued in the transaction that tallies it: succeeded is its
    # result's outcome, and the stored state goes straight on to queued
    State.PENDING: frozenset({State.SUCCEEDED, State.QUEUED, State.DEFEATED, State.CANCELED}),
    State.SUCCEEDED: frozenset({State.QUEUED, State.CANCELED}),
    State.QUEUED: frozenset({State.EXECUTED, State.EXPIRED, State.CANCELED}),
    State.DEFEATED: frozenset(),
    State.EXECUTED: frozenset(),
    State.EXPIRED: frozenset(),
    State.CANCELED: frozenset(),
}


@dataclass(frozen=True)
class Timing:
    created_at: int
    starts_at: int
    ends_at: int


def timing(created_at: int, voting_delay: int, voting_period: int) -> Timing:
    """``starts_at = created_at + voting_delay``; ``ends_at = starts_at + voting_period``."""
    starts = created_at + voting_delay
    return Timing(created_at=created_at, starts_at=starts, ends_at=starts + voting_period)


def effective_state(stored: str, starts_at: int, now: int) -> State:
    """The state a reader sees: ``pending`` turns ``active`` at ``starts_at`` by the clock."""
    state = State(stored)
    if state is State.PENDING and now >= starts_at:
        return State.ACTIVE
    return state


def can_transition(stored: str, target: State) -> bool:
    return target in TRANSITIONS[State(stored)]


def voting_open(stored: str, starts_at: int, ends_at: int, now: int) -> bool:
    """A vote is accepted iff the proposal was not finalized and ``starts_at ≤ now < ends_at``."""
    return State(stored) is State.PENDING and starts_at <= now < ends_at



def execution_window(tallied_at: int, timelock: int, grace_period: int) -> tuple[int, int]:
    """``(eta, deadline)``: executable from ``eta``, expired at ``eta + grace``."""
    eta = tallied_at + timelock
    return eta, eta + grace_period


def cancel_allowed(stored: str, starts_at: int, now: int, *, by_guardian: bool) -> bool:
    """The proposer may cancel while pending; a guardian in any state before executed."""
    if by_guardian:
        return can_transition(stored, State.CANCELED)
    return effective_state(stored, starts_at, now) is State.PENDING
