"""Executing queued proposals against the treasury, exactly once, each to a visible end.

Every execution is one row per proposal (unique). Its status (``treasury_exec.status``) moves
only along its transition table, one function per move, each through :func:`move_status`: a
conditional UPDATE from the status the path read (``governance.statemachine``; a hand-written
status change is refused). A path first locks the proposal, then the execution if it is still
in the status the path starts from (:func:`lock_if`), so two schedulers and any number of
external executors cannot both apply it:

- ``parameters`` (PriceChange, AllocationChange) and ``internal`` spends run in one unit of
  work (:func:`run_internal`): apply the effect, mark it done and the proposal executed
  (:func:`execute`). The effect and the marks commit together or not at all.
- ``chain`` spends are signed, with their amount reserved (``reservations.py``), then settled
  once their receipt is confirmed (``transfers.py``: each step asks the node outside any lock,
  then records what it saw in a short unit of work). A reverted transfer, or one whose nonce
  another transaction took (it can never land), releases the reservation and counts as a failed
  attempt. Nothing ever signs a second transfer for the same execution while the first may
  still land.
- ``external`` executions wait for an executor key (``external.py``): leased (and reserved),
  then completed (a transaction hash checked on chain, or a reference) or failed.

A failed attempt (:func:`fail_attempt`) is recorded with its reason and retried after
``retry_interval`` until the deadline, when the execution expires with its proposal. The
functions here work in the caller's unit of work and never commit or roll back: the scheduler
(``jobs.py``) opens one per item, a request handler one per request.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import or_
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from web3.exceptions import ContractLogicError

from governance.errors import BadRequest, GovernanceError, Unprocessable
from governance.runtime import Runtime
from governance.statemachine import StateMachine
from proposals.lifecycle import State
from proposals.models import Proposal
from proposals.service import process_actor
from proposals.transitions import lock, record_event, transition
from treasury_exec import journal, reservations, service
from treasury_exec.chain import ChainClient
from treasury_exec.journal import Posting
from treasury_exec.models import Execution, ExecutionAttempt
from treasury_exec.status import IN_FLIGHT, TERMINAL, TRANSITIONS, ExecutionStatus

log = logging.getLogger("treasury_exec.executions")

S = ExecutionStatus
EXECUTION_STATUS = StateMachine(Execution.__table__, "status", TRANSITIONS, initial=S.READY)  # type: ignore[attr-defined]



def chain_client(runtime: Runtime) -> ChainClient:
    """The RPC client; bootstrap builds one whenever DAO_CHAIN_ASSETS lists an asset (it then
    requires DAO_RPC_URL), and only a spend of such an asset reaches here."""
    if runtime.chain_client is None:
        raise RuntimeError("no chain client: DAO_RPC_URL is empty")  # unreachable after bootstrap's checks
    return runtime.chain_client


def _mode(runtime: Runtime, proposal: Proposal, msg: dict[str, Any]) -> str:
    if proposal.kind != "TreasurySpend":
        return "parameters"
    if msg["bucket"] in runtime.settings.external_buckets:
        return "external"
    asset = runtime.chain_assets.get(msg["asset"])
    return asset.mode if asset else "internal"


def create_due(session: Session, runtime: Runtime, now: int) -> int:
    """One execution for every queued proposal whose ``eta`` has come (unique per proposal)."""
    made = 0
    due = session.exec(
        select(Proposal).where(Proposal.state == State.QUEUED.value, Proposal.eta <= now)
        .where(~Proposal.id.in_(select(Execution.proposal_id)))
        .order_by(Proposal.eta).limit(200)
    ).all()
    for p in due:
        msg = json.loads(p.message)
        spend = p.kind == "TreasurySpend"
        row = Execution(proposal_id=p.id, kind=p.kind, mode=_mode(runtime, p, msg),
                        asset=msg["asset"] if spend else None, bucket=msg["bucket"] if spend else None,
                        recipient=msg["recipient"] if spend else None, amount=int(msg["amount"]) if spend else None,
                        created_at=now, updated_at=now)
        try:
            with session.begin_nested():  # another scheduler may create it at the same moment
                session.add(row)
                session.flush()
            made += 1
        except IntegrityError:
            continue
    return made


def due(session: Session, status: ExecutionStatus, modes: tuple[str, ...], limit: int = 200) -> list[int]:
    """Executions in ``status`` run by the service in one of ``modes``, oldest first."""
    return list(session.exec(select(Execution.id).where(Execution.status == status, Execution.mode.in_(modes))
                             .order_by(Execution.id).limit(limit)))


# --- taking an execution, and the one place its status changes ---------------------------------

def lock_execution(session: Session, ex_id: int) -> Execution | None:
    """The execution, locked for this unit of work and read afresh (after its proposal's lock)."""
    return session.exec(select(Execution).where(Execution.id == ex_id).with_for_update()
                        .execution_options(populate_existing=True)).first()


def lock_if(session: Session, ex_id: int, status: ExecutionStatus,
             now: int) -> tuple[Execution, Proposal | None] | None:
    """Lock the proposal, then the execution if it is still in ``status`` and its back-off has
    passed; None if another runner moved it first (or it is not due). Every lock is taken in the
    same order (proposal, execution, journal head, chain nonce): a cancel, an expiry and a
    signing or settlement of the same proposal happen one after the other, never deadlocking.
    The caller checks what the (locked) proposal allows."""
    ex = session.get(Execution, ex_id)
    if ex is None:
        return None
    proposal = lock(session, ex.proposal_id)
    ex = session.exec(select(Execution).where(Execution.id == ex_id, Execution.status == status)
                      .where(or_(Execution.next_attempt_at.is_(None), Execution.next_attempt_at <= now))
                      .with_for_update().execution_options(populate_existing=True)).first()
    return (ex, proposal) if ex is not None else None


def move_status(session: Session, ex: Execution, to: ExecutionStatus, now: int, **values: Any) -> None:
    """Move a locked execution to ``to`` (the transition table decides if it may), with ``values``."""
    EXECUTION_STATUS.move(session, ex, to, updated_at=now, **values)


def not_runnable(ex: Execution, proposal: Proposal | None, now: int) -> str | None:
    """Why an execution cannot run now, from its locked proposal: ``gone``, ``expired`` (past the
    proposal's ``eta + grace``) or ``wrong_state`` (the proposal is not queued); None if it can."""
    if proposal is None:
        return "gone"
    if ex.status == S.EXPIRED or proposal.state == State.EXPIRED.value or \
            (proposal.state == State.QUEUED.value and now >= (proposal.deadline or 0)):
        return "expired"
    if proposal.state != State.QUEUED.value:
        return "wrong_state"
    return None


def record_attempt(session: Session, ex: Execution, now: int, *, ok: bool, actor: str, reason: str | None = None,
                    tx_hash: str | None = None) -> None:
    assert ex.id is not None
    session.add(ExecutionAttempt(execution_id=ex.id, at=now, ok=ok, actor=actor, reason=reason, tx_hash=tx_hash))
    if not ok:
        record_event(session, ex.proposal_id, "attempt_failed", now, actor, reason or "")


def apply(session: Session, runtime: Runtime, ex: Execution, proposal: Proposal, now: int,
          credit_account: str) -> None:
    """The effect on the treasury: a parameter version, or a journal entry for a spend (paid
    from the spend's reservation when it holds one, else from its bucket)."""
    msg = json.loads(proposal.message)
    if proposal.kind == "PriceChange":
        ex.parameter_version = service.add_parameter_version(
            session, "price", int(msg["price"]), now=now, proposal_id=proposal.id).id
    elif proposal.kind == "AllocationChange":
        allocation = {s["bucket"]: s["bps"] for s in msg["shares"]}
        ex.parameter_version = service.add_parameter_version(
            session, "allocation", allocation, now=now, proposal_id=proposal.id).id
    else:
        assert ex.amount is not None and ex.asset is not None
        entry = journal.append_entry(
            session, kind="spend", reference=f"proposal:{proposal.id}", now=now,
            token_asset=runtime.settings.token_symbol, memo=proposal.title,
            postings=[Posting(reservations.debit_account(session, ex), ex.asset, -ex.amount),
                      Posting(credit_account, ex.asset, ex.amount)],
        )
        ex.journal_seq = entry.seq


def execute(session: Session, runtime: Runtime, ex: Execution, proposal: Proposal, now: int, actor: str, *,
            credit_account: str, tx_hash: str | None = None) -> None:
    """Apply the effect of a locked execution and mark it: the execution ``done`` with its
    successful attempt, the proposal ``executed``. The effect is applied in a savepoint: when
    the treasury refuses it (a :class:`~governance.errors.GovernanceError`, raised) nothing of it
    remains, and the caller decides what the refusal means."""
    with session.begin_nested():
        apply(session, runtime, ex, proposal, now, credit_account=credit_account)
    move_status(session, ex, S.DONE, now, completed_at=now, attempts=ex.attempts + 1, lease_owner=None,
                lease_expires_at=None, last_error=None)
    record_attempt(session, ex, now, ok=True, actor=actor, tx_hash=tx_hash)
    transition(session, proposal, State.EXECUTED, at=now, actor=actor, executed_at=now,
               detail=f"execution {ex.id}" + (f", tx {ex.tx_hash}" if ex.tx_hash else ""))
    session.flush()


def fail_attempt(session: Session, runtime: Runtime, ex: Execution, now: int, actor: str, reason: str, *,
                 tx_hash: str | None = None, back_off: bool = True) -> None:
    """End the current attempt of a locked execution: release what it reserved, record why, and
    make it ready again, after ``retry_interval`` (``back_off``) or at once. An external
    execution keeps the block of its first claim: a payment made under any lease since then can
    still be reported (an executor whose lease lapsed may have paid before another gave up)."""
    reservations.release(session, runtime, ex, now)
    move_status(session, ex, S.READY, now, attempts=ex.attempts + 1, last_error=reason,
                next_attempt_at=now + runtime.settings.retry_interval if back_off else None,
                lease_owner=None, lease_expires_at=None, tx_hash=None, signed_tx=None,
                nonce=None)
    record_attempt(session, ex, now, ok=False, actor=actor, reason=reason, tx_hash=tx_hash)


def _end(session: Session, runtime: Runtime, ex: Execution, to: ExecutionStatus, now: int) -> None:
    """Take a locked, non-terminal execution to ``expired`` or ``canceled``, releasing its reservation."""
    reservations.release(session, runtime, ex, now)
    move_status(session, ex, to, now, lease_owner=None, lease_expires_at=None)


# --- the scheduler's steps, one execution (or proposal) each ----------------------------------

def run_internal(session: Session, runtime: Runtime, ex_id: int, now: int) -> bool:
    """Execute a ready ``parameters`` or ``internal`` execution; True if it is now done."""
    taken = lock_if(session, ex_id, S.READY, now)
    if taken is None or not_runnable(*taken, now):
        return False  # another runner has it, or expiry or cancellation handles it
    ex, proposal = taken
    assert proposal is not None
    actor = process_actor()
    try:
        execute(session, runtime, ex, proposal, now, actor, credit_account=f"payable:{ex.recipient}")
    except Unprocessable as exc:  # not enough in the bucket: never a partial payment
        fail_attempt(session, runtime, ex, now, actor, f"{exc.code}: {exc.detail}")
        return False
    return True


def record_failure(session: Session, runtime: Runtime, ex_id: int, now: int, exc: Exception) -> bool:
    """A scheduler step that raised is a failed attempt too, recorded with its reason and
    retried after ``retry_interval`` until the deadline (never an invisible loop). The caller
    runs it in a unit of work of its own: the step's was rolled back."""
    if isinstance(exc, GovernanceError):
        reason = f"{exc.code}: {exc.detail}"
    elif isinstance(exc, ContractLogicError):
        reason = f"the transfer would revert on chain ({type(exc).__name__}: {str(exc)[:300]})"
    else:  # anything else may carry internals: the log has them
        reason = f"unexpected error ({type(exc).__name__}); see the scheduler log"
    taken = lock_if(session, ex_id, S.READY, now)
    if taken is None:
        return False
    fail_attempt(session, runtime, taken[0], now, process_actor(), reason)
    session.flush()
    return True


def expirable(session: Session, now: int) -> list[str]:
    """Queued proposals past ``eta + grace`` whose spend is neither signed nor done."""
    busy = select(Execution.proposal_id).where(Execution.status.in_((*IN_FLIGHT, S.DONE)))
    return list(session.exec(select(Proposal.id).where(Proposal.state == State.QUEUED.value, Proposal.deadline <= now)
                             .where(~Proposal.id.in_(busy)).limit(200)))


def expire(session: Session, runtime: Runtime, proposal_id: str, now: int) -> bool:
    """Expire one proposal past its deadline, and its execution with it (releasing what it
    reserved), unless a signed transfer may still land or the spend is done. One proposal a
    unit of work: its locks are taken in the common order and held for one item only."""
    proposal = lock(session, proposal_id)
    if proposal is None or proposal.state != State.QUEUED.value or now < (proposal.deadline or 0):
        return False
    ex = session.exec(select(Execution).where(Execution.proposal_id == proposal_id)
                      .with_for_update().execution_options(populate_existing=True)).first()
    if ex is not None and ex.status in (*IN_FLIGHT, S.DONE):
        return False  # signed since we looked: it may still land
    if ex is not None and ex.status not in TERMINAL:
        _end(session, runtime, ex, S.EXPIRED, now)
    transition(session, proposal, State.EXPIRED, at=now, actor=process_actor(), expired_at=now)
    session.flush()
    return True


def stopped(session: Session) -> list[int]:
    """Executions still open whose proposal was canceled (or expired without them)."""
    return list(session.exec(
        select(Execution.id).join(Proposal, Proposal.id == Execution.proposal_id)
        .where(Execution.status.in_((S.READY, S.CLAIMED)),
               Proposal.state.in_((State.CANCELED.value, State.EXPIRED.value))).limit(200)))


def end_stopped(session: Session, runtime: Runtime, ex_id: int, now: int) -> bool:
    """End one execution of a canceled or expired proposal, releasing what it reserved."""
    ex = session.get(Execution, ex_id)
    if ex is None:
        return False
    proposal = lock(session, ex.proposal_id)
    ex = lock_execution(session, ex_id)
    if proposal is None or ex is None or ex.status not in (S.READY, S.CLAIMED) \
            or proposal.state not in (State.CANCELED.value, State.EXPIRED.value):
        return False
    _end(session, runtime, ex, S.CANCELED if proposal.state == State.CANCELED.value else S.EXPIRED, now)
    session.flush()
    return True


def cancel_guard(session: Session, proposal_id: str) -> str | None:
    """Why a proposal can no longer be canceled (a transfer signed, landed or done), or None.
    The caller holds the proposal's lock, which every path into those states takes first."""
    ex = session.exec(select(Execution).where(Execution.proposal_id == proposal_id)
                      .execution_options(populate_existing=True)).first()
    if ex is not None and ex.status in (*IN_FLIGHT, S.DONE, S.FAILED):
        return f"execution {ex.id} is {ex.status} (transaction {ex.tx_hash}); it can no longer be stopped"
    if ex is not None and ex.status == S.CLAIMED:
        # an executor holds it, or held it (a lapsed lease keeps its reservation): it may have paid
        # already, and a canceled execution could never be completed; it must fail it first
        return (f"execution {ex.id} is claimed by an external executor, who may have paid; it can be canceled "
                f"once the executor fails it")
    return None


def list_executions(session: Session, *, status: str | None, after: int, limit: int) -> list[Execution]:
    query = select(Execution).where(Execution.id > after).order_by(Execution.id).limit(limit)
    if status is not None:
        if status not in {s.value for s in ExecutionStatus}:
            raise BadRequest(f"status is one of {', '.join(ExecutionStatus)}", code="invalid_filter")
        query = query.where(Execution.status == status)
    return list(session.exec(query))


def attempts_of(session: Session, ids: list[int]) -> dict[int, list[Any]]:
    """Each execution's attempts, oldest first, as read-only rows (Core: proposal reads call this)."""
    out: dict[int, list[Any]] = {i: [] for i in ids}
    if ids:
        at = ExecutionAttempt.__table__
        for a in session.execute(sa_select(at).where(at.c.execution_id.in_(ids)).order_by(at.c.id)):
            out[a.execution_id].append(a)
    return out
