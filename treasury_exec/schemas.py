"""Wire types of the treasury API. Token amounts are decimal strings; micro-USD are numbers."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from governance.types import parse_uint
from proposals.schemas import LedgerHead

Reference = Annotated[str, Meta(min_length=1, max_length=200,
                                description="idempotency key: 1-200 visible ASCII characters, no spaces")]
# bounded like a BIGINT: more is no real payment, and tokens minted from it must stay far below 2^256
MicroUsd = Annotated[int, Meta(le=2**63 - 1, description="micro-USD (1 USD = 1,000,000)")]
TokenAmount = Annotated[str, Meta(pattern=r"^(0|[1-9][0-9]{0,77})$", description="base units, decimal string")]


def check_token_amounts(struct: msgspec.Struct, *names: str) -> None:
    r"""What the ``TokenAmount`` pattern cannot say: at most 2^256-1, and nothing after the
    digits (msgspec matches with ``re.search``, whose ``$`` also matches before a final
    ``"\n"``: ``"100\n"`` passed and was read as 100). A ValueError is a 400 ``invalid_body``."""
    for name in names:
        if parse_uint(getattr(struct, name)) is None:
            raise ValueError(f"`{name}` must be a decimal string of a uint256")


class PurchaseCreate(msgspec.Struct, forbid_unknown_fields=True):
    buyer: str  # EIP-55 or Solana address
    payment: MicroUsd
    reference: Reference


class PurchaseRead(msgspec.Struct):
    id: int
    reference: str
    buyer: str
    payment: int
    tokens: str
    price: int
    price_version: int
    allocation_version: int
    split: dict[str, int]
    journal_seq: int
    created_at: int


class BuybackCreate(msgspec.Struct, forbid_unknown_fields=True):
    seller: str
    amount: MicroUsd
    tokens: TokenAmount
    reference: Reference

    def __post_init__(self) -> None:
        check_token_amounts(self, "tokens")


class BuybackRead(msgspec.Struct):
    id: int
    reference: str
    seller: str
    amount: int
    tokens: str
    journal_seq: int
    created_at: int


class TreasuryRead(msgspec.Struct):
    price: int  # micro-USD per whole token
    price_version: int
    allocation: dict[str, int]  # bps
    allocation_version: int
    buckets: dict[str, int]  # micro-USD
    assets: dict[str, dict[str, str]]  # on-chain assets: asset -> bucket -> base units
    supply: str
    ledger_seq: int  # = ledger_head.seq, kept for older clients
    ledger_head: LedgerHead  # the journal's last entry and its hash: keep it to check the journal later
    # money in flight (signed transfers, claimed external spends): asset -> bucket -> base
    # units, already out of ``buckets``/``assets``, which show what is left to spend
    reserved: dict[str, dict[str, str]] = msgspec.field(default_factory=dict)


class PostingRead(msgspec.Struct):
    account: str
    asset: str
    amount: str


class EntryRead(msgspec.Struct):
    seq: int
    kind: str
    reference: str
    created_at: int
    memo: str
    prev_hash: str
    hash: str
    postings: list[PostingRead]


class LedgerPage(msgspec.Struct):
    items: list[EntryRead]
    next_cursor: str | None = None


class ParameterRead(msgspec.Struct):
    id: int
    kind: str
    value: int | dict[str, int]
    created_at: int
    origin: str
    proposal_id: str | None = None


class HistoryRead(msgspec.Struct):
    items: list[ParameterRead]


class DepositCreate(msgspec.Struct, forbid_unknown_fields=True):
    """On-chain funds the treasury received, credited to a bucket in that asset."""

    bucket: str
    asset: str
    amount: TokenAmount
    reference: Reference

    def __post_init__(self) -> None:
        check_token_amounts(self, "amount")


class DepositRead(msgspec.Struct):
    """The deposit as stored (a replay answers with the first one's record)."""

    id: int
    reference: str
    journal_seq: int
    bucket: str
    asset: str
    amount: str
    balance: str  # the bucket's balance in the asset right after this deposit
    created_at: int


class AttemptRead(msgspec.Struct):
    at: int
    ok: bool
    actor: str
    reason: str | None = None
    tx_hash: str | None = None


class ExecutionRead(msgspec.Struct):
    """The one execution of a queued proposal.

    ``mode``: ``parameters`` and ``internal`` run inside the service, ``chain`` is sent from
    the treasury account, ``external`` waits for an executor key. ``status``:

    - ``ready``: due; waiting for its turn, for an executor (``external``), or for
      ``next_attempt_at`` after a failed attempt (``last_error`` says why);
    - ``claimed``: an executor holds a lease until ``lease_expires_at``; ``reserved`` is set
      aside from the bucket; the paying transaction must be mined after ``claimed_block``;
    - ``signed``: a transfer is signed and stored (``tx_hash``, ``nonce``), maybe on its way;
      ``reserved`` is set aside; it cannot expire or be canceled while it may land;
    - terminal: ``done`` (journaled; the proposal executed), ``expired`` (not done by
      ``deadline``, the proposal's eta + grace), ``canceled`` (the proposal was canceled),
      ``failed`` (a transfer landed but could not be journaled; ``last_error`` says what the
      operator must reconcile).

    Every attempt, failed or not, is listed with its reason.
    """

    id: int
    proposal_id: str
    kind: str
    mode: str
    status: str
    attempts: list[AttemptRead]
    asset: str | None = None
    bucket: str | None = None
    recipient: str | None = None
    amount: str | None = None
    reserved: str | None = None  # base units held apart from the bucket now
    last_error: str | None = None
    next_attempt_at: int | None = None
    deadline: int | None = None  # the proposal's eta + grace: after it, the execution expires
    lease_owner: str | None = None
    lease_expires_at: int | None = None
    claimed_block: int | None = None
    tx_hash: str | None = None
    nonce: int | None = None
    reference: str | None = None
    parameter_version: int | None = None
    journal_seq: int | None = None
    created_at: int = 0
    completed_at: int | None = None


class ExecutionPage(msgspec.Struct):
    items: list[ExecutionRead]
    next_cursor: str | None = None


class CompleteRequest(msgspec.Struct, forbid_unknown_fields=True):
    # the lengths close what "$" leaves open: "0x…\n" matched the pattern alone (see TokenAmount)
    tx_hash: Annotated[str, Meta(pattern=r"^0x[0-9a-fA-F]{64}$", min_length=66, max_length=66)] | None = None
    reference: Annotated[str, Meta(min_length=1, max_length=200)] | None = None


class FailRequest(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, Meta(min_length=1, max_length=1000)]
