"""Rendering proposals for the API. Other domains add their sections through the runtime: the
live tally and result from ``voting`` (``runtime.tally_views``), the execution from
``treasury_exec`` (``runtime.execution_views``), each read for a whole page at once."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlmodel import Session

from governance.runtime import Runtime
from proposals.lifecycle import effective_state, voting_open
from proposals.models import Proposal
from proposals.schemas import LedgerHead, ProposalRead, RulesView, SnapshotView


def ledger_head(seq: int | None, digest: str | None) -> LedgerHead | None:
    """A recorded journal head as the API shows it; None where none was recorded."""
    return None if seq is None or digest is None else LedgerHead(seq=seq, hash=digest)


def render(session: Session, runtime: Runtime, proposals: Sequence[Proposal]) -> list[ProposalRead]:
    now = runtime.clock.now()
    voting = runtime.tally_views(session, proposals)
    executions = runtime.execution_views(session, proposals)
    return [
        ProposalRead(
            id=p.id, kind=p.kind,
            state=effective_state(p.state, p.starts_at, now).value,
            proposer=p.proposer, scheme=p.scheme, signature=p.signature, title=p.title,
            message=json.loads(p.message), created_at=p.created_at, starts_at=p.starts_at,
            ends_at=p.ends_at, voting_open=voting_open(p.state, p.starts_at, p.ends_at, now),
            snapshot=SnapshotView(source=p.snapshot_source, ref=p.snapshot_ref, total=str(p.snapshot_total),
                                  ledger_head=ledger_head(p.journal_seq, p.journal_hash)),
            proposer_weight=str(p.proposer_weight),
            rules=RulesView(quorum_bps=p.quorum_bps, approval_bps=p.approval_bps,
                            voting_delay=p.voting_delay, voting_period=p.voting_period,
                            timelock=p.timelock, grace_period=p.grace_period, vote_change=p.vote_change),
            tallied_at=p.tallied_at, eta=p.eta, deadline=p.deadline, executed_at=p.executed_at,
            expired_at=p.expired_at, canceled_at=p.canceled_at, canceled_by=p.canceled_by,
            tally=voting[p.id].tally if p.id in voting else None,
            result=voting[p.id].result if p.id in voting else None,
            execution=executions.get(p.id),
        )
        for p in proposals
    ]
