"""Finalizing proposals whose voting ended: the scheduler's tally.

Exactly once, however many schedulers run: each proposal is locked, and tallied only if it is
still pending (a loser finds it queued or defeated, or canceled meanwhile, and does nothing);
its state moves by ``proposals.transitions.transition``, a conditional update. The tally is
recomputed from the ballot log (not from the running totals), checked against them, and
stored once with a Merkle root over the counted ballots.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from sqlmodel import Session, select

from governance.db import session_scope
from governance.failpoints import failpoint
from governance.ports import JournalReader, RecordedHead
from governance.runtime import Runtime
from proposals.lifecycle import State, execution_window
from proposals.models import Proposal
from proposals.service import process_actor
from proposals.transitions import lock, transition
from voting.models import ProposalTally, TallyResult
from voting.service import ballots_by_voter
from voting.tally import Totals, count_by_voter, decide

log = logging.getLogger("voting.finalize")


def due_proposals(session: Session, now: int, limit: int = 100) -> list[str]:
    return list(session.exec(
        select(Proposal.id).where(Proposal.state == State.PENDING.value, Proposal.ends_at <= now)
        .order_by(Proposal.ends_at, Proposal.id).limit(limit)
    ))


def finalize(session: Session, proposal_id: str, now: int, *, journal: JournalReader) -> TallyResult | None:
    """Tally one proposal if it is still pending and its voting ended; None if another
    process got there first (or it is not due). The result records the treasury journal's
    head (``journal``) as it stands when tallied."""
    # Lock first: on PostgreSQL this waits for any vote still being written under the proposal
    # lock (and for another scheduler finalizing it), and the ballots are read only after it.
    proposal = lock(session, proposal_id)
    if proposal is None or proposal.state != State.PENDING.value or proposal.ends_at > now:
        return None
    started = time.perf_counter()
    totals, root = count_by_voter(ballots_by_voter(session, proposal_id))
    running = session.get(ProposalTally, proposal_id)
    running_totals = Totals(running.for_votes, running.against_votes, running.abstain_votes,
                            running.voters) if running else Totals()
    if running_totals != totals:
        # The ballot log is authoritative; a mismatch means a bug or a manual edit.
        log.error("proposal %s: running totals %s disagree with the ballot log %s; using the log",
                  proposal_id, running_totals, totals)
    outcome = decide(totals, supply=proposal.snapshot_total, quorum_bps=proposal.quorum_bps,
                     approval_bps=proposal.approval_bps)
    point = journal.head(session)
    result = TallyResult(
        proposal_id=proposal_id, outcome=outcome.name, for_votes=totals.for_votes,
        against_votes=totals.against_votes, abstain_votes=totals.abstain_votes, voters=totals.voters,
        quorum=outcome.quorum, quorum_reached=outcome.quorum_reached, supply=proposal.snapshot_total,
        quorum_bps=proposal.quorum_bps, approval_bps=proposal.approval_bps,
        merkle_root="0x" + root.hex(), tallied_at=now, journal_seq=point.seq, journal_hash=point.hash,
    )
    session.add(result)
    detail = (f"{outcome.name}: for {totals.for_votes}, against {totals.against_votes}, "
              f"abstain {totals.abstain_votes}, quorum {outcome.quorum}")
    to, window = State.DEFEATED, {}
    if outcome.passed:  # succeeded, and queued at once
        eta, deadline = execution_window(now, proposal.timelock, proposal.grace_period)
        to, window = State.QUEUED, {"eta": eta, "deadline": deadline}
    transition(session, proposal, to, at=now, actor=process_actor(), detail=detail, tallied_at=now, **window)
    session.flush()
    failpoint("mid_finalize")  # tests: killed with the result written but not committed
    log.info("proposal %s finalized: %s with %d voters, counted in %.3f s", proposal_id, outcome.name,
             totals.voters, time.perf_counter() - started)
    return result


def finalize_due(runtime: Runtime) -> int:
    """Scheduler job: finalize every proposal whose voting ended. Each in its own transaction,
    so one failure does not hold back the others."""
    now = runtime.clock.now()
    journal = runtime.journal
    with session_scope(runtime.engine, write=False) as session:
        ids = due_proposals(session, now)
    done = 0
    for pid in ids:
        try:
            with session_scope(runtime.engine) as session:
                if finalize(session, pid, now, journal=journal) is not None:
                    done += 1
            failpoint("after_finalize_commit")  # tests: killed after the commit, before the next
        except Exception:
            log.exception("finalizing proposal %s failed; it will be retried", pid)
    return done


def recorded_heads(session: Session, batch: int = 1000) -> Iterator[RecordedHead]:
    """Every journal head a tally result recorded, for ``dao ledger verify`` (by pages)."""
    after = ""
    while True:
        rows = session.exec(select(TallyResult.proposal_id, TallyResult.journal_seq, TallyResult.journal_hash)
                            .where(TallyResult.proposal_id > after, TallyResult.journal_seq.is_not(None))  # type: ignore[union-attr]
                            .order_by(TallyResult.proposal_id).limit(batch)).all()
        for pid, seq, digest in rows:
            yield RecordedHead("result", f"result of proposal {pid} (journal head when tallied)", seq, digest or "")
        if len(rows) < batch:
            return
        after = rows[-1][0]
