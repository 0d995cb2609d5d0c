"""Proposal use cases: submit, read, list, cancel. The session is passed in; the caller
commits (one transaction per request)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from governance.db import BIGINT_MAX, session_scope
from governance.errors import BadRequest, Conflict, Forbidden, NotFound
from governance.ports import JournalPoint, RecordedHead, Snapshot
from governance.runtime import Runtime
from governance.settings import PROPOSAL_KINDS
from governance.signatures import (
    Envelope,
    address_kind,
    check_freshness,
    verify_accepted,
)
from governance.typed_data import canonical_text
from governance.types import parse_uint
from proposals import validation
from proposals.lifecycle import State, cancel_allowed, effective_state, timing
from proposals.models import Proposal
from proposals.transitions import record_event, transition

_PROPOSAL_ID = re.compile(r"0x[0-9a-f]{64}")


def submit_proposal(session: Session, runtime: Runtime, envelope: Envelope) -> tuple[Proposal, bool]:
    """Accept a signed proposal, freezing its rules and snapshot. Returns ``(proposal, created)``;
    the identical signed message again returns the stored proposal and ``created=False``."""
    verified = verify_accepted(envelope, runtime.encoder, PROPOSAL_KINDS)
    proposal_id = "0x" + verified.digest.hex()
    now = runtime.clock.now()
    msg = verified.message_json
    power = runtime.power
    snapshot: Snapshot | None = None
    if power.reads_chain:
        # the node first, in a read-only unit of work: no lock is held while it answers (the
        # request's session has not touched the database yet)
        with session_scope(runtime.engine, write=False) as reading:
            if reading.get(Proposal, proposal_id) is None:
                check_freshness(int(msg["timestamp"]), now, runtime.settings.max_clock_skew)
                snapshot = power.take_snapshot(reading)
                power.weight(reading, snapshot, verified.signer)  # kept by the source for the read below
    existing = session.get(Proposal, proposal_id)
    if existing is not None:
        return existing, False
    check_freshness(int(msg["timestamp"]), now, runtime.settings.max_clock_skew)
    _validate_payload(session, runtime, verified.primary_type, msg)

    if snapshot is None:
        snapshot = power.take_snapshot(session)
    weight = power.weight(session, snapshot, verified.signer)
    threshold = runtime.settings.proposal_threshold
    if weight < threshold:
        raise Forbidden(
            f"{verified.signer} holds {weight} at the snapshot; proposing needs {threshold}",
            code="below_proposal_threshold",
        )
    point = journal_point(session, runtime, snapshot)
    s = runtime.settings
    rules = s.rules_for(verified.primary_type)
    t = timing(now, s.voting_delay, s.voting_period)
    proposal = Proposal(
        id=proposal_id, kind=verified.primary_type, proposer=verified.signer, scheme=verified.scheme,
        signature=verified.signature, message=canonical_text(msg), title=msg["title"],
        signed_at=int(msg["timestamp"]), created_at=t.created_at, starts_at=t.starts_at,
        ends_at=t.ends_at, quorum_bps=rules.quorum_bps, approval_bps=rules.approval_bps,
        voting_delay=s.voting_delay, voting_period=s.voting_period, timelock=s.timelock,
        grace_period=s.grace_period, vote_change=s.vote_change, snapshot_source=snapshot.source,
        snapshot_ref=snapshot.ref, snapshot_total=snapshot.total, proposer_weight=weight,
        journal_seq=point.seq, journal_hash=point.hash, state=State.PENDING.value, updated_at=now,
    )
    try:
        with session.begin_nested():  # a racing identical submission must not fail the request
            session.add(proposal)
            session.flush()
    except IntegrityError:
        existing = session.get(Proposal, proposal_id)
        if existing is None:
            raise
        return existing, False
    record_event(session, proposal_id, "created", now, verified.signer)
    return proposal, True


def journal_point(session: Session, runtime: Runtime, snapshot: Snapshot) -> JournalPoint:
    """The treasury journal's head to freeze with a snapshot. On the ledger source the snapshot
    is a journal sequence and the point is that very entry (another writer may have appended
    since it was read); on every other source, the head now."""
    journal = runtime.journal
    if snapshot.source == "ledger":
        return journal.point_at(session, snapshot.ref)
    return journal.head(session)


def recorded_heads(session: Session, batch: int = 1000) -> Iterator[RecordedHead]:
    """Every journal head a proposal recorded, for ``dao ledger verify`` (in id order, by pages)."""
    after = ""
    while True:
        rows = session.exec(select(Proposal.id, Proposal.journal_seq, Proposal.journal_hash)
                            .where(Proposal.id > after, Proposal.journal_seq.is_not(None))  # type: ignore[union-attr]
                            .order_by(Proposal.id).limit(batch)).all()
        for pid, seq, digest in rows:
            yield RecordedHead("proposal", f"proposal {pid} (journal head at its snapshot)", seq, digest or "")
        if len(rows) < batch:
            return
        after = rows[-1][0]


def process_actor() -> str:
    """How a scheduler or executor process names itself in the history."""
    import os
    import socket

    return f"scheduler:{socket.gethostname()}:{os.getpid()}"


def _validate_payload(session: Session, runtime: Runtime, kind: str, msg: dict[str, Any]) -> None:
    s = runtime.settings
    validation.validate_text(msg["title"], msg["description"], title_max=s.title_max_chars,
                             description_max=s.description_max_chars)
    treasury = runtime.treasury
    if kind == "PriceChange":
        validation.validate_price(int(msg["price"]), treasury.price_in_force(session),
                                  max_change_bps=s.max_price_change_bps)
    elif kind == "AllocationChange":
        validation.validate_allocation([(sh["bucket"], sh["bps"]) for sh in msg["shares"]], s.buckets)
    elif kind == "TreasurySpend":
        assets = treasury.assets()
        family = assets.get(msg["asset"])
        kind_of_recipient = address_kind(msg["recipient"])
        recipient_ok = kind_of_recipient is not None and family in (kind_of_recipient, "any")
        balance = (treasury.bucket_balance(session, msg["bucket"], msg["asset"])
                   if msg["bucket"] in s.buckets and family else 0)
        validation.validate_spend(
            bucket=msg["bucket"], asset=msg["asset"], amount=int(msg["amount"]), buckets=s.buckets,
            assets=assets, recipient_ok=recipient_ok, bucket_balance=balance, cap_bps=s.spend_cap_bps,
        )


def get_proposal(session: Session, proposal_id: str, *, for_update: bool = False) -> Proposal:
    query = select(Proposal).where(Proposal.id == proposal_id.lower())
    if for_update:
        query = query.with_for_update()
    row = session.exec(query).first()
    if row is None:
        raise NotFound(f"no proposal {proposal_id}", code="proposal_not_found")
    return row


def _encode_cursor(p: Proposal) -> str:
    return base64.urlsafe_b64encode(f"{p.created_at}:{p.id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, pid = raw.split(":", 1)
        # text from the client, and both parts reach the SQL query: a time past BIGINT is not
        # a value the driver can bind, and int() would also read other scripts' digits
        at = parse_uint(created, BIGINT_MAX)
        if at is None or not _PROPOSAL_ID.fullmatch(pid):
            raise ValueError(raw)
        return at, pid
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("the cursor is not one this service issued", code="invalid_cursor") from exc


def list_proposals(session: Session, runtime: Runtime, *, state: str | None = None,
                   kind: str | None = None, proposer: str | None = None, cursor: str | None = None,
                   limit: int = 50) -> tuple[list[Proposal], str | None]:
    """Newest first, stable under concurrent inserts (ordered by creation time, then id)."""
    now = runtime.clock.now()
    query = select(Proposal)
    if state is not None:
        try:
            wanted = State(state)
        except ValueError as exc:
            raise BadRequest(f"unknown state {state!r}", code="invalid_filter") from exc
        if wanted is State.PENDING:
            query = query.where(Proposal.state == "pending", Proposal.starts_at > now)
        elif wanted is State.ACTIVE:
            query = query.where(Proposal.state == "pending", Proposal.starts_at <= now)
        else:
            query = query.where(Proposal.state == wanted.value)
    if kind is not None:
        if kind not in PROPOSAL_KINDS:
            raise BadRequest(f"unknown kind {kind!r}", code="invalid_filter")
        query = query.where(Proposal.kind == kind)
    if proposer is not None:
        query = query.where(Proposal.proposer == proposer)
    if cursor:
        created, pid = _decode_cursor(cursor)
        query = query.where(or_(Proposal.created_at < created,
                                and_(Proposal.created_at == created, Proposal.id < pid)))
    query = query.order_by(Proposal.created_at.desc(), Proposal.id.desc()).limit(limit + 1)
    rows = list(session.exec(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (_encode_cursor(rows[-1]) if more and rows else None)


def cancel_proposal(session: Session, runtime: Runtime, proposal_id: str, *,
                    envelope: Envelope | None = None, guardian_key_id: int | None = None) -> Proposal:
    """Cancel by a signed ``Cancel`` (proposer while pending; a guardian address before
    executed) or by a guardian API key. Cancelling a canceled proposal again is a no-op."""
    proposal = get_proposal(session, proposal_id, for_update=True)
    now = runtime.clock.now()
    if guardian_key_id is not None:
        by, guardian, record = f"key:{guardian_key_id}", True, canonical_text({"guardian_key": guardian_key_id})
    else:
        if envelope is None:
            raise BadRequest("send a signed Cancel, or a guardian key", code="missing_body")
        verified = verify_accepted(envelope, runtime.encoder, ("Cancel",))
        msg = verified.message_json
        if msg["proposal"] != proposal.id:
            raise BadRequest("the signed Cancel names another proposal", code="proposal_mismatch")
        check_freshness(int(msg["timestamp"]), now, runtime.settings.max_clock_skew)
        guardian = verified.signer in runtime.settings.guardians
        if not guardian and verified.signer != proposal.proposer:
            raise Forbidden("only the proposer or a guardian may cancel", code="not_allowed_to_cancel")
        by = verified.signer
        record = canonical_text({"type": "Cancel", "scheme": verified.scheme, "signer": verified.signer,
                            "signature": verified.signature, "message": msg})
    if proposal.state == State.CANCELED.value:
        return proposal
    if not cancel_allowed(proposal.state, proposal.starts_at, now, by_guardian=guardian):
        state = effective_state(proposal.state, proposal.starts_at, now).value
        raise Conflict(f"the proposal is {state}; it can no longer be canceled by "
                       f"{'a guardian' if guardian else 'its proposer'}",
                       code="wrong_state", extra={"state": state})
    # a cancel the lifecycle allows may still come too late: a transfer in flight (the runtime
    # always has the guard: it is a required field the composition root fills)
    blocker = runtime.cancel_guard(session, proposal.id)
    if blocker:
        raise Conflict(blocker, code="execution_in_flight", extra={"state": proposal.state})
    transition(session, proposal, State.CANCELED, at=now, actor=by, canceled_at=now, canceled_by=by,
               cancel_record=record)
    return proposal
