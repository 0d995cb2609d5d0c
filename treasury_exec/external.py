"""External executors: claim a spend, pay it outside the service, report it.

- **claim** leases the execution for ``execution_lease_seconds`` (never past the proposal's
  deadline) and reserves its amount in the journal, so nothing drains the bucket between the
  executor's payment and its report. For an on-chain asset the chain head is recorded: the
  reported transaction must be mined after it. A lapsed lease may be claimed again, by anyone,
  with the same reservation and the same starting block (the first executor may have paid).
- **complete** records what was paid: a transaction hash, checked on chain (an allowed sender
  of the asset paid exactly the amount to the recipient, after the claim, confirmed; one
  transaction completes one execution), or a reference for off-chain assets.
- **fail** gives the lease up: the reservation goes back to the bucket.

After the proposal's deadline (``eta + grace``) claim and complete are refused with 409
``execution_expired`` and store nothing: the scheduler expires the execution.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from governance.errors import Conflict, NotFound, Unprocessable
from governance.runtime import Runtime
from proposals.lifecycle import State
from proposals.models import Proposal
from treasury_exec import reservations
from treasury_exec.executions import apply, chain_assets, chain_client, fail_attempt, finish, lock_proposal
from treasury_exec.models import Execution


def get_execution(session: Session, ex_id: int) -> Execution:
    ex = session.get(Execution, ex_id)
    if ex is None:
        raise NotFound(f"no execution {ex_id}", code="execution_not_found")
    return ex


def _locked(session: Session, ex_id: int) -> Execution:
    ex = session.exec(select(Execution).where(Execution.id == ex_id).with_for_update()
                      .execution_options(populate_existing=True)).first()
    if ex is None:
        raise NotFound(f"no execution {ex_id}", code="execution_not_found")
    return ex


def _open(session: Session, ex: Execution, now: int) -> Proposal:
    """Lock the execution's proposal (see ``lock_proposal``); refuse once its deadline passed."""
    proposal = lock_proposal(session, ex.proposal_id)
    if proposal is None:
        raise Conflict(f"the proposal of execution {ex.id} is gone", code="wrong_state")
    if ex.status == "expired" or proposal.state == State.EXPIRED.value or \
            (proposal.state == State.QUEUED.value and now >= (proposal.deadline or 0)):
        raise Conflict(f"execution {ex.id} expired at {proposal.deadline} (the proposal's eta + grace); "
                       "nothing was recorded", code="execution_expired", extra={"status": "expired"})
    if proposal.state != State.QUEUED.value:
        raise Conflict(f"the proposal is {proposal.state}", code="wrong_state", extra={"status": ex.status})
    return proposal


def claim(session: Session, runtime: Runtime, ex_id: int, executor: str) -> Execution:
    """Lease an external execution to ``executor`` and reserve its amount; an expired lease
    may be claimed again by anyone (the reservation stays)."""
    now = runtime.clock.now()
    ex = get_execution(session, ex_id)
    if ex.mode != "external":
        raise Conflict(f"execution {ex_id} is run by the service ({ex.mode}), not by executors", code="not_external")
    proposal = _open(session, ex, now)
    ex = _locked(session, ex_id)
    lapsed = ex.status == "claimed" and (ex.lease_expires_at or 0) <= now
    if ex.status != "ready" and not lapsed:
        raise Conflict(f"execution {ex_id} is {ex.status}" + (f", leased until {ex.lease_expires_at}"
                       if ex.status == "claimed" else ""), code="not_claimable", extra={"status": ex.status})
    if not reservations.held(session, ex):
        reservations.reserve(session, runtime, ex, now)  # 422 insufficient_funds: the bucket holds less
    if ex.claimed_block is None and ex.asset in chain_assets(runtime):
        ex.claimed_block = chain_client(runtime).head_block()
    ex.status, ex.lease_owner, ex.updated_at = "claimed", executor, now
    ex.lease_expires_at = min(now + runtime.settings.execution_lease_seconds, proposal.deadline or 0)
    session.add(ex)
    session.flush()
    return ex


def _held(session: Session, ex_id: int, executor: str, now: int) -> Execution:
    ex = _locked(session, ex_id)
    if ex.status != "claimed" or ex.lease_owner != executor:
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
    if ex.status == "done":
        if (tx_hash, reference or None) == (ex.tx_hash, ex.reference):
            return ex, False
        raise Conflict(f"execution {ex_id} was already completed", code="already_completed")
    proposal = _open(session, ex, now)
    ex = _held(session, ex_id, executor, now)
    asset = chain_assets(runtime).get(ex.asset or "")
    if asset is not None:
        if not tx_hash:
            raise Unprocessable(f"{ex.asset} lives on chain: give the transaction hash", code="tx_hash_required")
        if ex.claimed_block is None:  # leased before claims recorded their block
            raise Conflict(f"execution {ex_id} was claimed without a starting block; claim it again",
                           code="lease_expired", extra={"status": ex.status})
    elif not (reference or tx_hash):
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
    ex.tx_hash, ex.reference = tx_hash, reference
    try:
        with session.begin_nested():  # the unique index decides between two concurrent completions
            session.add(ex)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"transaction {tx_hash} already completed another execution", code="tx_already_used") from exc
    apply(session, runtime, ex, proposal, now,
          credit_account=f"external:{ex.recipient}" if asset else f"payable:{ex.recipient}")
    finish(session, ex, now, executor, tx_hash=tx_hash)
    return ex, True


def fail(session: Session, runtime: Runtime, ex_id: int, executor: str, reason: str) -> Execution:
    """An executor gives up on its lease: the reservation goes back to the bucket, and the
    execution is free for the next attempt."""
    now = runtime.clock.now()
    ex = get_execution(session, ex_id)
    lock_proposal(session, ex.proposal_id)
    ex = _held(session, ex_id, executor, now)
    fail_attempt(session, runtime, ex, now, executor, reason)
    ex.next_attempt_at = None  # an executor decides when to try again
    session.flush()
    return ex
