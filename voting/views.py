"""The voting sections of a proposal's view: live tally and final result."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlmodel import Session

from proposals.models import Proposal
from proposals.schemas import ResultView, TallyView, VotingSection
from proposals.views import ledger_head
from voting.models import ProposalTally, TallyResult
from voting.tally import Totals, decide


def tally_sections(session: Session, proposals: Sequence[Proposal]) -> dict[str, VotingSection]:
    ids = [p.id for p in proposals]
    if not ids:
        return {}
    # Core rows, not ORM objects: this runs on every proposal read
    tally, result = ProposalTally.__table__, TallyResult.__table__
    running = {t.proposal_id: t for t in session.execute(select(tally).where(tally.c.proposal_id.in_(ids)))}
    results = {r.proposal_id: r for r in session.execute(select(result).where(result.c.proposal_id.in_(ids)))}
    out: dict[str, VotingSection] = {}
    for p in proposals:
        t = running.get(p.id)
        totals = Totals(t.for_votes, t.against_votes, t.abstain_votes, t.voters) if t else Totals()
        o = decide(totals, supply=p.snapshot_total, quorum_bps=p.quorum_bps, approval_bps=p.approval_bps)
        tally_view = TallyView(
            for_=str(totals.for_votes), against=str(totals.against_votes), abstain=str(totals.abstain_votes),
            ballots=totals.voters, quorum=str(o.quorum), quorum_reached=o.quorum_reached, passing=o.passed,
        )
        r = results.get(p.id)
        result_view = None
        if r is not None:
            result_view = ResultView(
                outcome=r.outcome, for_=str(r.for_votes), against=str(r.against_votes),
                abstain=str(r.abstain_votes), ballots=r.voters, quorum=str(r.quorum),
                quorum_reached=r.quorum_reached, supply=str(r.supply), quorum_bps=r.quorum_bps,
                approval_bps=r.approval_bps, merkle_root=r.merkle_root, tallied_at=r.tallied_at,
                ledger_head=ledger_head(r.journal_seq, r.journal_hash),
            )
        out[p.id] = VotingSection(tally_view, result_view)
    return out
