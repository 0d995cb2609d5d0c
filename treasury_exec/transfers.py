"""On-chain spends (mode ``chain``): sign a transfer, then settle it, each step in two halves so
that no RPC call is ever made while a database lock is held.

SQLite has one write lock for the whole database, taken when a writing unit of work begins: a
node that answers slowly (up to the RPC timeout) inside one would stall every vote, purchase and
deposit behind it. PostgreSQL locks rows, but a proposal's row held across a node's answer
stalls its cancel and every other step of it. So each step first reads what it needs and asks
the node in a read-only unit of work (:func:`prepare_transfer`, :func:`observe_transfer`), then
takes its locks in a short writing one that re-checks what it read and records the outcome
(:func:`sign_transfer`, :func:`settle_transfer`). When what it read has changed in between, the
writing half stands back and the step runs again next tick: it never acts on a stale reading.

- Signing: the amount is reserved and the signed transfer stored (not yet broadcast) in one
  unit of work, under the lock of the treasury account's nonce counter; a transfer prepared
  against another value of that counter (another transfer was signed since) is dropped unsent.
- Settling: a stored transfer is re-broadcast (harmless: same bytes, same hash) until its
  receipt has ``DAO_CONFIRMATIONS`` blocks on top; then it is journaled from its reservation, or,
  reverted or pushed out by another transaction with its nonce, released as a failed attempt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import Session, select
from web3.exceptions import Web3RPCError

from governance.errors import GovernanceError, Unprocessable
from governance.runtime import Runtime
from proposals.lifecycle import State
from proposals.models import Proposal
from proposals.service import process_actor
from proposals.transitions import record_event
from treasury_exec import reservations
from treasury_exec.chain import ChainClient, NonceUse, Receipt, SignedTransfer, sender_of, token_payers
from treasury_exec.executions import (
    chain_client,
    execute,
    fail_attempt,
    lock_if,
    move_status,
    not_runnable,
    record_attempt,
)
from treasury_exec.models import ChainNonce, Execution
from treasury_exec.status import ExecutionStatus as S

log = logging.getLogger("treasury_exec.transfers")


# --- signing ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Preparation:
    """A transfer prepared outside any lock: signed, or refused with the reason a failed attempt
    records. ``counter`` is the treasury account's stored next nonce it was prepared against."""

    ex_id: int
    counter: int
    signed: SignedTransfer | None = None
    refusal: str = ""
    fee: int = 0  # the most it may burn, reserved with it when fees are journaled


def _account(runtime: Runtime):
    if runtime.treasury_account is None:  # bootstrap loads it whenever an asset has mode chain
        raise RuntimeError("no treasury key: DAO_TREASURY_KEY_FILE or DAO_TREASURY_PRIVATE_KEY")
    return runtime.treasury_account


def prepare_transfer(session: Session, runtime: Runtime, ex_id: int, now: int) -> Preparation | None:
    """The first half of signing, in a read-only unit of work: for a ready, runnable ``chain``
    execution, check its bucket (cheaply, before any RPC), pick the nonce, build the transfer,
    check the treasury account's native coin for its fee (``insufficient_gas``: after what the
    transfers already signed may take) and sign it. None when there is nothing to do."""
    ex = session.get(Execution, ex_id)
    if ex is None or ex.status != S.READY or (ex.next_attempt_at or 0) > now \
            or not_runnable(ex, session.get(Proposal, ex.proposal_id), now):
        return None
    assert ex.amount is not None and ex.asset is not None
    account = _account(runtime)
    row = session.exec(select(ChainNonce).where(ChainNonce.address == account.address)).first()
    counter = row.next_nonce if row is not None else 0
    available = reservations.bucket_available(session, ex.bucket, ex.asset)
    if available < ex.amount:
        return Preparation(ex_id, counter, refusal=f"insufficient_funds: bucket:{ex.bucket} holds {available} "
                           f"{ex.asset}; {ex.amount} needed")
    client = chain_client(runtime)
    nonce = max(counter, client.mined_nonce(account.address))
    tx = client.transfer_tx(account.address, runtime.chain_assets[ex.asset], ex.recipient, ex.amount, nonce)
    # gas money, before signing: a node refuses a transfer its sender cannot pay for, and a
    # signed one can neither expire nor be canceled, only wait. The transfers signed before
    # this one may take theirs first (sign_transfer checks that none was signed since).
    in_flight = session.exec(select(Execution.signed_tx).where(Execution.status == S.SIGNED)).all()
    short = client.gas_shortfall(account.address, tx, [raw for raw in in_flight if raw])
    if short:
        return Preparation(ex_id, counter, refusal=f"insufficient_gas: {short}")
    fee = tx["gas"] * tx["maxFeePerGas"] if reservations.fee_asset(runtime) else 0
    return Preparation(ex_id, counter, signed=client.sign(account, tx), fee=fee)


def sign_transfer(session: Session, runtime: Runtime, prep: Preparation, now: int) -> SignedTransfer | None:
    """The second half: under the execution's and the nonce counter's locks, reserve the amount
    and store the prepared transfer (``ready`` → ``signed``), or record the refusal as a failed
    attempt. Stands back (None, nothing stored; prepared anew next tick) when the execution
    moved or another transfer was signed since the preparation."""
    taken = lock_if(session, prep.ex_id, S.READY, now)
    if taken is None or not_runnable(*taken, now):
        return None
    ex, _ = taken
    account = _account(runtime)
    row = session.exec(select(ChainNonce).where(ChainNonce.address == account.address).with_for_update()).first()
    if (row.next_nonce if row is not None else 0) != prep.counter:
        return None  # its nonce, and its fee check, may be stale
    actor = process_actor()
    if prep.refusal:
        fail_attempt(session, runtime, ex, now, actor, prep.refusal)
        return None
    signed = prep.signed
    assert signed is not None
    # the binding check: the reservation (and the fee's), under the journal head's lock
    try:
        reservations.reserve(session, runtime, ex, now, fee=prep.fee)
    except Unprocessable as exc:
        fail_attempt(session, runtime, ex, now, actor, f"{exc.code}: {exc.detail}")
        return None  # the prepared transaction is dropped unsent; its nonce stays free
    row = row or ChainNonce(address=account.address, next_nonce=0)
    row.next_nonce = signed.nonce + 1
    session.add(row)
    move_status(session, ex, S.SIGNED, now, tx_hash=signed.tx_hash, signed_tx=signed.raw, nonce=signed.nonce,
                last_error=None)
    record_event(session, ex.proposal_id, "transfer_signed", now, actor, f"tx {signed.tx_hash}, nonce {signed.nonce}")
    session.flush()
    return signed


# --- settling -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Observation:
    """What the node showed of a stored transfer, outside any lock: still ``pending`` (with a
    ``note`` when the execution should say why, "" when it already does), or final: a
    ``receipt`` with enough confirmations, or the transaction that took its nonce."""

    ex_id: int
    tx_hash: str
    pending: bool = False
    note: str = ""
    receipt: Receipt | None = None
    taken_by: NonceUse | None = None
    taker_fee: int = 0  # what the transaction that took its nonce burned (when fees are journaled)


def observe_transfer(session: Session, runtime: Runtime, ex_id: int, now: int) -> Observation | None:
    """The first half of settling, in a read-only unit of work: broadcast the stored transfer
    again while its nonce is free, and look for its receipt. None when there is nothing to do
    or to record.

    "Dropped" needs positive evidence: the transaction that used the nonce, found in a block
    with ``confirmations`` on top, and not ours. No receipt proves nothing (behind a load
    balancer, a node a few blocks behind has none for a transfer mined a moment ago): while the
    node cannot tell, the transfer stays in flight, and the note says why."""
    ex = session.get(Execution, ex_id)
    if ex is None or ex.status != S.SIGNED or not ex.signed_tx:
        return None
    client = chain_client(runtime)
    signed = SignedTransfer(tx_hash=ex.tx_hash, raw=ex.signed_tx, nonce=ex.nonce or 0)
    need = max(runtime.settings.confirmations, 1)

    def pending(note: str = "") -> Observation | None:
        if note == "" or note == ex.last_error:
            return None  # nothing to write
        return Observation(ex_id, signed.tx_hash, pending=True, note=note)

    receipt = client.receipt(signed.tx_hash)
    if receipt is None:
        use = client.nonce_use(sender_of(signed.raw), signed.nonce, need)
        if use.status == "unknown":
            return pending(f"cannot tell whether nonce {signed.nonce} was used, and by which transaction: "
                           f"{use.why}; the transfer stays in flight and is looked up again")
        if use.status == "used" and use.tx_hash == signed.tx_hash.lower():
            return pending(f"mined in block {use.block}; the node has no receipt for it yet")
        if use.status == "used":
            # sent from the treasury account (say, to end this transfer, as the README says): its
            # fee left the account too, and the journal must say so when it holds the native coin
            taker = client.receipt(use.tx_hash) if reservations.fee_asset(runtime) else None
            if reservations.fee_asset(runtime) and taker is None:
                return pending(f"nonce {signed.nonce} was used by transaction {use.tx_hash}; waiting for its "
                               "receipt to journal its fee")
            return Observation(ex_id, signed.tx_hash, taken_by=use, taker_fee=taker.fee if taker else 0)
        receipt, note = _broadcast(session, client, ex, signed, now)
        if receipt is None:
            return pending(note or _gap(session, client, signed))
    if receipt.confirmations < need:
        return None  # a reverted one too: a reorganisation may still mine it elsewhere
    return Observation(ex_id, signed.tx_hash, receipt=receipt)


def _broadcast(session: Session, client: ChainClient, ex: Execution, signed: SignedTransfer,
               now: int) -> tuple[Receipt | None, str]:
    """Send a stored transfer whose nonce is still free (again: harmless); its receipt if it is
    mined already, else None and, when it is not moving, why."""
    try:
        client.broadcast(signed)
    except Web3RPCError as exc:  # the node refuses it (fees, gas money): say so, keep trying
        return None, f"the node refuses the transfer for now: {exc}"
    receipt = client.receipt(signed.tx_hash)
    proposal = session.get(Proposal, ex.proposal_id)
    if receipt is None and proposal is not None and now >= (proposal.deadline or 0):
        # it may still land (and would then be journaled); only its nonce can stop it
        return None, (f"not mined by the deadline: a transaction with nonce {signed.nonce} from the treasury "
                      "account (say, a zero-value transfer to itself) ends it")
    return receipt, ""


def _gap(session: Session, client: ChainClient, signed: SignedTransfer) -> str:
    """Why a broadcast transfer may never be mined, or "": the account's mined nonce is below
    this one and some nonce in between is held by no transfer of ours (a node reported a
    higher count than it held, or someone else signed for the account). Nothing but a
    transaction with each missing nonce lets it through."""
    sender = sender_of(signed.raw)
    mined = client.mined_nonce(sender)
    if mined >= signed.nonce:
        return ""
    ours = set(session.exec(select(Execution.nonce).where(Execution.status == S.SIGNED,
                                                          Execution.nonce >= mined, Execution.nonce < signed.nonce)))
    missing = [n for n in range(mined, signed.nonce) if n not in ours]
    if not missing:
        return ""
    shown = ", ".join(map(str, missing[:5])) + (", …" if len(missing) > 5 else "")
    return (f"nonce gap: the treasury account {sender} has {mined} transactions mined and no transfer of the "
            f"service holds nonce(s) {shown}, below this one ({signed.nonce}); it waits until a transaction "
            "with each of them is mined (say, a zero-value transfer to itself)")


def settle_transfer(session: Session, runtime: Runtime, seen: Observation, now: int) -> str:
    """The second half: record what :func:`observe_transfer` saw, under the locks, if the
    execution still holds the same transfer (else ``skipped``). Returns ``pending`` (a note
    written), ``done`` (journaled from its reservation, proposal executed), ``reverted`` or
    ``dropped`` (both release the reservation as a failed attempt), or ``failed``: it landed
    and paid nothing, or could not be journaled; a person must look (never retried in a loop)."""
    if seen.pending:
        session.execute(update(Execution).where(Execution.id == seen.ex_id, Execution.status == S.SIGNED,
                                                Execution.tx_hash == seen.tx_hash)
                        .values(last_error=seen.note, updated_at=now))
        return "pending"
    held = lock_if(session, seen.ex_id, S.SIGNED, now)
    if held is None or held[0].tx_hash != seen.tx_hash:
        return "skipped"  # moved meanwhile (released and signed anew): what was seen is of another transfer
    ex, proposal = held
    actor, receipt = process_actor(), seen.receipt
    if receipt is not None:  # it landed, paid or reverted: its fee left the treasury account
        _pay_fee(session, runtime, ex, receipt.fee, receipt.tx_hash, now)
    if receipt is None:
        assert seen.taken_by is not None
        _pay_fee(session, runtime, ex, seen.taker_fee, seen.taken_by.tx_hash, now)
        fail_attempt(session, runtime, ex, now, actor, f"nonce {ex.nonce} was used by transaction "
                     f"{seen.taken_by.tx_hash} in block {seen.taken_by.block}: this transfer can never land",
                     tx_hash=seen.tx_hash)
        return "dropped"
    if not receipt.ok:
        fail_attempt(session, runtime, ex, now, actor, "the transfer reverted on chain", tx_hash=seen.tx_hash)
        return "reverted"
    # a call that succeeds is not a payment: at an address without the token's code (an address
    # copied from another network, an RPC on the wrong chain) it moves nothing, and says so only
    # by the Transfer event it lacks. A native transfer pays what we signed, by construction.
    asset = runtime.chain_assets[ex.asset or ""]
    sender = sender_of(ex.signed_tx or "")
    if not (asset.native or sender in token_payers(receipt.logs, asset, ex.recipient or "", ex.amount or 0)):
        # never retried: the same transaction would move nothing again, and burn gas each time
        reason = (f"transaction {seen.tx_hash} succeeded in block {receipt.block} but paid no {ex.asset}: no "
                  f"Transfer of {ex.amount} from {sender} to {ex.recipient} at {asset.token or 'the native coin'} "
                  "(is that the asset's address on this RPC's chain?); nothing left the treasury, the reservation "
                  "is released; fix DAO_CHAIN_ASSETS or DAO_RPC_URL")
        reservations.release(session, runtime, ex, now)
        return _failed(session, ex, now, actor, reason, seen.tx_hash)
    # a landed transfer is journaled whatever happened meanwhile (the money moved), unless its
    # proposal can no longer be executed: then, as when the journal refuses it, a person must
    # reconcile it, and it is never retried in a loop
    if proposal is None or proposal.state != State.QUEUED.value:
        why = f"wrong_state: proposal {ex.proposal_id} is {proposal.state if proposal else 'gone'}, no longer queued"
    else:
        try:
            with session.begin_nested():
                execute(session, runtime, ex, proposal, now, actor, credit_account=f"external:{ex.recipient}",
                        tx_hash=seen.tx_hash)
            return "done"
        except GovernanceError as exc:
            why = f"{exc.code}: {exc.detail}"
        ex = session.get(Execution, seen.ex_id, populate_existing=True)
    return _failed(session, ex, now, actor, f"transfer {seen.tx_hash} landed in block {receipt.block} but could "
                   f"not be journaled ({why}); reconcile it by hand", seen.tx_hash)


def _pay_fee(session: Session, runtime: Runtime, ex: Execution, fee: int, tx_hash: str, now: int) -> None:
    try:
        reservations.pay_fee(session, runtime, ex, fee, now, tx_hash=tx_hash)
    except Unprocessable as exc:  # past the reservation (signed before fees were reserved, a rollup's data
        # fee, a nonce taken at a higher fee) and past what the fee bucket holds
        log.error("execution %s: the fee of %s (%s wei) could not be journaled: %s; reconcile DAO_FEE_BUCKET by "
                  "hand", ex.id, tx_hash, fee, exc.detail)


def _failed(session: Session, ex: Execution, now: int, actor: str, reason: str, tx_hash: str) -> str:
    move_status(session, ex, S.FAILED, now, attempts=ex.attempts + 1, last_error=reason)
    record_attempt(session, ex, now, ok=False, actor=actor, reason=reason, tx_hash=tx_hash)
    session.flush()
    log.error("execution %s: %s", ex.id, reason)
    return "failed"
