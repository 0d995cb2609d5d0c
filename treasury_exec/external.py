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

Both ask the chain node before their unit of work takes any lock (:func:`read_chain`, in a
read-only unit of work of its own: on SQLite a lock is the whole database's, and a slow node
would stall every writer), then check under the locks that the execution is still what the node
was asked about (else 409 ``execution_changed``: report again).

They move the execution ``ready`` → ``claimed`` (or a lapsed ``claimed`` → ``claimed``), then
``claimed`` → ``done`` or ``ready``, through ``executions.move_status``. After the proposal's
deadline (``eta + grace``) claim and complete are refused with 409 ``execution_expired`` and
store nothing: the scheduler expires the execution.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from governance.db import session_scope
from governance.errors import Conflict, NotFound, Unprocessable
from governance.runtime import Runtime
from proposals.models import Proposal
from proposals.transitions import lock
from treasury_exec import reservations
from treasury_exec.chain import TransferCheck
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


@dataclass(frozen=True)
class ChainReading:
    """What the node said for one claim or completion, asked before any lock: the chain head,
    and the check of a reported transaction, with the execution's ``terms`` they were read for
    (asset, recipient, amount, first claim's block)."""

    terms: tuple[str | None, str | None, int | None, int | None]
    head: int | None = None
    tx_hash: str | None = None
    check: TransferCheck | None = None


def _terms(ex: Execution) -> tuple[str | None, str | None, int | None, int | None]:
    return ex.asset, ex.recipient, ex.amount, ex.claimed_block


def read_chain(runtime: Runtime, ex_id: int, *, tx_hash: str | None = None) -> ChainReading | None:
    """Ask the node what a claim (the head) or a completion (the check of ``tx_hash``) of an
    on-chain execution needs, in a read-only unit of work of its own, before the request's
    takes its locks. None for an execution of an asset off chain, or none at all (the
    request's own checks say what is wrong)."""
    with session_scope(runtime.engine, write=False) as s:
        ex = s.get(Execution, ex_id)
    asset = runtime.chain_assets.get(ex.asset or "") if ex is not None else None
    if ex is None or asset is None:
        return None
    client = chain_client(runtime)
    if not tx_hash:
        return ChainReading(_terms(ex), head=client.head_block())
    tx_hash = tx_hash.lower()
    check = None
    if ex.status == S.CLAIMED and ex.claimed_block is not None and ex.recipient and ex.amount is not None:
        check = client.check_transfer(tx_hash, asset, recipient=ex.recipient, amount=ex.amount,
                                      after_block=ex.claimed_block, confirmations=runtime.settings.confirmations)
    return ChainReading(_terms(ex), tx_hash=tx_hash, check=check)


def _changed(ex: Execution) -> Conflict:
    return Conflict(f"execution {ex.id} changed while the chain was read for it; send the request again",
                    code="execution_changed", extra={"status": ex.status})


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


def lease_to_executor(session: Session, runtime: Runtime, ex_id: int, executor: str,
                      chain: ChainReading | None = None) -> Execution:
    """Lease an external execution to ``executor`` and reserve its amount (``POST …/claim``); an
    expired lease may be leased again by anyone (the reservation and starting block stay). For
    an on-chain asset, ``chain`` (:func:`read_chain`) gives the head its first claim records."""
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
        if chain is None or chain.head is None or chain.terms[:3] != _terms(ex)[:3]:
            raise _changed(ex)
        claimed_block = chain.head  # read a moment before the lock: a bound no later than the claim
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
             reference: str | None, chain: ChainReading | None = None) -> tuple[Execution, bool]:
    """Record what an executor did. On-chain assets need the transaction hash, checked on chain
    before the locks (``chain``, :func:`read_chain`); internal ones a reference. The identical
    completion again returns the stored one."""
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
        check = chain.check if chain is not None and chain.tx_hash == tx_hash else None
        if check is None or chain is None or chain.terms != _terms(ex):
            raise _changed(ex)
        if not check.ok:
            raise Unprocessable(f"transaction {tx_hash}: {check.why}", code=check.code,
                                extra={"retryable": check.retryable})
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
