"""Treasury tables: the journal (append-only, double-entry, hash-chained), balances derived
from it, token checkpoints for snapshots, purchases, buybacks, deposits, parameters and
executions."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, Text
from sqlmodel import Field, SQLModel

from governance.types import Timestamp, Uint256


class JournalHead(SQLModel, table=True):
    """One row: the last sequence number and hash. Appending locks it, which serializes
    writers on PostgreSQL and hands out gapless sequence numbers."""

    __tablename__ = "journal_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(max_length=64)


class JournalEntry(SQLModel, table=True):
    __tablename__ = "journal_entry"

    seq: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    kind: str = Field(max_length=32)
    reference: str = Field(max_length=200)
    created_at: int = Field(sa_type=Timestamp)
    memo: str = Field(default="", sa_type=Text)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class JournalPosting(SQLModel, table=True):
    """One leg of an entry; an entry's postings sum to zero per asset."""

    __tablename__ = "journal_posting"
    __table_args__ = (Index("ix_journal_posting_entry", "entry_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    entry_seq: int = Field(sa_column=Column(Integer, ForeignKey("journal_entry.seq"), nullable=False))
    account: str = Field(max_length=80)
    asset: str = Field(max_length=32)
    amount: int = Field(sa_type=Uint256)  # signed: debit negative, credit positive


class AccountBalance(SQLModel, table=True):
    """Derived from the postings, kept in the same transaction; ``dao ledger verify`` recomputes it."""

    __tablename__ = "account_balance"

    account: str = Field(primary_key=True, max_length=80)
    asset: str = Field(primary_key=True, max_length=32)
    balance: int = Field(sa_type=Uint256)


class TokenCheckpoint(SQLModel, table=True):
    """A holder's token balance (or, for account ``*supply*``, the total supply) from ledger
    sequence ``seq`` on: the balance at any past sequence is one indexed lookup."""

    __tablename__ = "token_checkpoint"

    account: str = Field(primary_key=True, max_length=80)
    seq: int = Field(primary_key=True)
    balance: int = Field(sa_type=Uint256)


class Purchase(SQLModel, table=True):
    __tablename__ = "purchase"

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(max_length=200, unique=True)
    buyer: str = Field(max_length=64)
    payment: int = Field(sa_type=Uint256)  # micro-USD
    tokens: int = Field(sa_type=Uint256)  # base units
    # micro-USD per whole token, as in force: a uint256 like the price a PriceChange signs (an
    # INTEGER column ended every purchase in a 500 on PostgreSQL once a token cost $2,147.48)
    price: int = Field(sa_type=Uint256)
    price_version: int
    allocation_version: int
    split: str = Field(sa_type=Text)  # JSON bucket -> micro-USD
    journal_seq: int
    created_at: int = Field(sa_type=Timestamp)


class Buyback(SQLModel, table=True):
    __tablename__ = "buyback"

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(max_length=200, unique=True)
    seller: str = Field(max_length=64)
    amount: int = Field(sa_type=Uint256)  # micro-USD from the buybacks bucket
    tokens: int = Field(sa_type=Uint256)  # burned
    journal_seq: int
    created_at: int = Field(sa_type=Timestamp)


class Deposit(SQLModel, table=True):
    """On-chain funds credited to a bucket: one row per client reference, written in the
    transaction of its journal entry, so a reference is journaled at most once."""

    __tablename__ = "deposit"

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(max_length=200, unique=True)
    bucket: str = Field(max_length=64)
    asset: str = Field(max_length=32)
    amount: int = Field(sa_type=Uint256)  # base units of the asset
    balance: int = Field(sa_type=Uint256)  # the bucket's balance in the asset right after this deposit
    journal_seq: int
    created_at: int = Field(sa_type=Timestamp)


class ParameterVersion(SQLModel, table=True):
    """Every price and allocation in force, with where it came from."""

    __tablename__ = "parameter_version"
    __table_args__ = (Index("ix_parameter_version_kind", "kind", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # price | allocation
    value: str = Field(sa_type=Text)  # JSON: an integer price, or {bucket: bps}
    created_at: int = Field(sa_type=Timestamp)
    origin: str = Field(max_length=16)  # initial | proposal
    proposal_id: str | None = Field(default=None, max_length=66)


class Execution(SQLModel, table=True):
    """The one execution of a queued proposal (unique per proposal).

    status (``treasury_exec.status.ExecutionStatus``, and the README): ``ready`` (due, or
    waiting for its next attempt after a failed one), ``claimed`` (an external executor holds a
    lease; the amount is reserved), ``signed`` (an on-chain transfer is signed and stored, maybe
    broadcast; the amount is reserved); terminal: ``done``, ``expired``, ``canceled`` and
    ``failed`` (a transfer landed but could not be journaled, or succeeded paying nothing: the
    operator acts). It changes only through ``treasury_exec.executions.move_status``."""

    __tablename__ = "execution"
    __table_args__ = (
        Index("ix_execution_status", "status", "id"),
        # one transaction pays one execution: the database refuses a second use of a hash
        Index("ux_execution_tx_hash", "tx_hash", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    proposal_id: str = Field(max_length=66, unique=True)
    kind: str = Field(max_length=32)
    mode: str = Field(max_length=16)  # parameters | internal | chain | external
    asset: str | None = Field(default=None, max_length=32)
    bucket: str | None = Field(default=None, max_length=64)
    recipient: str | None = Field(default=None, max_length=64)
    amount: int | None = Field(default=None, sa_type=Uint256)
    status: str = Field(default="ready", max_length=16)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=Text)
    next_attempt_at: int | None = Field(default=None, sa_type=Timestamp)  # back-off after a failure
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_expires_at: int | None = Field(default=None, sa_type=Timestamp)
    # chain head when an external execution was first claimed (since it was last ready): a
    # completing transaction must be mined in a later block
    claimed_block: int | None = Field(default=None, sa_type=BigInteger)
    tx_hash: str | None = Field(default=None, max_length=66)  # lowercase 0x-hex
    signed_tx: str | None = Field(default=None, sa_type=Text)
    nonce: int | None = None
    reference: str | None = Field(default=None, max_length=200)
    parameter_version: int | None = None
    journal_seq: int | None = None
    created_at: int = Field(sa_type=Timestamp)
    updated_at: int = Field(sa_type=Timestamp)
    completed_at: int | None = Field(default=None, sa_type=Timestamp)


class ExecutionAttempt(SQLModel, table=True):
    """Every attempt, successful or not, with its reason: what executors and voters read."""

    __tablename__ = "execution_attempt"
    __table_args__ = (Index("ix_execution_attempt_execution", "execution_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    execution_id: int = Field(foreign_key="execution.id")
    at: int = Field(sa_type=Timestamp)
    ok: bool
    actor: str = Field(max_length=128)
    reason: str | None = Field(default=None, sa_type=Text)
    tx_hash: str | None = Field(default=None, max_length=66)


class ChainNonce(SQLModel, table=True):
    """The next nonce of the treasury account, handed out under a row lock so that two
    executors never sign two transactions with one nonce."""

    __tablename__ = "chain_nonce"

    address: str = Field(primary_key=True, max_length=42)
    next_nonce: int
