"""Every change of a proposal's state, in one place, with its history.

:func:`transition` is the only writer of ``proposal.state`` (the guard in
``governance.statemachine`` refuses any other statement that sets it). It checks the lifecycle's
transition table (``proposals.lifecycle.TRANSITIONS``): a move the table forbids raises
:class:`IllegalTransition`, a bug. It moves the row by a conditional UPDATE from the state the
caller read: 0 rows means another process moved it first, :class:`LostRace`, and nothing is
written. And it appends the transition to the proposal's ordered history (``proposal_event``:
the new state, when, and who or what made it), in the same unit of work.

Callers lock the proposal (:func:`lock`) and decide, from the state they read, whether their
move is still due (a scheduler finds a proposal canceled meanwhile: nothing to do); the table
and the conditional UPDATE are the net under those decisions.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from governance.statemachine import IllegalTransition, LostRace, StateMachine
from proposals.lifecycle import TRANSITIONS, State
from proposals.models import Proposal, ProposalEvent

__all__ = ["IllegalTransition", "LostRace", "lock", "record_event", "transition"]

PROPOSAL_STATES = StateMachine(Proposal.__table__, "state", TRANSITIONS, initial=State.PENDING)  # type: ignore[attr-defined]


def transition(session: Session, proposal: Proposal, to: State, *, at: int, actor: str, detail: str = "",
               **values: Any) -> None:
    """Move ``proposal`` (as this unit of work read it, preferably locked) to ``to`` at time
    ``at``, setting the lifecycle columns in ``values`` (``eta``, ``executed_at``, ``canceled_by``…)
    with it, and record the event ``to`` by ``actor`` (an address, ``key:<id>``, or a process)."""
    PROPOSAL_STATES.move(session, proposal, to, updated_at=at, **values)
    record_event(session, proposal.id, to.value, at, actor, detail)


def record_event(session: Session, proposal_id: str, event: str, at: int, actor: str, detail: str = "") -> None:
    """Append to the proposal's history, in the caller's transaction (transitions, and the other
    things worth a line in it: its creation, a failed execution attempt, a transfer signed)."""
    session.add(ProposalEvent(proposal_id=proposal_id, event=event, at=at, actor=actor, detail=detail))


def lock(session: Session, proposal_id: str) -> Proposal | None:
    """The proposal, locked for this unit of work and read afresh. Every path that moves a
    proposal or its execution takes this lock first, so that they happen one after the other."""
    return session.exec(select(Proposal).where(Proposal.id == proposal_id).with_for_update()
                        .execution_options(populate_existing=True)).first()
