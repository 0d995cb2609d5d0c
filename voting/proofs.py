"""Inclusion proofs: one ballot's path to its proposal's Merkle root (docs/protocol.md,
"Inclusion proofs"), so that a voter confirms that their ballot was counted, with its weight
and choice, without the whole export.

The leaves are rebuilt from the ballot log exactly as the tally built them (``voting.tally``:
each voter's newest ballot, in voter order), so the path checks against the recorded root.
The cost is one pass over the proposal's ballots and one hash per node (the leaves are not
stored): ``bench`` measures it.
"""

from __future__ import annotations

import re

from sqlmodel import Session, select

from governance.errors import BadRequest, Conflict, NotFound
from governance.signatures import address_kind
from proposals.lifecycle import effective_state
from proposals.service import get_proposal
from voting import merkle
from voting.models import Ballot, TallyResult
from voting.schemas import InclusionProof
from voting.service import ballots_by_voter
from voting.tally import BallotRecord, newer

_VOTE_ID = re.compile(r"0x[0-9a-fA-F]{64}")
ALGORITHM = "ast-merkle/1"  # keccak256, 0x00 leaf / 0x01 node prefixes, sorted pairs, odd node carried


def counted_in_order(session: Session, proposal_id: str) -> list[BallotRecord]:
    """The counted ballots (each voter's newest, see ``voting.tally.newer``) in leaf order."""
    out: list[BallotRecord] = []
    for b in ballots_by_voter(session, proposal_id):
        if out and out[-1].voter == b.voter:
            if newer(b, out[-1]):
                out[-1] = b
        else:
            out.append(b)
    return out


def inclusion_proof(session: Session, proposal_id: str, now: int, *, voter: str | None = None,
                    vote: str | None = None) -> InclusionProof:
    """The proof for the ballot ``vote`` (an id), or the ballot that counts for ``voter``. A
    superseded ballot gets no path: ``counted`` false and the ballot that counts instead."""
    if (voter is None) == (vote is None):
        raise BadRequest("give exactly one of voter and vote", code="invalid_query")
    if vote is not None and not _VOTE_ID.fullmatch(vote):
        raise BadRequest("vote is a vote id: 0x and 64 hex digits", code="invalid_query")
    if voter is not None and address_kind(voter) is None:
        raise BadRequest("voter is not an EIP-55 address or a Solana address", code="invalid_address")
    proposal = get_proposal(session, proposal_id)
    result = session.get(TallyResult, proposal_id)
    if result is None:
        raise Conflict(f"proposal {proposal_id} is not tallied yet: its root does not exist", code="not_tallied",
                       extra={"state": effective_state(proposal.state, proposal.starts_at, now).value})
    query = select(Ballot).where(Ballot.proposal_id == proposal_id)
    query = query.where(Ballot.voter == voter) if voter is not None else query.where(Ballot.id == vote.lower())
    ballots = list(session.exec(query))
    if not ballots:
        raise NotFound(f"no ballot {'of ' + voter if voter else vote} on proposal {proposal_id}",
                       code="ballot_not_found")
    leaves = counted_in_order(session, proposal_id)
    index = {b.voter: i for i, b in enumerate(leaves)}
    counted = leaves[index[ballots[0].voter]]
    ballot = next((b for b in ballots if b.id == counted.id), None) if voter is not None else ballots[0]
    assert ballot is not None
    leaf = merkle.ballot_leaf(ballot.id, ballot.weight)
    common = dict(proposal=proposal_id, vote_id=ballot.id, voter=ballot.voter, choice=ballot.choice,
                  weight=str(ballot.weight), leaf="0x" + leaf.hex(), leaves=len(leaves),
                  merkle_root=result.merkle_root, algorithm=ALGORITHM)
    if ballot.id != counted.id:
        return InclusionProof(**common, counted=False, superseded_by=counted.id)
    i = index[ballot.voter]
    path = merkle.inclusion_proof([merkle.ballot_leaf(b.id, b.weight) for b in leaves], i)
    return InclusionProof(**common, counted=True, index=i, path=["0x" + p.hex() for p in path])
