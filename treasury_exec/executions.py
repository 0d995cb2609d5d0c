"""Executing queued proposals against the treasury, exactly once.

Every execution is one row per proposal (unique), moved by conditional UPDATEs so that two
schedulers and any number of external executors cannot both apply it:

- ``parameters`` (PriceChange, AllocationChange) and ``internal`` spends run in one
  transaction: claim the row, apply the effect, mark it done and the proposal executed. The
  effect and the marks commit together or not at all.
- ``chain`` spends are signed and stored before they are broadcast (see ``chain.py``); the
  stored transaction is re-broadcast until its receipt arrives, and only a mined, confirmed
  transfer is journaled and marks the proposal executed. A reverted one frees the row for a
  new attempt; nothing else ever signs a second transfer for the same execution.
- ``external`` executions wait for an executor key: claim (a lease), then complete (with a
  transaction hash, verified on chain for on-chain assets) or fail.

A failed attempt (say, the bucket lacks funds) is recorded with its reason, and retried
after ``retry_interval`` until the proposal's ``eta + grace``; then the proposal expires.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from governance.errors import Conflict, GovernanceError, NotFound, Unprocessable
from governance.runtime import Runtime
from proposals.lifecycle import State
from proposals.models import Proposal
from proposals.service import process_actor, record_event
from treasury_exec import journal, service
from treasury_exec.chain import ChainAsset, ChainClient, SignedTransfer, load_treasury_account, parse_assets
from treasury_exec.journal import Posting
from treasury_exec.models import ChainNonce, Execution, ExecutionAttempt

log = logging.getLogger("treasury_exec.executions")

IN_FLIGHT = ("signed",)  # a transfer that may still land: the proposal can neither expire nor be canceled


def chain_assets(runtime: Runtime) -> dict[str, ChainAsset]:
    cached = runtime.extras.get("chain_assets")
    if cached is None:
        cached = runtime.extras["chain_assets"] = parse_assets(runtime.settings.chain_assets)
    return cached  # type: ignore[return-value]


def chain_client(runtime: Runtime) -> ChainClient:
    client = runtime.extras.get("chain_client")
    if client is None:
        client = runtime.extras["chain_client"] = ChainClient(runtime.settings.rpc_url)
    return client  # type: ignore[return-value]


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


def _apply(session: Session, runtime: Runtime, ex: Execution, proposal: Proposal, now: int,
           credit_account: str) -> None:
    """The effect on the treasury: a parameter version, or a journal entry for a spend."""
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
            postings=[Posting(f"bucket:{ex.bucket}", ex.asset, -ex.amount),
                      Posting(credit_account, ex.asset, ex.amount)],
        )
        ex.journal_seq = entry.seq


def _fail(session: Session, runtime: Runtime, ex: Execution, now: int, actor: str, reason: str,
          tx_hash: str | None = None) -> None:
    ex.status, ex.attempts, ex.last_error = "ready", ex.attempts + 1, reason
    ex.next_attempt_at = now + runtime.settings.retry_interval
    ex.lease_owner = ex.lease_expires_at = None
    ex.tx_hash = ex.signed_tx = None
    ex.nonce = None
    ex.updated_at = now
    session.add(ex)
    _attempt(session, ex, now, ok=False, actor=actor, reason=reason, tx_hash=tx_hash)


def run_internal(session: Session, runtime: Runtime, ex_id: int, now: int) -> bool:
    """Execute a ``parameters`` or ``internal`` execution; True if it is now done."""
    actor = process_actor()
    if not _claim(session, ex_id, "ready", "running", now):
        return False
    ex = session.get(Execution, ex_id, populate_existing=True)
    proposal = session.get(Proposal, ex.proposal_id)
    if proposal is None or proposal.state != State.QUEUED.value or now >= (proposal.deadline or 0):
        session.rollback()  # expiry or cancellation handles it
        return False
    try:
        with session.begin_nested():
            _apply(session, runtime, ex, proposal, now, credit_account=f"payable:{ex.recipient}")
    except Unprocessable as exc:  # not enough in the bucket: never a partial payment
        _fail(session, runtime, ex, now, actor, f"{exc.code}: {exc.detail}")
        return False
    ex.status, ex.completed_at, ex.attempts, ex.updated_at = "done", now, ex.attempts + 1, now
    session.add(ex)
    _attempt(session, ex, now, ok=True, actor=actor)
    _mark_executed(session, ex, now, actor)
    session.flush()
    return True


def sign_chain(session: Session, runtime: Runtime, ex_id: int, now: int) -> SignedTransfer | None:
    """Claim a ``chain`` execution and store its signed transfer (not yet broadcast)."""
    actor = process_actor()
    if not _claim(session, ex_id, "ready", "signing", now):
        return None
    ex = session.get(Execution, ex_id, populate_existing=True)
    proposal = session.get(Proposal, ex.proposal_id)
    if proposal is None or proposal.state != State.QUEUED.value or now >= (proposal.deadline or 0):
        session.rollback()
        return None
    asset = chain_assets(runtime)[ex.asset]
    available = service.bucket_balance(session, ex.bucket, ex.asset)
    if available < ex.amount:
        _fail(session, runtime, ex, now, actor,
              f"insufficient_funds: bucket:{ex.bucket} holds {available} {ex.asset}; {ex.amount} needed")
        return None
    account = load_treasury_account(runtime.settings)
    client = chain_client(runtime)
    nonce_row = session.exec(select(ChainNonce).where(ChainNonce.address == account.address)
                             .with_for_update()).first()
    if nonce_row is None:
        nonce_row = ChainNonce(address=account.address, next_nonce=0)
    nonce = max(nonce_row.next_nonce, client.pending_nonce(account.address))
    signed = client.sign_transfer(account, asset, ex.recipient, ex.amount, nonce)
    nonce_row.next_nonce = nonce + 1
    session.add(nonce_row)
    ex.status, ex.tx_hash, ex.signed_tx, ex.nonce, ex.updated_at = "signed", signed.tx_hash, signed.raw, nonce, now
    session.add(ex)
    record_event(session, ex.proposal_id, "transfer_signed", now, actor, f"tx {signed.tx_hash}, nonce {nonce}")
    session.flush()
    return signed


def settle_chain(session: Session, runtime: Runtime, ex_id: int, now: int) -> str:
    """Broadcast a stored transfer (again, harmlessly) and act on its receipt: ``pending``,
    ``done`` (journaled, proposal executed) or ``reverted`` (free for a new attempt)."""
    ex = session.get(Execution, ex_id)
    if ex is None or ex.status != "signed" or not ex.signed_tx:
        return "skipped"
    client = chain_client(runtime)
    signed = SignedTransfer(tx_hash=ex.tx_hash, raw=ex.signed_tx, nonce=ex.nonce or 0)
    client.broadcast(signed)
    receipt = client.receipt(signed.tx_hash)
    if receipt is None or (receipt.ok and receipt.confirmations < max(runtime.settings.confirmations, 1)):
        return "pending"
    actor = process_actor()
    if not _claim(session, ex_id, "signed", "settling", now):
        return "skipped"
    ex = session.get(Execution, ex_id, populate_existing=True)
    if not receipt.ok:
        _fail(session, runtime, ex, now, actor, "the transfer reverted on chain", tx_hash=signed.tx_hash)
        return "reverted"
    proposal = session.get(Proposal, ex.proposal_id)
    # a landed transfer is journaled whatever happened meanwhile: the money moved
    _apply(session, runtime, ex, proposal, now, credit_account=f"external:{ex.recipient}")
    ex.status, ex.completed_at, ex.attempts, ex.updated_at = "done", now, ex.attempts + 1, now
    session.add(ex)
    _attempt(session, ex, now, ok=True, actor=actor, tx_hash=signed.tx_hash)
    _mark_executed(session, ex, now, actor)
    session.flush()
    return "done"


def expire_due(session: Session, now: int) -> int:
    """Queued proposals past ``eta + grace`` expire, unless a signed transfer may still land."""
    in_flight = select(Execution.proposal_id).where(Execution.status.in_((*IN_FLIGHT, "done")))
    ids = session.exec(select(Proposal.id).where(Proposal.state == State.QUEUED.value, Proposal.deadline <= now)
                       .where(~Proposal.id.in_(in_flight))).all()
    expired = 0
    for pid in ids:
        moved = session.execute(
            update(Proposal).where(Proposal.id == pid, Proposal.state == State.QUEUED.value)
            .values(state=State.EXPIRED.value, expired_at=now, updated_at=now)
        ).rowcount
        if moved:
            session.execute(update(Execution).where(Execution.proposal_id == pid, Execution.status != "done")
                            .values(status="expired", updated_at=now, lease_owner=None, lease_expires_at=None))
            record_event(session, pid, "expired", now, process_actor())
            expired += 1
    session.flush()
    return expired


def cancel_guard(session: Session, proposal_id: str) -> str | None:
    """Why a proposal can no longer be canceled (a transfer signed or done), or None."""
    ex = session.exec(select(Execution).where(Execution.proposal_id == proposal_id)).first()
    if ex is not None and ex.status in (*IN_FLIGHT, "done"):
        return f"execution {ex.id} is {ex.status} (transaction {ex.tx_hash}); it can no longer be stopped"
    return None


# --- external executors -------------------------------------------------------------------

def get_execution(session: Session, ex_id: int) -> Execution:
    ex = session.get(Execution, ex_id)
    if ex is None:
        raise NotFound(f"no execution {ex_id}", code="execution_not_found")
    return ex


def claim(session: Session, runtime: Runtime, ex_id: int, executor: str) -> Execution:
    """Lease an external execution to ``executor`` for ``execution_lease_seconds``; an expired
    lease may be claimed again by anyone."""
    now = runtime.clock.now()
    ex = get_execution(session, ex_id)
    if ex.mode != "external":
        raise Conflict(f"execution {ex_id} is run by the service ({ex.mode}), not by executors", code="not_external")
    proposal = session.get(Proposal, ex.proposal_id)
    if proposal is None or proposal.state != State.QUEUED.value or now >= (proposal.deadline or 0):
        raise Conflict(f"the proposal is {proposal.state if proposal else 'gone'}", code="wrong_state")
    lease = {"lease_owner": executor, "lease_expires_at": now + runtime.settings.execution_lease_seconds}
    taken = session.execute(
        update(Execution).where(Execution.id == ex_id, or_(
            Execution.status == "ready",
            (Execution.status == "claimed") & (Execution.lease_expires_at <= now)))
        .values(status="claimed", updated_at=now, **lease)
    ).rowcount
    if taken != 1:
        ex = session.get(Execution, ex_id, populate_existing=True)
        raise Conflict(f"execution {ex_id} is {ex.status}" + (f", leased until {ex.lease_expires_at}"
                       if ex.status == "claimed" else ""), code="not_claimable", extra={"status": ex.status})
    session.flush()
    return session.get(Execution, ex_id, populate_existing=True)


def _held(session: Session, ex_id: int, executor: str, now: int) -> Execution:
    ex = session.exec(select(Execution).where(Execution.id == ex_id).with_for_update()).first()
    if ex is None:
        raise NotFound(f"no execution {ex_id}", code="execution_not_found")
    if ex.status != "claimed" or ex.lease_owner != executor:
        raise Conflict(f"execution {ex_id} is {ex.status} and not leased to this executor", code="not_claimed",
                       extra={"status": ex.status})
    if (ex.lease_expires_at or 0) <= now:
        raise Conflict(f"the lease on execution {ex_id} expired at {ex.lease_expires_at}; claim it again",
                       code="lease_expired")
    return ex


def complete(session: Session, runtime: Runtime, ex_id: int, executor: str, *, tx_hash: str | None,
             reference: str | None) -> tuple[Execution, bool]:
    """Record what an executor did. On-chain assets need the transaction hash, checked on chain;
    internal ones a reference. The identical completion again returns the stored one."""
    now = runtime.clock.now()
    ex = get_execution(session, ex_id)
    if ex.status == "done":
        if (tx_hash or None, reference or None) == (ex.tx_hash, ex.reference):
            return ex, False
        raise Conflict(f"execution {ex_id} was already completed", code="already_completed")
    ex = _held(session, ex_id, executor, now)
    asset = chain_assets(runtime).get(ex.asset or "")
    if asset is not None:
        if not tx_hash:
            raise Unprocessable(f"{ex.asset} lives on chain: give the transaction hash", code="tx_hash_required")
        used = session.exec(select(Execution.id).where(Execution.tx_hash == tx_hash, Execution.id != ex_id)).first()
        if used is not None:
            raise Conflict(f"transaction {tx_hash} already completed execution {used}", code="tx_already_used")
        ok, why = chain_client(runtime).transfer_matches(tx_hash, asset, None, ex.recipient, ex.amount)
        if not ok:
            raise Unprocessable(f"transaction {tx_hash}: {why}", code="tx_mismatch")
    elif not (reference or tx_hash):
        raise Unprocessable("give a reference for what was done", code="reference_required")
    proposal = session.get(Proposal, ex.proposal_id)
    ex.tx_hash, ex.reference = tx_hash, reference
    try:
        with session.begin_nested():
            _apply(session, runtime, ex, proposal, now,
                   credit_account=f"external:{ex.recipient}" if asset else f"payable:{ex.recipient}")
    except GovernanceError as exc:
        raise Conflict(f"the treasury cannot record this spend: {exc.detail}", code=exc.code) from exc
    ex.status, ex.completed_at, ex.attempts, ex.updated_at = "done", now, ex.attempts + 1, now
    ex.lease_owner = ex.lease_expires_at = None
    session.add(ex)
    _attempt(session, ex, now, ok=True, actor=executor, tx_hash=tx_hash)
    _mark_executed(session, ex, now, executor)
    session.flush()
    return ex, True


def fail(session: Session, runtime: Runtime, ex_id: int, executor: str, reason: str) -> Execution:
    """An executor gives up on its lease; the execution is free for the next attempt."""
    now = runtime.clock.now()
    ex = _held(session, ex_id, executor, now)
    _fail(session, runtime, ex, now, executor, reason)
    ex.next_attempt_at = None  # an executor decides when to try again
    session.flush()
    return ex


def list_executions(session: Session, *, status: str | None, after: int, limit: int) -> list[Execution]:
    query = select(Execution).where(Execution.id > after).order_by(Execution.id).limit(limit)
    if status is not None:
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
