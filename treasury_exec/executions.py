"""Executing queued proposals against the treasury, exactly once, each to a visible end.

Every execution is one row per proposal (unique). Its status (``treasury_exec.status``) moves
only along its transition table, one function per move, each through :func:`move_status`: a
conditional UPDATE from the status the path read (``governance.statemachine``; a hand-written
status change is refused). A path first locks the proposal, then the execution if it is still
in the status the path starts from (:func:`_lock_if`), so two schedulers and any number of
external executors cannot both apply it:

- ``parameters`` (PriceChange, AllocationChange) and ``internal`` spends run in one unit of
  work (:func:`run_internal`): apply the effect, mark it done and the proposal executed
  (:func:`execute`). The effect and the marks commit together or not at all.
- ``chain`` spends are signed and stored before they are broadcast (:func:`sign_chain`, see
  ``chain.py``), and the amount is reserved in the same unit of work (see ``reservations.py``):
  a bucket never has more signed against it than it holds. The stored transaction is
  re-broadcast until its receipt arrives (:func:`settle_chain`); a mined, confirmed transfer is
  journaled from the reservation and marks the proposal executed. A reverted one, or one whose
  nonce another transaction took (it can never land), releases the reservation and counts as a
  failed attempt. Nothing else ever signs a second transfer for the same execution while the
  first may still land.
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

from sqlalchemy import or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from web3.exceptions import ContractLogicError, Web3RPCError

from governance.errors import BadRequest, GovernanceError, Unprocessable
from governance.runtime import Runtime
from governance.statemachine import StateMachine
from proposals.lifecycle import State
from proposals.models import Proposal
from proposals.service import process_actor
from proposals.transitions import lock, record_event, transition
from treasury_exec import journal, reservations, service
from treasury_exec.chain import ChainClient, Receipt, SignedTransfer, sender_of, token_payers
from treasury_exec.journal import Posting
from treasury_exec.models import ChainNonce, Execution, ExecutionAttempt
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


def _lock_if(session: Session, ex_id: int, status: ExecutionStatus,
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


def _record_attempt(session: Session, ex: Execution, now: int, *, ok: bool, actor: str, reason: str | None = None,
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
                lease_expires_at=None)
    _record_attempt(session, ex, now, ok=True, actor=actor, tx_hash=tx_hash)
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
    _record_attempt(session, ex, now, ok=False, actor=actor, reason=reason, tx_hash=tx_hash)


def _end(session: Session, runtime: Runtime, ex: Execution, to: ExecutionStatus, now: int) -> None:
    """Take a locked, non-terminal execution to ``expired`` or ``canceled``, releasing its reservation."""
    reservations.release(session, runtime, ex, now)
    move_status(session, ex, to, now, lease_owner=None, lease_expires_at=None)


# --- the scheduler's steps, one execution (or proposal) each ----------------------------------

def run_internal(session: Session, runtime: Runtime, ex_id: int, now: int) -> bool:
    """Execute a ready ``parameters`` or ``internal`` execution; True if it is now done."""
    taken = _lock_if(session, ex_id, S.READY, now)
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


def sign_chain(session: Session, runtime: Runtime, ex_id: int, now: int) -> SignedTransfer | None:
    """Reserve the amount of a ready ``chain`` execution and store its signed transfer (not yet
    broadcast): ``ready`` → ``signed``. A bucket that cannot pay, or a treasury account without
    the native coin for the fee (``insufficient_gas``), is a failed attempt, and nothing is
    signed."""
    taken = _lock_if(session, ex_id, S.READY, now)
    if taken is None or not_runnable(*taken, now):
        return None
    ex, _ = taken
    actor = process_actor()
    assert ex.amount is not None and ex.asset is not None
    available = reservations.bucket_available(session, ex.bucket, ex.asset)
    if available < ex.amount:  # the cheap refusal, before any RPC
        fail_attempt(session, runtime, ex, now, actor,
                     f"insufficient_funds: bucket:{ex.bucket} holds {available} {ex.asset}; {ex.amount} needed")
        return None
    asset = runtime.chain_assets[ex.asset]
    account = runtime.treasury_account
    if account is None:  # bootstrap loads it whenever an asset has mode chain
        raise RuntimeError("no treasury key: DAO_TREASURY_KEY_FILE or DAO_TREASURY_PRIVATE_KEY")
    client = chain_client(runtime)
    nonce_row = session.exec(select(ChainNonce).where(ChainNonce.address == account.address)
                             .with_for_update()).first()
    if nonce_row is None:
        nonce_row = ChainNonce(address=account.address, next_nonce=0)
    nonce = max(nonce_row.next_nonce, client.pending_nonce(account.address))
    tx = client.transfer_tx(account.address, asset, ex.recipient, ex.amount, nonce)
    # gas money, before signing: a node refuses a transfer its sender cannot pay for, and a
    # signed one can neither expire nor be canceled, only wait. The transfers signed before
    # this one (read under the nonce's lock, so every signer sees them) may take theirs first.
    in_flight = session.exec(select(Execution.signed_tx).where(Execution.status == S.SIGNED)).all()
    short = client.gas_shortfall(account.address, tx, [raw for raw in in_flight if raw])
    if short:
        fail_attempt(session, runtime, ex, now, actor, f"insufficient_gas: {short}")
        return None
    signed = client.sign(account, tx)
    # The binding check: the reservation, under the journal head's lock, taken after the RPC
    # calls so that other journal writers wait for this commit only, never for the node.
    try:
        reservations.reserve(session, runtime, ex, now)
    except Unprocessable as exc:
        fail_attempt(session, runtime, ex, now, actor, f"{exc.code}: {exc.detail}")
        return None  # the transaction signed above is dropped unsent; its nonce stays free
    nonce_row.next_nonce = nonce + 1
    session.add(nonce_row)
    move_status(session, ex, S.SIGNED, now, tx_hash=signed.tx_hash, signed_tx=signed.raw, nonce=nonce, last_error=None)
    record_event(session, ex.proposal_id, "transfer_signed", now, actor, f"tx {signed.tx_hash}, nonce {nonce}")
    session.flush()
    return signed


def settle_chain(session: Session, runtime: Runtime, ex_id: int, now: int) -> str:
    """Act on a stored transfer: ``pending`` (broadcast again, harmlessly, or waiting for
    confirmations or for evidence), ``done`` (journaled from its reservation, proposal
    executed), ``reverted`` or ``dropped`` (another transaction used its nonce, so it can never
    land): both release the reservation as a failed attempt. ``failed``: it landed but could not
    be journaled.

    "Dropped" needs positive evidence: the transaction that used the nonce, found in a block
    with ``confirmations`` on top, and not ours. No receipt proves nothing (behind a load
    balancer, a node a few blocks behind has none for a transfer mined a moment ago): while the
    node cannot tell, the transfer stays in flight, and ``last_error`` says why."""
    ex = session.get(Execution, ex_id)
    if ex is None or ex.status != S.SIGNED or not ex.signed_tx:
        return "skipped"
    client = chain_client(runtime)
    signed = SignedTransfer(tx_hash=ex.tx_hash, raw=ex.signed_tx, nonce=ex.nonce or 0)
    need = max(runtime.settings.confirmations, 1)
    receipt = client.receipt(signed.tx_hash)
    taken_by = None
    if receipt is None:
        use = client.nonce_use(sender_of(signed.raw), signed.nonce, need)
        if use.status == "free":
            receipt = _broadcast(session, client, ex, signed, now)
            if receipt is None:
                return "pending"
        elif use.status == "unknown":
            _note(session, ex, f"cannot tell whether nonce {signed.nonce} was used, and by which transaction: "
                  f"{use.why}; the transfer stays in flight and is looked up again", now)
            return "pending"
        elif use.tx_hash == signed.tx_hash.lower():
            _note(session, ex, f"mined in block {use.block}; the node has no receipt for it yet", now)
            return "pending"
        else:
            taken_by = use
    if receipt is not None and receipt.confirmations < need:
        return "pending"  # a reverted one too: a reorganisation may still mine it elsewhere
    sender = sender_of(signed.raw)
    # a call that succeeds is not a payment: at an address without the token's code (an address
    # copied from another network, an RPC on the wrong chain) it moves nothing, and says so only
    # by the Transfer event it lacks. A native transfer pays what we signed, by construction.
    asset = runtime.chain_assets[ex.asset or ""]
    moved = receipt is not None and receipt.ok and (
        asset.native or sender in token_payers(receipt.logs, asset, ex.recipient or "", ex.amount or 0))
    actor = process_actor()
    held = _lock_if(session, ex_id, S.SIGNED, now)
    if held is None or held[0].tx_hash != signed.tx_hash:
        return "skipped"  # moved meanwhile (released and signed anew): what was read is of another transfer
    ex, proposal = held
    if receipt is None:
        assert taken_by is not None
        fail_attempt(session, runtime, ex, now, actor, f"nonce {signed.nonce} was used by transaction "
                     f"{taken_by.tx_hash} in block {taken_by.block}: this transfer can never land",
                     tx_hash=signed.tx_hash)
        return "dropped"
    if not receipt.ok:
        fail_attempt(session, runtime, ex, now, actor, "the transfer reverted on chain", tx_hash=signed.tx_hash)
        return "reverted"
    if not moved:
        # never retried: the same transaction would move nothing again, and burn gas each time
        reason = (f"transaction {signed.tx_hash} succeeded in block {receipt.block} but paid no {ex.asset}: no "
                  f"Transfer of {ex.amount} from {sender} to {ex.recipient} at {asset.token or 'the native coin'} "
                  "(is that the asset's address on this RPC's chain?); nothing left the treasury, the reservation "
                  "is released; fix DAO_CHAIN_ASSETS or DAO_RPC_URL")
        reservations.release(session, runtime, ex, now)
        move_status(session, ex, S.FAILED, now, attempts=ex.attempts + 1, last_error=reason)
        _record_attempt(session, ex, now, ok=False, actor=actor, reason=reason, tx_hash=signed.tx_hash)
        session.flush()
        log.error("execution %s: %s", ex_id, reason)
        return "failed"
    # a landed transfer is journaled whatever happened meanwhile (the money moved), unless its
    # proposal can no longer be executed: then, as when the journal refuses it, a person must
    # reconcile it, and it is never retried in a loop
    if proposal is None or proposal.state != State.QUEUED.value:
        why = f"wrong_state: proposal {ex.proposal_id} is {proposal.state if proposal else 'gone'}, no longer queued"
    else:
        try:
            with session.begin_nested():
                execute(session, runtime, ex, proposal, now, actor, credit_account=f"external:{ex.recipient}",
                        tx_hash=signed.tx_hash)
            return "done"
        except GovernanceError as exc:
            why = f"{exc.code}: {exc.detail}"
        ex = session.get(Execution, ex_id, populate_existing=True)
    reason = f"transfer {signed.tx_hash} landed in block {receipt.block} but could not be journaled ({why}); " \
             "reconcile it by hand"
    move_status(session, ex, S.FAILED, now, attempts=ex.attempts + 1, last_error=reason)
    _record_attempt(session, ex, now, ok=False, actor=actor, reason=reason, tx_hash=signed.tx_hash)
    session.flush()
    log.error("execution %s: %s", ex_id, reason)
    return "failed"


def _broadcast(session: Session, client: ChainClient, ex: Execution, signed: SignedTransfer,
               now: int) -> Receipt | None:
    """Send a stored transfer whose nonce is still free (again: harmless); its receipt if it is
    mined already, else None, with a note on the execution when it is not moving."""
    try:
        client.broadcast(signed)
    except Web3RPCError as exc:  # the node refuses it (fees, gas money): say so, keep trying
        _note(session, ex, f"the node refuses the transfer for now: {exc}", now)
        return None
    receipt = client.receipt(signed.tx_hash)
    proposal = session.get(Proposal, ex.proposal_id)
    if receipt is None and proposal is not None and now >= (proposal.deadline or 0):
        # it may still land (and would then be journaled); only its nonce can stop it
        _note(session, ex, f"not mined by the deadline: a transaction with nonce {signed.nonce} from the "
              "treasury account (say, a zero-value transfer to itself) ends it", now)
    return receipt


def _note(session: Session, ex: Execution, why: str, now: int) -> None:
    """Show why an execution is not moving, without changing its status."""
    if ex.last_error != why:
        session.execute(update(Execution).where(Execution.id == ex.id, Execution.status == ex.status)
                        .values(last_error=why, updated_at=now))


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
    taken = _lock_if(session, ex_id, S.READY, now)
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
