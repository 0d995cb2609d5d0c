"""Voting use cases: cast a vote, read ballots and power, upload holder lists."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import Connection, bindparam, false, insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from governance.db import session_scope
from governance.errors import BadRequest, GovernanceError, NotFound, Unprocessable
from governance.idempotency import record_once
from governance.ports import PowerSource, Snapshot
from governance.runtime import Runtime
from governance.signatures import VerifiedMessage, address_kind
from governance.typed_data import canonical_text
from governance.types import UINT256_MAX, parse_uint
from proposals.models import Proposal
from proposals.service import get_proposal
from voting import merkle
from voting.models import Ballot, HolderBalance, HolderList, ProposalTally
from voting.power import snapshot_of
from voting.rules import Accept, Limits, ProposalTerms, Vote, decide_vote
from voting.schemas import HolderListUpload, VoteReceipt
from voting.tally import BallotRecord, Totals


@dataclass(frozen=True)
class Accepted:
    """A vote's answer: its receipt, and whether it was new (201) or a replay (200)."""

    receipt: VoteReceipt
    created: bool


class _Statements:
    """The vote writer's statements, built once: SQLAlchemy then reuses each one's cache key and
    compiled form, where statements built per batch cost more Python than the batch's SQL."""

    def __init__(self) -> None:
        p, b, t = Proposal.__table__, Ballot.__table__, ProposalTally.__table__  # type: ignore[attr-defined]
        ids, voters = bindparam("ids", expanding=True), bindparam("voters", expanding=True)
        self.lock = sa_select(p.c.id, p.c.state, p.c.starts_at, p.c.ends_at, p.c.vote_change, p.c.snapshot_source,
                              p.c.snapshot_ref, p.c.snapshot_total).where(p.c.id.in_(ids)).order_by(p.c.id) \
            .with_for_update()
        self.replays = sa_select(b.c.id, b.c.proposal_id, b.c.voter, b.c.choice, b.c.weight, b.c.accepted_at,
                                 b.c.seq).where(b.c.id.in_(ids))
        self.counted = sa_select(b.c.id, b.c.voter, b.c.choice, b.c.weight, b.c.signed_at).where(
            b.c.proposal_id == bindparam("proposal"), b.c.voter.in_(voters), b.c.superseded == false())
        self.tally = sa_select(t.c.for_votes, t.c.against_votes, t.c.abstain_votes, t.c.voters, t.c.last_seq) \
            .where(t.c.proposal_id == bindparam("proposal"))
        self.supersede = update(b).where(b.c.id.in_(ids)).values(superseded=True)
        self.insert_ballots = insert(b)
        self.insert_tally = insert(t)
        self.update_tally = update(t).where(t.c.proposal_id == bindparam("proposal"))


_statements = _Statements()


def preload_weights(runtime: Runtime, votes: Sequence[VerifiedMessage]) -> None:
    """Ask a power source that reads a chain node (``reads_chain``: erc20) for the voters'
    weights in a read-only unit of work, before the writing one takes its locks: the source
    keeps what it read at each snapshot, and :func:`record_votes` then gets the weights
    without the node. A source that reads the database needs nothing here."""
    power = runtime.power
    if not power.reads_chain:
        return
    voters: dict[str, set[str]] = {}
    for v in votes:
        voters.setdefault(v.message_json["proposal"], set()).add(v.signer)
    with session_scope(runtime.engine, write=False) as session:
        for proposal_id, who in voters.items():
            proposal = session.get(Proposal, proposal_id)
            if proposal is not None:
                power.weights(session, snapshot_of(proposal), who)


def record_votes(session: Session, runtime: Runtime,
                 votes: Sequence[VerifiedMessage]) -> list[Accepted | GovernanceError]:
    """Record verified votes, in order, in the caller's transaction: one answer per vote,
    either its receipt or the error that refused it (a refused vote writes nothing).

    The ballots, their places in the log and the running totals are written under a lock on
    each proposal row, so the scheduler's tally (which claims the same row) sees all of a
    batch or none of it. Per proposal the work is set-based: what the votes are decided
    against is read in bulk (:func:`_load`), each vote is then decided by the pure rules
    (:func:`voting.rules.decide_vote`) in arrival order, seeing the ballots accepted before
    it, exactly as if it came alone (:func:`_decide`), and what was accepted is written in
    bulk (:func:`_write`). It runs in Core on the session's connection, with statements built
    once: this is the hottest write path of the service.
    """
    conn = session.connection()
    ids = ["0x" + v.digest.hex() for v in votes]
    groups: dict[str, list[int]] = {}
    for i, v in enumerate(votes):
        groups.setdefault(v.message_json["proposal"], []).append(i)
    # Lock in a fixed order (two writers never wait on each other in a cycle); then look for
    # replays, so the same vote sent twice at once is stored once and replayed to the other.
    proposals = {p.id: p for p in conn.execute(_statements.lock, {"ids": sorted(groups)})}
    stored = {row.id: VoteReceipt(id=row.id, proposal=row.proposal_id, voter=row.voter, choice=row.choice,
                                  weight=str(row.weight), accepted_at=row.accepted_at, seq=row.seq)
              for row in conn.execute(_statements.replays, {"ids": sorted(set(ids))})}
    limits = Limits(runtime.settings.max_clock_skew, runtime.settings.reason_max_chars)
    now = runtime.clock.now()
    power = runtime.power
    outcomes: list[Accepted | GovernanceError | None] = [None] * len(votes)
    for proposal_id, members in groups.items():
        proposal = proposals.get(proposal_id)
        if proposal is None:
            for i in members:
                outcomes[i] = NotFound(f"no proposal {proposal_id}", code="proposal_not_found")
            continue
        loaded = _load(session, power, proposal, {votes[i].signer for i in members})
        answers, writes = _decide(loaded, [(ids[i], votes[i]) for i in members], stored, limits, now)
        _write(conn, writes)
        for i, answer in zip(members, answers, strict=True):
            outcomes[i] = answer
    return outcomes  # type: ignore[return-value]


@dataclass
class _Loaded:
    """What one proposal's votes in a batch are decided against, read in bulk."""

    proposal_id: str
    terms: ProposalTerms
    weights: dict[str, int]  # the voters' power at the proposal's snapshot
    counted: dict[str, BallotRecord]  # the voters' counted ballots
    totals: Totals  # the running totals
    last_seq: int  # the ballot log's length
    tally_stored: bool  # whether the running totals have a row yet


@dataclass
class _Writes:
    """What one proposal's votes in a batch change, written in bulk."""

    proposal_id: str
    ballots: list[dict[str, Any]]  # new ballot rows, in log order
    superseded: list[str]  # ids of stored ballots replaced by new ones
    totals: Totals
    last_seq: int
    tally_stored: bool


def _load(session: Session, power: PowerSource, proposal: Any, voters: set[str]) -> _Loaded:
    conn = session.connection()
    terms = ProposalTerms(proposal.state, proposal.starts_at, proposal.ends_at, proposal.vote_change)
    weights = power.weights(session, snapshot_of(proposal), voters)
    counted = {row.voter: BallotRecord(row.id, row.voter, row.choice, row.weight, row.signed_at)
               for row in conn.execute(_statements.counted, {"proposal": proposal.id, "voters": sorted(voters)})}
    tally = conn.execute(_statements.tally, {"proposal": proposal.id}).first()
    if tally is None:
        return _Loaded(proposal.id, terms, weights, counted, Totals(), 0, tally_stored=False)
    totals = Totals(tally.for_votes, tally.against_votes, tally.abstain_votes, tally.voters)
    return _Loaded(proposal.id, terms, weights, counted, totals, tally.last_seq, tally_stored=True)


def _decide(loaded: _Loaded, votes: list[tuple[str, VerifiedMessage]], stored: dict[str, VoteReceipt],
            limits: Limits, now: int) -> tuple[list[Accepted | GovernanceError], _Writes]:
    """Each vote's answer, in order, and the rows the accepted ones add or change."""
    proposal_id = loaded.proposal_id
    counted = dict(loaded.counted)  # each voter's counted ballot, as the batch moves on
    new: dict[str, dict[str, Any]] = {}  # ballot rows accepted in this batch, by id
    replays: dict[str, VoteReceipt] = {}  # their receipts, as a replay later in the batch gets them
    superseded: list[str] = []
    totals, seq = loaded.totals, loaded.last_seq
    answers: list[Accepted | GovernanceError] = []
    for vote_id, verified in votes:
        receipt = stored.get(vote_id)
        if receipt is None:
            receipt = replays.get(vote_id)
        if receipt is not None:
            answers.append(Accepted(receipt, created=False))
            continue
        msg = verified.message_json
        vote = Vote(vote_id, verified.signer, msg["choice"], msg["reason"], int(msg["timestamp"]))
        decision = decide_vote(loaded.terms, vote, weight=loaded.weights.get(vote.voter, 0),
                               counted=counted.get(vote.voter), now=now, limits=limits)
        if not isinstance(decision, Accept):
            answers.append(decision)
            continue
        replaced = decision.replaces
        if replaced is not None:
            if replaced.id in new:
                new[replaced.id]["superseded"] = True
            else:
                superseded.append(replaced.id)
        totals += decision.delta
        seq += 1
        ballot = decision.ballot
        counted[vote.voter] = ballot
        new[vote_id] = {"id": vote_id, "proposal_id": proposal_id, "seq": seq, "voter": vote.voter,
                        "choice": ballot.choice, "weight": ballot.weight, "reason": vote.reason,
                        "signed_at": ballot.signed_at, "accepted_at": now, "scheme": verified.scheme,
                        "signature": verified.signature, "message": canonical_text(msg), "superseded": False}
        receipt = replays[vote_id] = VoteReceipt(id=vote_id, proposal=proposal_id, voter=vote.voter,
                                                 choice=ballot.choice, weight=str(ballot.weight),
                                                 accepted_at=now, seq=seq)
        if replaced is not None:  # the first answer says which ballot it replaced; a replay's does not
            receipt = msgspec.structs.replace(receipt, replaces=replaced.id)
        answers.append(Accepted(receipt, created=True))
    return answers, _Writes(proposal_id, list(new.values()), superseded, totals, seq, loaded.tally_stored)


def _write(conn: Connection, writes: _Writes) -> None:
    if not writes.ballots:
        return
    if writes.superseded:
        conn.execute(_statements.supersede, {"ids": writes.superseded})
    conn.execute(_statements.insert_ballots, writes.ballots)
    totals = writes.totals
    values = {"for_votes": totals.for_votes, "against_votes": totals.against_votes,
              "abstain_votes": totals.abstain_votes, "voters": totals.voters, "last_seq": writes.last_seq}
    if writes.tally_stored:
        conn.execute(_statements.update_tally, {"proposal": writes.proposal_id, **values})
    else:
        conn.execute(_statements.insert_tally, [{"proposal_id": writes.proposal_id, **values}])


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
    # Core, on the session's connection: ORM result handling would double the time per row
    rows = session.connection().execute(
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
    power = runtime.power
    snap = snapshot_of(get_proposal(session, proposal_id)) if proposal_id else power.take_snapshot(session)
    return power.weight(session, snap, address), snap


def upload_holder_list(session: Session, runtime: Runtime, upload: HolderListUpload) -> tuple[HolderList, bool]:
    """Store a holder list with its Merkle root; proposals created from now on use it.

    Returns ``(list, created)``. Under a ``reference`` the upload is idempotent: the same list
    again (same holders and balances in any order, same label) returns the stored one with
    ``created=False``; another list under it is a 409 ``reference_conflict``."""
    balances: dict[str, int] = {}
    for h in upload.holders:
        if address_kind(h.address) is None:
            raise BadRequest(f"{h.address!r} is not an EIP-55 or Solana address", code="invalid_address")
        balance = parse_uint(h.balance)  # ASCII digits only: "١٠٠" is not 100 here, "²" not a number
        if balance is None or h.balance != str(balance):  # one written form: "05" is not 5 here either
            raise BadRequest(f"balance of {h.address} is not a uint256 decimal string", code="invalid_balance")
        if h.address in balances:
            raise Unprocessable(f"{h.address} is listed twice", code="duplicate_holder")
        balances[h.address] = balance
    if not balances:
        raise Unprocessable("the holder list is empty", code="empty_holder_list")
    if sum(balances.values()) > UINT256_MAX:  # the total is the quorum base: a uint256 like every amount
        raise Unprocessable("the holder list's balances add up to more than 2^256-1", code="amount_too_large")
    # the root commits to every (address, balance) in address order: the list's canonical form
    root = "0x" + merkle.root(merkle.holder_leaf(a, balances[a]) for a in sorted(balances)).hex()

    def create() -> HolderList:
        row = HolderList(merkle_root=root, total=sum(balances.values()), holders=len(balances),
                         label=upload.label, uploaded_at=runtime.clock.now(), reference=upload.reference)
        session.add(row)
        session.flush()
        assert row.id is not None
        session.add_all(HolderBalance(list_id=row.id, address=a, balance=b) for a, b in balances.items())
        session.flush()
        return row

    if upload.reference is None:
        return create(), True
    reference = upload.reference
    return record_once(
        session, reference=reference, what="holder list", create=create,
        find=lambda: session.exec(select(HolderList).where(HolderList.reference == reference)).first(),
        same=lambda stored: (stored.merkle_root, stored.label) == (root, upload.label))
