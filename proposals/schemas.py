"""Wire types of the proposals API (msgspec). Token amounts are decimal strings: they
exceed what a JSON number holds exactly in most clients (2^53)."""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec


class TallyView(msgspec.Struct):
    """The live tally: running totals kept with every accepted ballot."""

    for_: str = msgspec.field(name="for")
    against: str
    abstain: str
    ballots: int
    quorum: str  # for + abstain needed
    quorum_reached: bool
    passing: bool  # what the outcome would be if voting ended now


class LedgerHead(msgspec.Struct):
    """A point of the treasury journal: entry ``seq`` (0: none yet) and its hash. Keep a copy:
    ``dao ledger verify --expect SEQ:HASH`` checks the journal still holds it unchanged."""

    seq: int
    hash: str


class ResultView(msgspec.Struct):
    """The final, immutable result the scheduler stored."""

    outcome: str  # succeeded | defeated
    for_: str = msgspec.field(name="for")
    against: str = "0"
    abstain: str = "0"
    ballots: int = 0
    quorum: str = "0"
    quorum_reached: bool = False
    supply: str = "0"
    quorum_bps: int = 0
    approval_bps: int = 0
    merkle_root: str = ""
    tallied_at: int = 0
    ledger_head: LedgerHead | None = None  # the journal's head when tallied (null: before it was recorded)


class AttemptView(msgspec.Struct):
    at: int
    ok: bool
    reason: str | None = None


class ExecutionView(msgspec.Struct):
    id: int
    status: str
    attempts: list[AttemptView] = []
    tx_hash: str | None = None
    reference: str | None = None
    parameter_version: int | None = None
    journal_seq: int | None = None
    completed_at: int | None = None


class SnapshotView(msgspec.Struct):
    source: str
    ref: int
    total: str
    ledger_head: LedgerHead | None = None  # the journal's head at the snapshot (null: before it was recorded)


class RulesView(msgspec.Struct):
    quorum_bps: int
    approval_bps: int
    voting_delay: int
    voting_period: int
    timelock: int
    grace_period: int
    vote_change: str


class ProposalRead(msgspec.Struct):
    id: str
    kind: str
    state: str
    proposer: str
    scheme: str
    signature: str
    title: str
    message: dict[str, Any]
    created_at: int
    starts_at: int
    ends_at: int
    voting_open: bool
    snapshot: SnapshotView
    proposer_weight: str
    rules: RulesView
    tallied_at: int | None = None
    eta: int | None = None
    deadline: int | None = None
    executed_at: int | None = None
    expired_at: int | None = None
    canceled_at: int | None = None
    canceled_by: str | None = None
    tally: TallyView | None = None
    result: ResultView | None = None
    execution: ExecutionView | None = None


class VotingSection(NamedTuple):
    """What the voting domain adds to a proposal's view: the live tally, and the result once
    tallied. (The proposal document declares the sections other domains fill; ``proposals``
    imports neither of them, see docs/architecture.md.)"""

    tally: TallyView
    result: ResultView | None


class ProposalPage(msgspec.Struct):
    items: list[ProposalRead]
    next_cursor: str | None = None
