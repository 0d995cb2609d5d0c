"""External executors: claim a spend, pay it outside the service, report it.

- **lease_to_executor** (``POST …/claim``) leases the execution for ``execution_lease_seconds``
  (never past the proposal's deadline) and reserves its amount in the journal, so nothing
  drains the bucket between the executor's payment and its report. For an on-chain asset the
  chain head is recorded at the first claim: the reported transaction must be mined after it.
  A lapsed lease may be claimed again, by anyone, with the same reservation; every later claim,
  after a lapse or after ``fail``, keeps that first starting block (an executor whose lease
  lapsed may have paid, and its payment must stay reportable).
- **complete** (``POST …/complete``) records what was paid: for an on-chain asset a transaction
  hash, checked on chain (an allowed sender of the asset paid exactly the amount to the
  recipient, after the first claim, confirmed; one transaction completes one execution); for an
  off-chain asset a reference, and no transaction hash (nothing could check it, and an
  unchecked hash would take the place of the transaction that really paid another spend).
- **fail** (``POST …/fail``) gives the lease up: the reservation goes back to the bucket.

They move the execution ``ready`` → ``claimed`` (or a lapsed ``claimed`` → ``claimed``), then
``claimed`` → ``done`` or ``ready``, through ``executions.move_status``. After the proposal's
deadline (``eta + grace``) claim and complete are refused with 409 ``execution_expired`` and
store nothing: the scheduler expires the execution.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from governance.errors import Conflict, NotFound, Unprocessable
from governance.runtime import Runtime
from proposals.models import Proposal
from proposals.transitions import lock
from treasury_exec import reservations
from treasury_exec.executions import (
    chain_client,
    execute,
    fail_attempt,
    lock_execution,
    move_status,
    not_runnable,
)
from treasury_exec.models import Execution
from treasury_exec.status import ExecutionStatus as S


def get_execution(session: Session, ex_id: int) -> Execution:
    ex = session.get(Execution, ex_id)
    if ex is None:
        raise NotFound(f"no execution {ex_id}", code="execution_not_found")
    return ex


def _locked(session: Session, ex_id: int) -> Execution:
    ex = lock_execution(session, ex_id)
    if ex is None:
        raise NotFound(f"no execution {ex_id}", code="execution_not_found")
    return ex


def _open(session: Session, ex: Execution, now: int) -> Proposal:
    """Lock the execution's proposal (always first, see ``executions._lock_if``); refuse unless
    the execution can run (the proposal queued, its deadline not passed)."""
    return _runnable(ex, lock(session, ex.proposal_id), now)


def _runnable(ex: Execution, proposal: Proposal | None, now: int) -> Proposal:
    why = not_runnable(ex, proposal, now)
    if why == "gone":
        raise Conflict(f"the proposal of execution {ex.id} is gone", code="wrong_state")
    assert proposal is not None
    if why == "expired":
        raise Conflict(f"execution {ex.id} expired at {proposal.deadline} (the proposal's eta + grace); "
                       "nothing was recorded", code="execution_expired", extra={"status": "expired"})
    if why == "wrong_state":
        raise Conflict(f"the proposal is {proposal.state}", code="wrong_state", extra={"status": ex.status})
    return proposal


def lease_to_executor(session: Session, runtime: Runtime, ex_id: int, executor: str) -> Execution:
    """Lease an external execution to ``executor`` and reserve its amount (``POST …/claim``); an
    expired lease may be leased again by anyone (the reservation and starting block stay)."""
    now = runtime.clock.now()
    ex = get_execution(session, ex_id)
    if ex.mode != "external":
        raise Conflict(f"execution {ex_id} is run by the service ({ex.mode}), not by executors", code="not_external")
    proposal = _open(session, ex, now)
    ex = _locked(session, ex_id)
    lapsed = ex.status == S.CLAIMED and (ex.lease_expires_at or 0) <= now
    if ex.status != S.READY and not lapsed:
        raise Conflict(f"execution {ex_id} is {ex.status}" + (f", leased until {ex.lease_expires_at}"
                       if ex.status == S.CLAIMED else ""), code="not_claimable", extra={"status": ex.status})
    if not reservations.held(session, ex):
        reservations.reserve(session, runtime, ex, now)  # 422 insufficient_funds: the bucket holds less
    claimed_block = ex.claimed_block
    if claimed_block is None and ex.asset in runtime.chain_assets:
        claimed_block = chain_client(runtime).head_block()
    move_status(session, ex, S.CLAIMED, now, lease_owner=executor, claimed_block=claimed_block,
                lease_expires_at=min(now + runtime.settings.execution_lease_seconds, proposal.deadline or 0))
    session.flush()
    return ex


def _held(session: Session, ex_id: int, executor: str, now: int) -> Execution:
    ex = _locked(session, ex_id)
    if ex.status != S.CLAIMED or ex.lease_owner != executor:
        raise Conflict(f"execution {ex_id} is {ex.status} and not leased to this executor", code="not_claimed",
                       extra={"status": ex.status})
    if (ex.lease_expires_at or 0) <= now:
        raise Conflict(f"the lease on execution {ex_id} expired at {ex.lease_expires_at}; claim it again",
                       code="lease_expired", extra={"status": ex.status})
    return ex


def complete(session: Session, runtime: Runtime, ex_id: int, executor: str, *, tx_hash: str | None,
             reference: str | None) -> tuple[Execution, bool]:
    """Record what an executor did. On-chain assets need the transaction hash, checked on chain;
    internal ones a reference. The identical completion again returns the stored one."""
    now = runtime.clock.now()
    tx_hash = tx_hash.lower() if tx_hash else None  # one form: a hash in capitals is the same transaction
    ex = get_execution(session, ex_id)
    proposal = None
    if ex.status != S.DONE:
        # under the locks, a completion that raced this one is seen as done (and answered as such)
        proposal = lock(session, ex.proposal_id)
        ex = _locked(session, ex_id)
    if ex.status == S.DONE:
        if (tx_hash, reference or None) == (ex.tx_hash, ex.reference):
            return ex, False
        raise Conflict(f"execution {ex_id} was already completed", code="already_completed")
    proposal = _runnable(ex, proposal, now)
    ex = _held(session, ex_id, executor, now)
    asset = runtime.chain_assets.get(ex.asset or "")
    if asset is None and tx_hash:
        raise Unprocessable(f"{ex.asset} is not an on-chain asset: report the payment with a reference, "
                            "not a transaction hash", code="tx_hash_not_applicable")
    if asset is not None:
        if not tx_hash:
            raise Unprocessable(f"{ex.asset} lives on chain: give the transaction hash", code="tx_hash_required")
        if ex.claimed_block is None:  # leased before claims recorded their block
            raise Conflict(f"execution {ex_id} was claimed without a starting block; claim it again",
                           code="lease_expired", extra={"status": ex.status})
    elif not reference:
        raise Unprocessable("give a reference for what was done", code="reference_required")
    if tx_hash:
        used = session.exec(select(Execution.id).where(Execution.tx_hash == tx_hash, Execution.id != ex_id)).first()
        if used is not None:
            raise Conflict(f"transaction {tx_hash} already completed execution {used}", code="tx_already_used")
    if asset is not None:
        assert tx_hash is not None and ex.claimed_block is not None
        check = chain_client(runtime).check_transfer(
            tx_hash, asset, recipient=ex.recipient, amount=ex.amount, after_block=ex.claimed_block,
            confirmations=runtime.settings.confirmations)
        if not check.ok:
            raise Unprocessable(f"transaction {tx_hash}: {check.why}", code=check.code)
    try:
        # the unique index decides between two concurrent completions; the write is inside the
        # savepoint (begin_nested flushes what is pending before it opens), so a loser's is undone
        with session.begin_nested():
            ex.tx_hash, ex.reference = tx_hash, reference
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"transaction {tx_hash} already completed another execution", code="tx_already_used") from exc
    execute(session, runtime, ex, proposal, now, executor, tx_hash=tx_hash,
            credit_account=f"external:{ex.recipient}" if asset else f"payable:{ex.recipient}")
    return ex, True


def fail(session: Session, runtime: Runtime, ex_id: int, executor: str, reason: str) -> Execution:
    """An executor gives up on its lease: the reservation goes back to the bucket, and the
    execution is free for the next attempt."""
    now = runtime.clock.now()
    ex = get_execution(session, ex_id)
    lock(session, ex.proposal_id)
    ex = _held(session, ex_id, executor, now)
    fail_attempt(session, runtime, ex, now, executor, reason, back_off=False)  # an executor decides when to retry
    session.flush()
    return ex
