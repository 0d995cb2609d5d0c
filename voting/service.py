"""Voting use cases: cast a vote, read ballots and power, upload holder lists."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, false, insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from governance.errors import BadRequest, Conflict, Forbidden, GovernanceError, NotFound, Unprocessable
from governance.idempotency import record_once
from governance.ports import PowerSource, Snapshot
from governance.runtime import Runtime
from governance.signatures import VerifiedMessage, address_kind, check_freshness
from governance.typed_data import canonical_text
from governance.types import UINT256_MAX, parse_uint
from proposals.lifecycle import State, effective_state, voting_open
from proposals.models import Proposal
from proposals.service import get_proposal
from voting import merkle
from voting.models import Ballot, HolderBalance, HolderList, ProposalTally
from voting.power import snapshot_of
from voting.schemas import HolderListUpload, VoteReceipt
from voting.tally import CHOICES, BallotRecord, Totals, newer


def _closed_reason(p: Proposal, now: int) -> tuple[str, str]:
    state = effective_state(p.state, p.starts_at, now)
    if state is State.PENDING:
        return "voting_not_started", f"voting opens at {p.starts_at}; the proposal is pending"
    if state is State.ACTIVE and now >= p.ends_at:
        return "voting_closed", f"voting closed at {p.ends_at}"
    return "voting_closed", f"the proposal is {state.value}"


@dataclass(frozen=True)
class Accepted:
    """A vote's answer: its receipt, and whether it was new (201) or a replay (200)."""

    receipt: VoteReceipt
    created: bool


@dataclass
class _Current:
    """A voter's counted ballot while a batch is applied."""

    record: BallotRecord
    row: dict[str, Any] | None  # the row to insert, if the ballot came in this batch


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


def record_votes(session: Session, runtime: Runtime,
                 votes: Sequence[VerifiedMessage]) -> list[Accepted | GovernanceError]:
    """Record verified votes, in order, in the caller's transaction: one answer per vote,
    either its receipt or the error that refused it (a refused vote writes nothing).

    The ballots, their places in the log and the running totals are written under a lock on
    each proposal row, so the scheduler's tally (which claims the same row) sees all of a
    batch or none of it. The work is set-based — one query for replays, one for the voters'
    weights, one for their counted ballots, one insert, one tally update per proposal — and
    every rule is the same as for a vote alone: votes are decided one after another, each
    seeing the ones before it. It runs in Core on the session's connection, with statements
    built once: this is the hottest write path of the service.
    """
    conn = session.connection()
    outcomes: list[Accepted | GovernanceError | None] = [None] * len(votes)
    ids = ["0x" + v.digest.hex() for v in votes]
    groups: dict[str, list[int]] = {}
    for i, v in enumerate(votes):
        groups.setdefault(v.message_json["proposal"], []).append(i)
    # Lock in a fixed order (two writers never wait on each other in a cycle); then look for
    # replays, so the same vote sent twice at once is stored once and replayed to the other.
    proposals = {p.id: p for p in conn.execute(_statements.lock, {"ids": sorted(groups)})}
    stored = {row.id: row for row in conn.execute(_statements.replays, {"ids": sorted(set(ids))})}
    now = runtime.clock.now()
    power = runtime.power
    for proposal_id, members in groups.items():
        proposal = proposals.get(proposal_id)
        if proposal is None:
            for i in members:
                outcomes[i] = NotFound(f"no proposal {proposal_id}", code="proposal_not_found")
            continue
        _record_for_proposal(session, runtime, power, proposal, [(i, ids[i], votes[i]) for i in members],
                             stored, now, outcomes)
    return outcomes  # type: ignore[return-value]


def _record_for_proposal(session: Session, runtime: Runtime, power: PowerSource, proposal: Any,
                         members: list[tuple[int, str, VerifiedMessage]], stored: dict[str, Any], now: int,
                         outcomes: list[Accepted | GovernanceError | None]) -> None:
    settings = runtime.settings
    conn = session.connection()
    voters = {v.signer for _, _, v in members}
    weights = power.weights(session, snapshot_of(proposal), voters)
    current = {row.voter: _Current(BallotRecord(row.id, row.voter, row.choice, row.weight, row.signed_at), None)
               for row in conn.execute(_statements.counted, {"proposal": proposal.id, "voters": sorted(voters)})}
    tally = conn.execute(_statements.tally, {"proposal": proposal.id}).first()
    totals = Totals(tally.for_votes, tally.against_votes, tally.abstain_votes, tally.voters) if tally else Totals()
    last_seq = tally.last_seq if tally else 0
    inserts: list[dict[str, Any]] = []
    superseded: list[str] = []
    for i, vote_id, verified in members:
        if vote_id in stored:
            row = stored[vote_id]
            outcomes[i] = Accepted(VoteReceipt(id=row.id, proposal=row.proposal_id, voter=row.voter,
                                               choice=row.choice, weight=str(row.weight),
                                               accepted_at=row.accepted_at, seq=row.seq), created=False)
            continue
        msg = verified.message_json
        try:
            if not voting_open(proposal.state, proposal.starts_at, proposal.ends_at, now):
                code, why = _closed_reason(proposal, now)
                state = effective_state(proposal.state, proposal.starts_at, now).value
                raise Conflict(why, code=code, extra={"state": state})
            check_freshness(int(msg["timestamp"]), now, settings.max_clock_skew)
            if msg["choice"] not in CHOICES:
                raise Unprocessable("choice is 0 (against), 1 (for) or 2 (abstain)", code="invalid_choice")
            if len(msg["reason"]) > settings.reason_max_chars:
                raise Unprocessable(f"the reason is longer than {settings.reason_max_chars} characters",
                                    code="reason_too_long")
            weight = weights.get(verified.signer, 0)
            if weight <= 0:
                raise Forbidden(f"{verified.signer} had no voting power at this proposal's snapshot",
                                code="no_voting_power")
            new = BallotRecord(vote_id, verified.signer, msg["choice"], weight, int(msg["timestamp"]))
            previous = current.get(verified.signer)
            if previous is not None:
                if proposal.vote_change == "forbid":
                    raise Conflict("this voter has already voted on this proposal", code="already_voted",
                                   extra={"vote": previous.record.id})
                if not newer(new, previous.record):
                    raise Conflict("a newer vote of this voter is already counted", code="superseded",
                                   extra={"vote": previous.record.id})
        except GovernanceError as exc:
            outcomes[i] = exc
            continue
        if previous is not None:
            old = previous.record
            totals = totals.add(old.choice, old.weight, sign=-1)
            if previous.row is not None:
                previous.row["superseded"] = True
            else:
                superseded.append(old.id)
        totals = totals.add(new.choice, new.weight)
        last_seq += 1
        row = {"id": vote_id, "proposal_id": proposal.id, "seq": last_seq, "voter": verified.signer,
               "choice": new.choice, "weight": weight, "reason": msg["reason"], "signed_at": new.signed_at,
               "accepted_at": now, "scheme": verified.scheme, "signature": verified.signature,
               "message": canonical_text(msg), "superseded": False}
        inserts.append(row)
        current[verified.signer] = _Current(new, row)
        stored[vote_id] = _StoredRow(row)
        outcomes[i] = Accepted(VoteReceipt(id=vote_id, proposal=proposal.id, voter=verified.signer,
                                           choice=new.choice, weight=str(weight), accepted_at=now, seq=last_seq,
                                           replaces=previous.record.id if previous else None), created=True)
    if not inserts:
        return
    if superseded:
        conn.execute(_statements.supersede, {"ids": superseded})
    conn.execute(_statements.insert_ballots, inserts)
    values = {"for_votes": totals.for_votes, "against_votes": totals.against_votes,
              "abstain_votes": totals.abstain_votes, "voters": totals.voters, "last_seq": last_seq}
    if tally is None:
        conn.execute(_statements.insert_tally, [{"proposal_id": proposal.id, **values}])
    else:
        conn.execute(_statements.update_tally, {"proposal": proposal.id, **values})


class _StoredRow:
    """A ballot inserted by this batch, seen as a stored row by a replay later in the batch."""

    def __init__(self, row: dict[str, Any]):
        self.__dict__.update(row)


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
