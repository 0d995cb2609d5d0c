"""The proposal record: the signed message as received, its frozen rules and snapshot."""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Text
from sqlmodel import Field, SQLModel

from governance.types import Timestamp, Uint256


class Proposal(SQLModel, table=True):
    """One accepted proposal. Everything a tally or an auditor needs is frozen on it at
    acceptance; only the lifecycle columns change afterwards, by ``proposals.transitions``."""

    __tablename__ = "proposal"
    __table_args__ = (
        Index("ix_proposal_state_ends", "state", "ends_at"),
        Index("ix_proposal_state_eta", "state", "eta"),
        Index("ix_proposal_created", "created_at", "id"),
    )

    id: str = Field(primary_key=True, max_length=66)  # EIP-712 digest of the message
    kind: str = Field(max_length=32, index=True)
    proposer: str = Field(max_length=64, index=True)
    scheme: str = Field(max_length=8)
    signature: str = Field(max_length=200)
    message: str = Field(sa_type=Text)  # the signed message, canonical JSON
    title: str = Field(sa_type=Text)
    signed_at: int = Field(sa_type=Timestamp)

    # timing (server time of acceptance and the windows derived from it)
    created_at: int = Field(sa_type=Timestamp)
    starts_at: int = Field(sa_type=Timestamp)
    ends_at: int = Field(sa_type=Timestamp)

    # rules frozen at creation
    quorum_bps: int
    approval_bps: int
    voting_delay: int = Field(sa_type=Timestamp)
    voting_period: int = Field(sa_type=Timestamp)
    timelock: int = Field(sa_type=Timestamp)
    grace_period: int = Field(sa_type=Timestamp)
    vote_change: str = Field(max_length=8)

    # voting-power snapshot frozen at creation
    snapshot_source: str = Field(max_length=16)
    snapshot_ref: int = Field(sa_type=Timestamp)  # ledger sequence, block number or list id
    snapshot_total: int = Field(sa_type=Uint256)  # voting supply there, excluded accounts removed
    proposer_weight: int = Field(sa_type=Uint256)
    # the treasury journal's head there (for the ledger source, the entry ``snapshot_ref``):
    # anyone holding a copy can check the journal was not rewritten or cut below it since.
    # Null on proposals accepted before it was recorded.
    journal_seq: int | None = Field(default=None, sa_type=BigInteger)
    journal_hash: str | None = Field(default=None, max_length=64)

    # lifecycle (see proposals.lifecycle); stored states only, written by proposals.transitions
    state: str = Field(default="pending", max_length=16)
    tallied_at: int | None = Field(default=None, sa_type=Timestamp)
    eta: int | None = Field(default=None, sa_type=Timestamp)
    deadline: int | None = Field(default=None, sa_type=Timestamp)  # eta + grace
    executed_at: int | None = Field(default=None, sa_type=Timestamp)
    expired_at: int | None = Field(default=None, sa_type=Timestamp)
    canceled_at: int | None = Field(default=None, sa_type=Timestamp)
    canceled_by: str | None = Field(default=None, max_length=64)
    cancel_record: str | None = Field(default=None, sa_type=Text)  # the signed Cancel, or the key id
    updated_at: int = Field(sa_type=Timestamp)


class ProposalEvent(SQLModel, table=True):
    """Append-only history of a proposal: every transition, who made it and when.

    It is also the evidence for exactly-once: each transition appends one event in the
    transaction that makes it, so a doubled transition would show as a doubled event."""

    __tablename__ = "proposal_event"
    __table_args__ = (Index("ix_proposal_event_proposal", "proposal_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    proposal_id: str = Field(max_length=66)
    # created; a transition's new state (queued, defeated, executed, expired, canceled); and what
    # an execution attempt did: attempt_failed, transfer_signed
    event: str = Field(max_length=32)
    at: int = Field(sa_type=Timestamp)
    actor: str = Field(max_length=128)  # an address, key:<id>, or scheduler:<host>:<pid>
    detail: str = Field(default="", sa_type=Text)
