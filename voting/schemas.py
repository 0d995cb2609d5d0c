"""Wire types of the voting API."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from proposals.schemas import LedgerHead


class VoteReceipt(msgspec.Struct):
    """What a voter keeps: the vote id, the weight counted, when and where it was logged."""

    id: str
    proposal: str
    voter: str
    choice: int
    weight: str
    accepted_at: int
    seq: int  # position in the proposal's ballot log
    replaces: str | None = None  # the earlier ballot of this voter it supersedes


class BallotRead(msgspec.Struct):
    id: str
    proposal: str
    seq: int
    voter: str
    choice: int
    weight: str
    reason: str
    accepted_at: int
    scheme: str
    signature: str
    message: dict[str, Any]
    superseded: bool


class BallotPage(msgspec.Struct):
    items: list[BallotRead]
    next_cursor: str | None = None


class SnapshotRef(msgspec.Struct):
    source: str
    ref: int
    total: str


class PowerRead(msgspec.Struct):
    address: str
    weight: str
    snapshot: SnapshotRef
    proposal: str | None = None


class Holder(msgspec.Struct, forbid_unknown_fields=True):
    address: str
    balance: str  # base units, decimal string of ASCII digits (the service checks it: 400 invalid_balance)


Reference = Annotated[str, Meta(min_length=1, max_length=200,
                                description="idempotency key: 1-200 visible ASCII characters, no spaces")]


class HolderListUpload(msgspec.Struct, forbid_unknown_fields=True):
    """A holder list. With a ``reference`` the upload is idempotent: the same list again under
    it answers 200 with the stored list, another list under it 409 ``reference_conflict``.
    Without one, every upload stores a new list (as before references existed)."""

    holders: list[Holder]
    label: Annotated[str, Meta(max_length=200)] = ""  # the column's length
    reference: Reference | None = None


class HolderListRead(msgspec.Struct):
    id: int
    merkle_root: str
    total: str
    holders: int
    label: str
    uploaded_at: int
    reference: str | None = None


# --- the export (GET /v1/proposals/{id}/export; checked offline by `dao verify`) ----------------


class SignedEnvelope(msgspec.Struct):
    """A signed message exactly as received: what ``dao verify`` checks the signature of."""

    type: str
    scheme: str
    signer: str
    signature: str
    message: dict[str, Any]


class ExportBallot(msgspec.Struct):
    seq: int
    accepted_at: int
    weight: str
    envelope: SignedEnvelope


class ExportRules(msgspec.Struct):
    quorum_bps: int
    approval_bps: int


class ExportProposal(msgspec.Struct):
    id: str
    state: str
    envelope: SignedEnvelope
    created_at: int
    starts_at: int
    ends_at: int
    rules: ExportRules


class ExportSnapshot(msgspec.Struct):
    source: str
    ref: int
    total: str
    ledger_head: LedgerHead | None
    weights: dict[str, str]  # voter -> weight at the snapshot, of every voter with a ballot


class ExportResult(msgspec.Struct):
    outcome: str
    for_: str = msgspec.field(name="for")
    against: str
    abstain: str
    voters: int
    quorum: str
    quorum_reached: bool
    merkle_root: str
    tallied_at: int
    ledger_head: LedgerHead | None


class ProposalExport(msgspec.Struct):
    """Everything needed to recount a proposal offline, trusting nothing in it: the EIP-712
    domain and types, the signed proposal, the snapshot weights, every ballot as signed, and
    the result the service recorded (None before the tally)."""

    format: str
    domain: dict[str, Any]
    types: dict[str, Any]
    proposal: ExportProposal
    snapshot: ExportSnapshot
    ballots: list[ExportBallot]
    result: ExportResult | None


class InclusionProof(msgspec.Struct, kw_only=True):
    """A ballot's path to its proposal's Merkle root (docs/protocol.md, "Inclusion proofs").
    Check: ``h = leafHash(leaf)``; ``h = nodeHash(h, s)`` for each ``s`` in ``path``;
    ``h == merkle_root``. The leaf is the vote id then the weight (32 bytes each), so a valid
    path proves this vote, with this weight, was counted; the vote id commits to the choice."""

    proposal: str
    vote_id: str
    voter: str
    choice: int
    weight: str
    counted: bool  # false: superseded by another ballot of the voter, which counts instead (no path)
    superseded_by: str | None = None  # the counted ballot's id, when this one is superseded
    leaf: str  # 0x-hex of the 64 leaf bytes
    index: int | None = None  # the leaf's place in leaf order (voter order), when counted
    leaves: int  # how many ballots the tree holds
    path: list[str] = []  # sibling hashes from the leaf up; empty for a one-leaf tree or when not counted
    merkle_root: str
    algorithm: str
