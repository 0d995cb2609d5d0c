"""Rendering proposals for the API. Other domains add their sections (the live tally and
result from ``voting``, the execution from ``treasury_exec``) through
``runtime.proposal_views``: functions ``(session, [proposal]) -> {proposal_id: {field: view}}``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

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
    sections: dict[str, dict[str, Any]] = {p.id: {} for p in proposals}
    for provider in runtime.proposal_views:
        for pid, fields in provider(session, proposals).items():
            sections.setdefault(pid, {}).update(fields)
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
            **sections.get(p.id, {}),
        )
        for p in proposals
    ]
