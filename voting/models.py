"""Ballots, the live tally, final results and uploaded holder lists."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from governance.types import Timestamp, Uint256


class Ballot(SQLModel, table=True):
    """Every accepted signed vote, as received: the proposal's ballot log."""

    __tablename__ = "ballot"
    __table_args__ = (
        UniqueConstraint("proposal_id", "seq", name="uq_ballot_proposal_seq"),
        Index("ix_ballot_proposal_voter", "proposal_id", "voter"),
    )

    id: str = Field(primary_key=True, max_length=66)  # EIP-712 digest of the Vote
    proposal_id: str = Field(sa_column=Column(String(66), ForeignKey("proposal.id"), nullable=False))
    seq: int  # 1, 2, … in the proposal's ballot log
    voter: str = Field(max_length=64)
    choice: int
    weight: int = Field(sa_type=Uint256)
    reason: str = Field(sa_type=Text)
    signed_at: int = Field(sa_type=Timestamp)
    accepted_at: int = Field(sa_type=Timestamp)
    scheme: str = Field(max_length=8)
    signature: str = Field(max_length=200)
    message: str = Field(sa_type=Text)  # canonical JSON of the signed Vote
    superseded: bool = False  # replaced by a newer ballot of the same voter (vote_change=latest)


class ProposalTally(SQLModel, table=True):
    """Running totals, updated in the same transaction as each ballot: O(1) to read."""

    __tablename__ = "proposal_tally"

    proposal_id: str = Field(sa_column=Column(String(66), ForeignKey("proposal.id"), primary_key=True))
    for_votes: int = Field(default=0, sa_type=Uint256)
    against_votes: int = Field(default=0, sa_type=Uint256)
    abstain_votes: int = Field(default=0, sa_type=Uint256)
    voters: int = 0  # voters with an effective ballot
    last_seq: int = 0  # the ballot log's length


class TallyResult(SQLModel, table=True):
    """The final result, written once by the scheduler; never updated."""

    __tablename__ = "tally_result"

    proposal_id: str = Field(sa_column=Column(String(66), ForeignKey("proposal.id"), primary_key=True))
    outcome: str = Field(max_length=16)
    for_votes: int = Field(sa_type=Uint256)
    against_votes: int = Field(sa_type=Uint256)
    abstain_votes: int = Field(sa_type=Uint256)
    voters: int
    quorum: int = Field(sa_type=Uint256)
    quorum_reached: bool
    supply: int = Field(sa_type=Uint256)
    quorum_bps: int
    approval_bps: int
    merkle_root: str = Field(max_length=66)
    tallied_at: int = Field(sa_type=Timestamp)
    # the treasury journal's head when tallied (null on results stored before it was recorded)
    journal_seq: int | None = Field(default=None, sa_type=BigInteger)
    journal_hash: str | None = Field(default=None, max_length=64)


class HolderList(SQLModel, table=True):
    """An uploaded holder list (e.g. an SPL token snapshot) and its Merkle root."""

    __tablename__ = "holder_list"
    __table_args__ = (UniqueConstraint("reference", name="uq_holder_list_reference"),)

    id: int | None = Field(default=None, primary_key=True)
    merkle_root: str = Field(max_length=66)
    total: int = Field(sa_type=Uint256)
    holders: int
    label: str = Field(default="", max_length=200)
    uploaded_at: int = Field(sa_type=Timestamp)
    reference: str | None = Field(default=None, max_length=200)  # the client's idempotency key, if it sent one


class HolderBalance(SQLModel, table=True):
    __tablename__ = "holder_balance"

    list_id: int = Field(sa_column=Column(ForeignKey("holder_list.id"), primary_key=True))
    address: str = Field(sa_column=Column(String(64), primary_key=True))
    balance: int = Field(sa_type=Uint256)
