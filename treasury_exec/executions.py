"""Executing queued proposals against the treasury, exactly once, each to a visible end.

Every execution is one row per proposal (unique), moved by conditional UPDATEs so that two
schedulers and any number of external executors cannot both apply it:

- ``parameters`` (PriceChange, AllocationChange) and ``internal`` spends run in one
  transaction: claim the row, apply the effect, mark it done and the proposal executed. The
  effect and the marks commit together or not at all.
- ``chain`` spends are signed and stored before they are broadcast (see ``chain.py``), and
  the amount is reserved in the same transaction (see ``reservations.py``): a bucket never
  has more signed against it than it holds. The stored transaction is re-broadcast until its
  receipt arrives; a mined, confirmed transfer is journaled from the reservation and marks
  the proposal executed. A reverted one, or one whose nonce another transaction took (it can
  never land), releases the reservation and counts as a failed attempt. Nothing else ever
  signs a second transfer for the same execution while the first may still land.
- ``external`` executions wait for an executor key (``external.py``): claim (a lease, and a
  reservation), then complete (a transaction hash checked on chain, or a reference) or fail.

Statuses (``STATUSES``): ``ready`` (due, or waiting ``next_attempt_at`` after a failed
attempt), ``claimed`` and ``signed`` (amount reserved); terminal: ``done``, ``expired``
(not done by the proposal's ``eta + grace``), ``canceled`` (the proposal was canceled) and
``failed`` (a transfer landed but could not be journaled; the operator reconciles it).
``running``, ``signing`` and ``settling`` live only inside one transaction. A failed attempt
is recorded with its reason and retried after ``retry_interval`` until the deadline.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from web3.exceptions import ContractLogicError, Web3RPCError

from governance.errors import BadRequest, Conflict, GovernanceError, Unprocessable
from governance.runtime import Runtime
from proposals.lifecycle import State
from proposals.models import Proposal
from proposals.service import process_actor, record_event
from treasury_exec import journal, reservations, service
from treasury_exec.chain import ChainAsset, ChainClient, SignedTransfer, sender_of
from treasury_exec.journal import Posting
from treasury_exec.models import ChainNonce, Execution, ExecutionAttempt

log = logging.getLogger("treasury_exec.executions")

IN_FLIGHT = ("signed",)  # a transfer that may still land: the proposal can neither expire nor be canceled
TERMINAL = ("done", "expired", "canceled", "failed")
STATUSES = ("ready", "claimed", "signed", *TERMINAL)  # every status a committed execution can have


def chain_assets(runtime: Runtime) -> dict[str, ChainAsset]:
    return runtime.chain_assets


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
    asset = chain_assets(runtime).get(msg["asset"])
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


def lock_proposal(session: Session, proposal_id: str) -> Proposal | None:
    """The proposal, locked for this transaction. Every path that moves an execution takes its
    proposal's lock first (cancellation does too): so a cancel, an expiry and a signing or
    settlement of the same proposal happen one after the other, always in the same order
    (proposal, execution, journal head, chain nonce), never deadlocking."""
    return session.exec(select(Proposal).where(Proposal.id == proposal_id).with_for_update()
                        .execution_options(populate_existing=True)).first()


def _attempt(session: Session, ex: Execution, now: int, *, ok: bool, actor: str, reason: str | None = None,
             tx_hash: str | None = None) -> None:
    assert ex.id is not None
    session.add(ExecutionAttempt(execution_id=ex.id, at=now, ok=ok, actor=actor, reason=reason, tx_hash=tx_hash))
    if not ok:
        record_event(session, ex.proposal_id, "attempt_failed", now, actor, reason or "")


def _claim(session: Session, ex_id: int, from_status: str, to_status: str, now: int, **values: Any) -> bool:
    """Move an execution between states if and only if it is still in ``from_status``: the
    one place every runner, scheduler or executor, takes an execution."""
    return session.execute(
        update(Execution).where(Execution.id == ex_id, Execution.status == from_status)
        .where(or_(Execution.next_attempt_at.is_(None), Execution.next_attempt_at <= now))
        .values(status=to_status, updated_at=now, **values)
    ).rowcount == 1


def _take(session: Session, ex_id: int, from_status: str, to_status: str,
          now: int) -> tuple[Execution, Proposal] | None:
    """Lock the proposal, then move its execution from ``from_status`` to ``to_status``; None
    if another runner has it. The caller checks what the (locked) proposal allows."""
    ex = session.get(Execution, ex_id)
    if ex is None:
        return None
    proposal = lock_proposal(session, ex.proposal_id)
    if not _claim(session, ex_id, from_status, to_status, now):
        return None
    ex = session.get(Execution, ex_id, populate_existing=True)
    return ex, proposal


def _mark_executed(session: Session, ex: Execution, now: int, actor: str) -> None:
    moved = session.execute(
        update(Proposal).where(Proposal.id == ex.proposal_id, Proposal.state == State.QUEUED.value)
        .values(state=State.EXECUTED.value, executed_at=now, updated_at=now)
    ).rowcount
    if moved != 1:
        # the effect must not commit without the transition: roll the whole unit back
        raise Conflict(f"proposal {ex.proposal_id} is no longer queued", code="wrong_state")
    record_event(session, ex.proposal_id, "executed", now, actor,
                 f"execution {ex.id}" + (f", tx {ex.tx_hash}" if ex.tx_hash else ""))


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


def finish(session: Session, ex: Execution, now: int, actor: str, tx_hash: str | None = None) -> None:
    """Mark an applied execution done and its proposal executed (same transaction)."""
    ex.status, ex.completed_at, ex.attempts, ex.updated_at = "done", now, ex.attempts + 1, now
    ex.lease_owner = ex.lease_expires_at = None
    session.add(ex)
    _attempt(session, ex, now, ok=True, actor=actor, tx_hash=tx_hash)
    _mark_executed(session, ex, now, actor)
    session.flush()


def fail_attempt(session: Session, runtime: Runtime, ex: Execution, now: int, actor: str, reason: str,
                 tx_hash: str | None = None) -> None:
    """End the current attempt of an execution this transaction holds: release what it
    reserved, record why, and make it ready again after ``retry_interval``."""
    reservations.release(session, runtime, ex, now)
    ex.status, ex.attempts, ex.last_error = "ready", ex.attempts + 1, reason
    ex.next_attempt_at = now + runtime.settings.retry_interval
    ex.lease_owner = ex.lease_expires_at = ex.claimed_block = None
    ex.tx_hash = ex.signed_tx = None
    ex.nonce = None
    ex.updated_at = now
    session.add(ex)
    _attempt(session, ex, now, ok=False, actor=actor, reason=reason, tx_hash=tx_hash)


def run_internal(session: Session, runtime: Runtime, ex_id: int, now: int) -> bool:
    """Execute a ``parameters`` or ``internal`` execution; True if it is now done."""
    actor = process_actor()
    taken = _take(session, ex_id, "ready", "running", now)
    if taken is None:
        session.rollback()
        return False
    ex, proposal = taken
    if proposal is None or proposal.state != State.QUEUED.value or now >= (proposal.deadline or 0):
        session.rollback()  # expiry or cancellation handles it
        return False
    try:
        with session.begin_nested():
            apply(session, runtime, ex, proposal, now, credit_account=f"payable:{ex.recipient}")
    except Unprocessable as exc:  # not enough in the bucket: never a partial payment
        fail_attempt(session, runtime, ex, now, actor, f"{exc.code}: {exc.detail}")
        return False
    finish(session, ex, now, actor)
    return True


def sign_chain(session: Session, runtime: Runtime, ex_id: int, now: int) -> SignedTransfer | None:
    """Claim a ``chain`` execution, reserve its amount and store its signed transfer (not yet
    broadcast). A bucket that cannot pay is a failed attempt, and nothing is signed."""
    actor = process_actor()
    taken = _take(session, ex_id, "ready", "signing", now)
    if taken is None:
        session.rollback()
        return None
    ex, proposal = taken
    if proposal is None or proposal.state != State.QUEUED.value or now >= (proposal.deadline or 0):
        session.rollback()
        return None
    assert ex.amount is not None and ex.asset is not None
    available = reservations.bucket_available(session, ex.bucket, ex.asset)
    if available < ex.amount:  # the cheap refusal, before any RPC
        fail_attempt(session, runtime, ex, now, actor,
                     f"insufficient_funds: bucket:{ex.bucket} holds {available} {ex.asset}; {ex.amount} needed")
        return None
    asset = chain_assets(runtime)[ex.asset]
    account = runtime.treasury_account
    if account is None:  # bootstrap loads it whenever an asset has mode chain
        raise RuntimeError("no treasury key: DAO_TREASURY_KEY_FILE or DAO_TREASURY_PRIVATE_KEY")
    client = chain_client(runtime)
    nonce_row = session.exec(select(ChainNonce).where(ChainNonce.address == account.address)
                             .with_for_update()).first()
    if nonce_row is None:
        nonce_row = ChainNonce(address=account.address, next_nonce=0)
    nonce = max(nonce_row.next_nonce, client.pending_nonce(account.address))
    signed = client.sign_transfer(account, asset, ex.recipient, ex.amount, nonce)
    # The binding check: the reservation, under the journal head's lock, taken after the RPC
    # calls so that other journal writers wait for this commit only, never for the node.
    try:
        reservations.reserve(session, runtime, ex, now)
    except Unprocessable as exc:
        fail_attempt(session, runtime, ex, now, actor, f"{exc.code}: {exc.detail}")
        return None  # the transaction signed above is dropped unsent; its nonce stays free
    nonce_row.next_nonce = nonce + 1
    session.add(nonce_row)
    ex.status, ex.tx_hash, ex.signed_tx, ex.nonce, ex.updated_at = "signed", signed.tx_hash, signed.raw, nonce, now
    ex.last_error = None
    session.add(ex)
    record_event(session, ex.proposal_id, "transfer_signed", now, actor, f"tx {signed.tx_hash}, nonce {nonce}")
    session.flush()
    return signed


def settle_chain(session: Session, runtime: Runtime, ex_id: int, now: int) -> str:
    """Act on a stored transfer: ``pending`` (broadcast again, harmlessly), ``done``
    (journaled from its reservation, proposal executed), ``reverted`` or ``dropped`` (its
    nonce was taken by another transaction, so it can never land): both release the
    reservation as a failed attempt. ``failed``: it landed but could not be journaled."""
    ex = session.get(Execution, ex_id)
    if ex is None or ex.status != "signed" or not ex.signed_tx:
        return "skipped"
    client = chain_client(runtime)
    signed = SignedTransfer(tx_hash=ex.tx_hash, raw=ex.signed_tx, nonce=ex.nonce or 0)
    need = max(runtime.settings.confirmations, 1)
    # read before the receipt: if the nonce was taken in a confirmed block and ours still has no
    # receipt afterwards, the transaction that took it was not ours
    taken = client.nonce_taken(sender_of(signed.raw), signed.nonce, need)
    receipt = client.receipt(signed.tx_hash)
    if receipt is None and not taken:
        try:
            client.broadcast(signed)
        except Web3RPCError as exc:  # the node refuses it (fees, gas money): say so, keep trying
            _note(session, ex, f"the node refuses the transfer for now: {exc}", now)
            return "pending"
        receipt = client.receipt(signed.tx_hash)
    if receipt is None and not taken:
        proposal = session.get(Proposal, ex.proposal_id)
        if proposal is not None and now >= (proposal.deadline or 0):
            # it may still land (and would then be journaled); only its nonce can stop it
            _note(session, ex, f"not mined by the deadline: a transaction with nonce {signed.nonce} from the "
                  "treasury account (say, a zero-value transfer to itself) ends it", now)
        return "pending"
    if receipt is not None and receipt.ok and receipt.confirmations < need:
        return "pending"
    actor = process_actor()
    held = _take(session, ex_id, "signed", "settling", now)
    if held is None:
        session.rollback()
        return "skipped"
    ex, proposal = held
    if receipt is None:
        fail_attempt(session, runtime, ex, now, actor, f"nonce {signed.nonce} was used by another transaction: "
                     "this transfer can never land", tx_hash=signed.tx_hash)
        return "dropped"
    if not receipt.ok:
        fail_attempt(session, runtime, ex, now, actor, "the transfer reverted on chain", tx_hash=signed.tx_hash)
        return "reverted"
    # a landed transfer is journaled whatever happened meanwhile: the money moved
    try:
        with session.begin_nested():
            apply(session, runtime, ex, proposal, now, credit_account=f"external:{ex.recipient}")
            finish(session, ex, now, actor, tx_hash=signed.tx_hash)
    except GovernanceError as exc:
        # never retried in a loop: the transfer is final, the books need a person
        ex = session.get(Execution, ex_id, populate_existing=True)
        reason = (f"transfer {signed.tx_hash} landed in block {receipt.block} but could not be journaled "
                  f"({exc.code}: {exc.detail}); reconcile it by hand")
        ex.status, ex.attempts, ex.last_error, ex.updated_at = "failed", ex.attempts + 1, reason, now
        session.add(ex)
        _attempt(session, ex, now, ok=False, actor=actor, reason=reason, tx_hash=signed.tx_hash)
        session.flush()
        log.error("execution %s: %s", ex_id, reason)
        return "failed"
    return "done"


def _note(session: Session, ex: Execution, why: str, now: int) -> None:
    """Show why an execution is not moving, without changing its state."""
    if ex.last_error != why:
        session.execute(update(Execution).where(Execution.id == ex.id, Execution.status == ex.status)
                        .values(last_error=why, updated_at=now))


def record_failure(session: Session, runtime: Runtime, ex_id: int, now: int, exc: Exception) -> bool:
    """A scheduler step that raised is a failed attempt too, recorded with its reason and
    retried after ``retry_interval`` until the deadline (never an invisible loop)."""
    if isinstance(exc, GovernanceError):
        reason = f"{exc.code}: {exc.detail}"
    elif isinstance(exc, ContractLogicError):
        reason = f"the transfer would revert on chain ({type(exc).__name__}: {str(exc)[:300]})"
    else:  # anything else may carry internals: the log has them
        reason = f"unexpected error ({type(exc).__name__}); see the scheduler log"
    taken = _take(session, ex_id, "ready", "ready", now)
    if taken is None:
        return False
    ex, _ = taken
    fail_attempt(session, runtime, ex, now, process_actor(), reason)
    session.flush()
    return True


def _end(session: Session, runtime: Runtime, ex: Execution, status: str, now: int) -> None:
    """Take a non-terminal execution to ``expired`` or ``canceled``, releasing its reservation."""
    reservations.release(session, runtime, ex, now)
    ex.status, ex.updated_at = status, now
    ex.lease_owner = ex.lease_expires_at = None
    session.add(ex)


def expirable(session: Session, now: int) -> list[str]:
    """Queued proposals past ``eta + grace`` whose spend is neither signed nor done."""
    busy = select(Execution.proposal_id).where(Execution.status.in_((*IN_FLIGHT, "done")))
    return list(session.exec(select(Proposal.id).where(Proposal.state == State.QUEUED.value, Proposal.deadline <= now)
                             .where(~Proposal.id.in_(busy)).limit(200)))


def expire(session: Session, runtime: Runtime, proposal_id: str, now: int) -> bool:
    """Expire one proposal past its deadline, and its execution with it (releasing what it
    reserved), unless a signed transfer may still land or the spend is done. One proposal a
    transaction: its locks are taken in the common order and held for one item only."""
    proposal = lock_proposal(session, proposal_id)
    if proposal is None or proposal.state != State.QUEUED.value or now < (proposal.deadline or 0):
        return False
    ex = session.exec(select(Execution).where(Execution.proposal_id == proposal_id)
                      .with_for_update().execution_options(populate_existing=True)).first()
    if ex is not None and ex.status in (*IN_FLIGHT, "done"):
        return False  # signed since we looked: it may still land
    proposal.state, proposal.expired_at, proposal.updated_at = State.EXPIRED.value, now, now
    session.add(proposal)
    if ex is not None and ex.status not in TERMINAL:
        _end(session, runtime, ex, "expired", now)
    record_event(session, proposal_id, "expired", now, process_actor())
    session.flush()
    return True


def stopped(session: Session) -> list[int]:
    """Executions still open whose proposal was canceled (or expired without them)."""
    return list(session.exec(
        select(Execution.id).join(Proposal, Proposal.id == Execution.proposal_id)
        .where(Execution.status.in_(("ready", "claimed")),
               Proposal.state.in_((State.CANCELED.value, State.EXPIRED.value))).limit(200)))


def end_stopped(session: Session, runtime: Runtime, ex_id: int, now: int) -> bool:
    """End one execution of a canceled or expired proposal, releasing what it reserved."""
    ex = session.get(Execution, ex_id)
    if ex is None:
        return False
    proposal = lock_proposal(session, ex.proposal_id)
    ex = session.exec(select(Execution).where(Execution.id == ex_id).with_for_update()
                      .execution_options(populate_existing=True)).first()
    if proposal is None or ex is None or ex.status not in ("ready", "claimed") \
            or proposal.state not in (State.CANCELED.value, State.EXPIRED.value):
        return False
    _end(session, runtime, ex, "canceled" if proposal.state == State.CANCELED.value else "expired", now)
    session.flush()
    return True


def cancel_guard(session: Session, proposal_id: str) -> str | None:
    """Why a proposal can no longer be canceled (a transfer signed, landed or done), or None.
    The caller holds the proposal's lock, which every path into those states takes first."""
    ex = session.exec(select(Execution).where(Execution.proposal_id == proposal_id)
                      .execution_options(populate_existing=True)).first()
    if ex is not None and ex.status in (*IN_FLIGHT, "done", "failed"):
        return f"execution {ex.id} is {ex.status} (transaction {ex.tx_hash}); it can no longer be stopped"
    if ex is not None and ex.status == "claimed":
        # an executor holds it, or held it (a lapsed lease keeps its reservation): it may have paid
        # already, and a canceled execution could never be completed; it must fail it first
        return (f"execution {ex.id} is claimed by an external executor, who may have paid; it can be canceled "
                f"once the executor fails it")
    return None


def list_executions(session: Session, *, status: str | None, after: int, limit: int) -> list[Execution]:
    query = select(Execution).where(Execution.id > after).order_by(Execution.id).limit(limit)
    if status is not None:
        if status not in STATUSES:
            raise BadRequest(f"status is one of {', '.join(STATUSES)}", code="invalid_filter")
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
