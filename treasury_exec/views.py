"""Executions as the API shows them, alone or as a section of a proposal."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlmodel import Session

from proposals.models import Proposal
from proposals.schemas import AttemptView, ExecutionView
from treasury_exec import reservations
from treasury_exec.executions import attempts_of
from treasury_exec.models import Execution
from treasury_exec.schemas import AttemptRead, ExecutionRead


def execution_reads(session: Session, rows: Sequence[Execution]) -> list[ExecutionRead]:
    """Executions as the API shows them, with their attempts, what they hold reserved and
    their proposal's deadline (read in one query each, whatever the number of rows)."""
    ids = [r.id for r in rows if r.id is not None]
    attempts = attempts_of(session, ids)
    held = reservations.held_by(session, ids)
    # a Result has keys(): dict() would index it, so unpack the rows
    deadlines = {pid: deadline for pid, deadline in session.execute(select(Proposal.id, Proposal.deadline).where(
        Proposal.id.in_({r.proposal_id for r in rows})))} if rows else {}
    return [ExecutionRead(
        id=ex.id or 0, proposal_id=ex.proposal_id, kind=ex.kind, mode=ex.mode, status=ex.status,
        attempts=[AttemptRead(at=a.at, ok=a.ok, actor=a.actor, reason=a.reason, tx_hash=a.tx_hash)
                  for a in attempts.get(ex.id or 0, [])],
        asset=ex.asset, bucket=ex.bucket, recipient=ex.recipient,
        amount=str(ex.amount) if ex.amount is not None else None,
        reserved=str(held[ex.id]) if ex.id in held else None, last_error=ex.last_error,
        next_attempt_at=ex.next_attempt_at, deadline=deadlines.get(ex.proposal_id), lease_owner=ex.lease_owner,
        lease_expires_at=ex.lease_expires_at, claimed_block=ex.claimed_block, tx_hash=ex.tx_hash, nonce=ex.nonce,
        reference=ex.reference, parameter_version=ex.parameter_version, journal_seq=ex.journal_seq,
        created_at=ex.created_at, completed_at=ex.completed_at,
    ) for ex in rows]


def execution_read(session: Session, ex: Execution) -> ExecutionRead:
    return execution_reads(session, [ex])[0]


def execution_sections(session: Session, proposals: Sequence[Proposal]) -> dict[str, ExecutionView]:
    ids = [p.id for p in proposals]
    if not ids:
        return {}
    # Core rows, not ORM objects: this runs on every proposal read
    ex = Execution.__table__
    rows = list(session.execute(select(ex).where(ex.c.proposal_id.in_(ids))))
    attempts = attempts_of(session, [r.id for r in rows])
    return {r.proposal_id: ExecutionView(
        id=r.id, status=r.status, tx_hash=r.tx_hash, reference=r.reference,
        parameter_version=r.parameter_version, journal_seq=r.journal_seq, completed_at=r.completed_at,
        attempts=[AttemptView(at=a.at, ok=a.ok, reason=a.reason) for a in attempts[r.id]],
    ) for r in rows}
