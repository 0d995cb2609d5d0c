"""A proposal's state and an execution's status change only through their transition functions:
every move is checked against its table, lost races write nothing, every proposal transition is
in the proposal's history, and a hand-written state change is refused."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlmodel import Session, func, select

from governance.db import session_scope
from governance.statemachine import IllegalTransition, LostRace, StateWriteRefused
from proposals.lifecycle import State
from proposals.models import Proposal, ProposalEvent
from proposals.service import cancel_proposal
from proposals.transitions import lock, transition
from tests.support import TOKEN, Gov, Wallet
from treasury_exec import executions
from treasury_exec.models import Execution, ParameterVersion
from treasury_exec.status import ExecutionStatus

SETTINGS = {"voting_delay": 0, "voting_period": 600, "timelock": 300, "grace_period": 600, "retry_interval": 60,
            "proposal_threshold": TOKEN}


@pytest.fixture
def settings_overrides() -> dict:
    return dict(SETTINGS)



@pytest.fixture
def holder(gov) -> Wallet:
    a = Wallet.evm()
    gov.buy(a, 100)
    return a


def events(runtime, pid: str) -> list[ProposalEvent]:
    with Session(runtime.engine) as s:
        return list(s.exec(select(ProposalEvent).where(ProposalEvent.proposal_id == pid).order_by(ProposalEvent.id)))


def stored(runtime, pid: str) -> Proposal:
    with Session(runtime.engine) as s:
        return s.get(Proposal, pid)


def executed_price_change(gov: Gov, holder: Wallet, price: int = 120_000) -> str:
    pid = gov.proposal(holder, "PriceChange", price=price)
    assert gov.vote(holder, pid, 1).status_code == 201
    gov.advance(600)
    gov.tick()
    gov.advance(300)
    gov.tick()
    assert gov.get(pid)["state"] == "executed"
    return pid


def test_every_transition_is_recorded_in_order_with_its_actor(gov, runtime, holder, guardian_key) -> None:
    executed = gov.proposal(holder, "PriceChange", price=120_000)
    defeated = gov.proposal(holder, "PriceChange", price=90_000)
    canceled = gov.proposal(holder, "PriceChange", price=110_000)
    assert gov.vote(holder, executed, 1).status_code == 201
    assert gov.vote(holder, defeated, 0).status_code == 201
    r = gov.client.post(f"/v1/proposals/{canceled}/cancel", headers={"Authorization": f"Bearer {guardian_key}"})
    assert r.status_code == 200, r.text
    tallied = gov.advance(600)
    gov.tick()
    ran = gov.advance(300)
    gov.tick()

    history = {pid: [(e.event, e.at) for e in events(runtime, pid)] for pid in (executed, defeated, canceled)}
    start = history[executed][0][1]
    assert history[executed] == [("created", start), ("queued", tallied), ("executed", ran)]
    assert history[defeated] == [("created", start), ("defeated", tallied)]
    assert history[canceled] == [("created", start), ("canceled", start)]
    actors = {pid: [e.actor for e in events(runtime, pid)] for pid in (executed, defeated, canceled)}
    assert actors[executed][0] == holder.address and actors[executed][1].startswith("scheduler:")
    assert actors[executed][2].startswith("scheduler:")
    assert actors[canceled][1] == stored(runtime, canceled).canceled_by and actors[canceled][1].startswith("key:")
    assert "for " in events(runtime, executed)[1].detail  # the tally's figures

    # the columns a transition sets went with it
    p = stored(runtime, executed)
    assert (p.state, p.tallied_at, p.eta, p.executed_at, p.updated_at) == ("executed", tallied, tallied + 300, ran, ran)
    assert p.deadline == tallied + 300 + 600
    c = stored(runtime, canceled)
    assert (c.state, c.canceled_at, c.updated_at) == ("canceled", start, start) and c.cancel_record
    assert stored(runtime, defeated).state == "defeated"


def test_an_executed_proposal_cannot_be_canceled_by_any_path(gov, runtime, holder, guardian_key) -> None:
    pid = executed_price_change(gov, holder)
    before = [(e.id, e.event) for e in events(runtime, pid)]
    # the service path: a guardian's cancel is refused by the lifecycle (executed is final), not
    # reported as a transfer in flight (found by the outside attack: "is done (transaction None)")
    r = gov.client.post(f"/v1/proposals/{pid}/cancel", headers={"Authorization": f"Bearer {guardian_key}"})
    assert r.status_code == 409 and r.json()["state"] == "executed", r.text
    assert r.json()["error"] == "wrong_state" and "None" not in r.json()["detail"], r.text
    # and the transition itself: an illegal move is a bug, raised, never a silent no-op
    with pytest.raises(IllegalTransition, match="executed -> canceled"), session_scope(runtime.engine) as s:
        transition(s, lock(s, pid), State.CANCELED, at=gov.now, actor="test")
    assert stored(runtime, pid).state == "executed" and stored(runtime, pid).canceled_at is None
    assert [(e.id, e.event) for e in events(runtime, pid)] == before


def test_a_defeated_proposal_cannot_be_canceled(gov, runtime, holder, guardian_key) -> None:
    pid = gov.proposal(holder, "PriceChange", price=120_000)
    assert gov.vote(holder, pid, 0).status_code == 201
    gov.advance(600)
    gov.tick()
    r = gov.client.post(f"/v1/proposals/{pid}/cancel", headers={"Authorization": f"Bearer {guardian_key}"})
    assert r.status_code == 409 and r.json()["error"] == "wrong_state" and r.json()["state"] == "defeated", r.text
    with pytest.raises(IllegalTransition, match="defeated -> canceled"), session_scope(runtime.engine) as s:
        transition(s, lock(s, pid), State.CANCELED, at=gov.now, actor="test")
    assert [e.event for e in events(runtime, pid)] == ["created", "defeated"]


def test_a_canceled_proposal_is_neither_tallied_nor_expired_nor_executed(gov, runtime, holder, guardian_key) -> None:
    pid = gov.proposal(holder, "PriceChange", price=120_000)
    assert gov.vote(holder, pid, 1).status_code == 201
    gov.advance(600)  # voting ended, not tallied yet: a guardian cancels it
    r = gov.client.post(f"/v1/proposals/{pid}/cancel", headers={"Authorization": f"Bearer {guardian_key}"})
    assert r.status_code == 200, r.text
    # finalize finds it canceled: it loses the race cleanly (no result, no transition)
    assert gov.tick()["finalize"] == 0
    assert [e.event for e in events(runtime, pid)] == ["created", "canceled"]

    now = gov.advance(10_000)
    with session_scope(runtime.engine) as s:
        assert executions.expire(s, runtime, pid, now) is False  # the scheduler's expiry: nothing to do
        with pytest.raises(IllegalTransition, match="canceled -> expired"):
            transition(s, lock(s, pid), State.EXPIRED, at=now, actor="test", expired_at=now)

    # the path that marks a proposal executed, called without the eligibility check its callers
    # make: the effect is applied, then the transition refuses, and the unit of work is undone
    with session_scope(runtime.engine) as s:
        p = s.get(Proposal, pid)
        ex = Execution(proposal_id=pid, kind=p.kind, mode="parameters", created_at=now, updated_at=now)
        s.add(ex)
        s.flush()
        ex_id = ex.id
    with pytest.raises(IllegalTransition, match="canceled -> executed"), session_scope(runtime.engine) as s:
        executions.execute(s, runtime, executions.lock_execution(s, ex_id), lock(s, pid), now, "test",
                           credit_account="payable:nobody")
    with Session(runtime.engine) as s:
        assert s.exec(select(func.count()).select_from(ParameterVersion)
                      .where(ParameterVersion.proposal_id == pid)).one() == 0
        assert s.get(Execution, ex_id).status == "ready"
    assert stored(runtime, pid).state == "canceled"
    assert [e.event for e in events(runtime, pid)] == ["created", "canceled"]


def test_a_transition_from_a_state_read_before_another_process_moved_it_is_a_lost_race(gov, runtime, holder,
                                                                                     guardian_key) -> None:
    pid = gov.proposal(holder, "PriceChange", price=120_000)
    gov.advance(600)
    with session_scope(runtime.engine, write=False) as s:
        seen = s.get(Proposal, pid)  # pending, as a scheduler about to tally it read it
    r = gov.client.post(f"/v1/proposals/{pid}/cancel", headers={"Authorization": f"Bearer {guardian_key}"})
    assert r.status_code == 200, r.text
    with pytest.raises(LostRace, match="no longer pending"), session_scope(runtime.engine) as s:
        transition(s, seen, State.DEFEATED, at=gov.now, actor="test", tallied_at=gov.now)
    assert stored(runtime, pid).state == "canceled" and stored(runtime, pid).tallied_at is None
    assert [e.event for e in events(runtime, pid)] == ["created", "canceled"]


def test_a_cancel_through_the_service_records_one_transition(gov, runtime, holder) -> None:
    pid = gov.proposal(holder, "PriceChange", price=120_000)
    with session_scope(runtime.engine) as s:
        cancel_proposal(s, runtime, pid, guardian_key_id=1)
        cancel_proposal(s, runtime, pid, guardian_key_id=1)  # again: a no-op, not a second transition
    assert [e.event for e in events(runtime, pid)] == ["created", "canceled"]


@pytest.mark.parametrize("write", [
    pytest.param(lambda s, pid: setattr(s.get(Proposal, pid), "state", "canceled"), id="orm-attribute"),
    pytest.param(lambda s, pid: s.execute(update(Proposal).where(Proposal.id == pid).values(state="queued")),
                 id="orm-update"),
    pytest.param(lambda s, pid: s.connection().execute(
        update(Proposal.__table__).where(Proposal.__table__.c.id == pid), {"state": "expired"}), id="core-update"),
    pytest.param(lambda s, pid: s.add(Proposal(**(s.get(Proposal, pid).model_dump() | {
        "id": "0x" + "1" * 64, "state": "executed"}))), id="insert-in-a-later-state"),
])
def test_a_proposal_state_written_outside_transition_is_refused(gov, runtime, holder, write) -> None:
    pid = gov.proposal(holder, "PriceChange", price=120_000)
    with pytest.raises(StateWriteRefused, match=r"proposal\.state"), session_scope(runtime.engine) as s:
        write(s, pid)
        s.flush()
    assert stored(runtime, pid).state == "pending"
    with session_scope(runtime.engine) as s:  # other columns are written as before
        s.execute(update(Proposal).where(Proposal.id == pid).values(title="retitled"))
    assert stored(runtime, pid).title == "retitled"


def test_an_execution_status_written_outside_its_transitions_is_refused(gov, runtime, holder) -> None:
    pid = executed_price_change(gov, holder)
    with Session(runtime.engine) as s:
        ex_id = s.exec(select(Execution.id).where(Execution.proposal_id == pid)).one()
    with pytest.raises(StateWriteRefused, match=r"execution\.status"), session_scope(runtime.engine) as s:
        s.execute(update(Execution).where(Execution.id == ex_id).values(status="ready"))
    with pytest.raises(StateWriteRefused, match=r"execution\.status"), session_scope(runtime.engine) as s:
        s.get(Execution, ex_id).status = ExecutionStatus.READY
    # a done execution cannot be failed by the path that ends attempts either
    with pytest.raises(IllegalTransition, match="done -> ready"), session_scope(runtime.engine) as s:
        executions.fail_attempt(s, runtime, executions.lock_execution(s, ex_id), gov.now, "test", "why")
    with Session(runtime.engine) as s:
        assert s.get(Execution, ex_id).status == "done"
