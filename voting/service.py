"""Voting use cases: cast a vote, read ballots and power, upload holder lists."""

from __future__ import annotations

import json
from collections.abc import Iterator

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from governance.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from governance.ports import POWER, PowerSource, Snapshot
from governance.runtime import Runtime
from governance.signatures import Envelope, address_kind, check_freshness
from proposals.lifecycle import State, effective_state
from proposals.models import Proposal
from proposals.service import canonical, get_proposal, verify
from voting import merkle
from voting.models import Ballot, HolderBalance, HolderList, ProposalTally
from voting.power import snapshot_of
from voting.schemas import HolderListUpload
from voting.tally import CHOICES, BallotRecord, Totals, newer


def _closed_reason(p: Proposal, now: int) -> tuple[str, str]:
    state = effective_state(p.state, p.starts_at, now)
    if state is State.PENDING:
        return "voting_not_started", f"voting opens at {p.starts_at}; the proposal is pending"
    if state is State.ACTIVE and now >= p.ends_at:
        return "voting_closed", f"voting closed at {p.ends_at}"
    return "voting_closed", f"the proposal is {state.value}"


def cast_vote(session: Session, runtime: Runtime, envelope: Envelope) -> tuple[Ballot, bool, str | None]:
    """Accept a signed vote. Returns ``(ballot, created, replaced_ballot_id)``.

    The ballot, its place in the log and the running totals are written in one transaction,
    under a lock on the proposal row, so the scheduler's tally (which claims the same row)
    sees either all of it or none.
    """
    verified = verify(runtime, envelope, ("Vote",))
    vote_id = "0x" + verified.digest.hex()
    existing = session.get(Ballot, vote_id)
    if existing is not None:
        return existing, False, None
    msg = verified.message_json
    proposal = session.exec(select(Proposal).where(Proposal.id == msg["proposal"]).with_for_update()).first()
    now = runtime.clock.now()
    if proposal is None:
        raise NotFound(f"no proposal {msg['proposal']}", code="proposal_not_found")
    if not (proposal.state == State.PENDING.value and proposal.starts_at <= now < proposal.ends_at):
        code, why = _closed_reason(proposal, now)
        state = effective_state(proposal.state, proposal.starts_at, now).value
        raise Conflict(why, code=code, extra={"state": state})
    check_freshness(int(msg["timestamp"]), now, runtime.settings.max_clock_skew)
    if msg["choice"] not in CHOICES:
        raise Unprocessable("choice is 0 (against), 1 (for) or 2 (abstain)", code="invalid_choice")
    if len(msg["reason"]) > runtime.settings.reason_max_chars:
        raise Unprocessable(f"the reason is longer than {runtime.settings.reason_max_chars} characters",
                            code="reason_too_long")
    power: PowerSource = runtime.port(POWER)
    weight = power.weight(session, snapshot_of(proposal), verified.signer)
    if weight <= 0:
        raise Forbidden(f"{verified.signer} had no voting power at this proposal's snapshot",
                        code="no_voting_power")

    tally = _tally_row(session, proposal.id)
    new = BallotRecord(vote_id, verified.signer, msg["choice"], weight, int(msg["timestamp"]))
    previous = session.exec(
        select(Ballot).where(Ballot.proposal_id == proposal.id, Ballot.voter == verified.signer,
                             Ballot.superseded == False)  # noqa: E712 - SQL comparison
    ).first()
    totals = Totals(tally.for_votes, tally.against_votes, tally.abstain_votes, tally.voters)
    if previous is not None:
        if proposal.vote_change == "forbid":
            raise Conflict("this voter has already voted on this proposal", code="already_voted",
                           extra={"vote": previous.id})
        old = BallotRecord(previous.id, previous.voter, previous.choice, previous.weight, previous.signed_at)
        if not newer(new, old):
            raise Conflict("a newer vote of this voter is already counted", code="superseded",
                           extra={"vote": previous.id})
        previous.superseded = True
        session.add(previous)
        totals = totals.add(old.choice, old.weight, sign=-1)
    totals = totals.add(new.choice, new.weight)
    ballot = Ballot(
        id=vote_id, proposal_id=proposal.id, seq=tally.last_seq + 1, voter=verified.signer,
        choice=msg["choice"], weight=weight, reason=msg["reason"], signed_at=new.signed_at,
        accepted_at=now, scheme=verified.scheme, signature=verified.signature, message=canonical(msg),
    )
    tally.for_votes, tally.against_votes = totals.for_votes, totals.against_votes
    tally.abstain_votes, tally.voters = totals.abstain_votes, totals.voters
    tally.last_seq = ballot.seq
    session.add(ballot)
    session.add(tally)
    session.flush()
    return ballot, True, previous.id if previous else None


def _tally_row(session: Session, proposal_id: str) -> ProposalTally:
    row = session.get(ProposalTally, proposal_id)
    if row is None:
        row = ProposalTally(proposal_id=proposal_id)
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:  # pragma: no cover - the proposal row lock makes this unlikely
            row = session.get(ProposalTally, proposal_id)
            assert row is not None
    return row


def list_ballots(session: Session, proposal_id: str, *, after: int = 0, limit: int = 100) -> list[Ballot]:
    get_proposal(session, proposal_id)
    return list(session.exec(
        select(Ballot).where(Ballot.proposal_id == proposal_id, Ballot.seq > after)
        .order_by(Ballot.seq).limit(limit)
    ))


def iter_ballots(session: Session, proposal_id: str, batch: int = 5000) -> Iterator[Ballot]:
    """Every ballot of a proposal in log order, fetched in batches (large proposals)."""
    after = 0
    while True:
        rows = list(session.exec(
            select(Ballot).where(Ballot.proposal_id == proposal_id, Ballot.seq > after)
            .order_by(Ballot.seq).limit(batch)
        ))
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].seq


def ballots_by_voter(session: Session, proposal_id: str) -> Iterator[BallotRecord]:
    """The whole ballot log as tally records, streamed in voter order (byte order of the
    address, as Python sorts it: PostgreSQL is told to use the "C" collation)."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    voter = Ballot.voter if sqlite else Ballot.voter.collate("C")  # type: ignore[attr-defined]
    rows = session.execute(
        select(Ballot.id, Ballot.voter, Ballot.choice, Ballot.weight, Ballot.signed_at)
        .where(Ballot.proposal_id == proposal_id).order_by(voter, Ballot.signed_at, Ballot.id)
        .execution_options(stream_results=True, yield_per=10_000)
    )
    for row in rows:
        yield BallotRecord(*row)


def power_of(session: Session, runtime: Runtime, address: str,
             proposal_id: str | None) -> tuple[int, Snapshot]:
    """Voting power at a proposal's snapshot, or at a snapshot taken now."""
    if address_kind(address) is None:
        raise BadRequest("not an EIP-55 address or a Solana address", code="invalid_address")
    power: PowerSource = runtime.port(POWER)
    snap = snapshot_of(get_proposal(session, proposal_id)) if proposal_id else power.take_snapshot(session)
    return power.weight(session, snap, address), snap


def upload_holder_list(session: Session, runtime: Runtime, upload: HolderListUpload) -> HolderList:
    """Store a holder list with its Merkle root; proposals created from now on use it."""
    balances: dict[str, int] = {}
    for h in upload.holders:
        if address_kind(h.address) is None:
            raise BadRequest(f"{h.address!r} is not an EIP-55 or Solana address", code="invalid_address")
        if not h.balance.isdigit() or int(h.balance) >= 2**256:
            raise BadRequest(f"balance of {h.address} is not a uint256 decimal string", code="invalid_balance")
        if h.address in balances:
            raise Unprocessable(f"{h.address} is listed twice", code="duplicate_holder")
        balances[h.address] = int(h.balance)
    if not balances:
        raise Unprocessable("the holder list is empty", code="empty_holder_list")
    root = merkle.root(merkle.holder_leaf(a, balances[a]) for a in sorted(balances))
    row = HolderList(merkle_root="0x" + root.hex(), total=sum(balances.values()), holders=len(balances),
                     label=upload.label, uploaded_at=runtime.clock.now())
    session.add(row)
    session.flush()
    assert row.id is not None
    session.add_all(HolderBalance(list_id=row.id, address=a, balance=b) for a, b in balances.items())
    session.flush()
    return row


def ballot_message(ballot: Ballot) -> dict:
    return json.loads(ballot.message)
