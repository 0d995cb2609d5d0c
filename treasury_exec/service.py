"""Treasury use cases: purchases, buybacks, deposits, parameters, reads. The session is
passed in; the caller commits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlmodel import Session, select
from sqlmodel.sql.expression import SelectOfScalar

from governance.errors import BadRequest, Unprocessable
from governance.idempotency import record_once
from governance.ports import JournalPoint
from governance.runtime import Runtime
from governance.signatures import normalize_address
from governance.types import BPS
from treasury_exec import journal
from treasury_exec.journal import GENESIS, Posting
from treasury_exec.models import (
    AccountBalance,
    Buyback,
    Deposit,
    JournalEntry,
    JournalHead,
    JournalPosting,
    ParameterVersion,
    Purchase,
)
from treasury_exec.split import split_payment, tokens_for_payment

USD = "USD"  # micro-USD, the internal asset revenue is kept in
T = TypeVar("T")


def initialise(session: Session, runtime: Runtime) -> None:
    """``dao init``: the journal head and the initial price and allocation (idempotent)."""
    if session.get(JournalHead, 1) is None:
        session.add(JournalHead(id=1, seq=0, hash=GENESIS))
    now = runtime.clock.now()
    s = runtime.settings
    if session.exec(_latest("price")).first() is None:
        session.add(ParameterVersion(kind="price", value=json.dumps(s.initial_price), created_at=now, origin="initial"))
    if session.exec(_latest("allocation")).first() is None:
        session.add(ParameterVersion(kind="allocation", value=json.dumps(s.initial_allocation, sort_keys=True),
                                     created_at=now, origin="initial"))
    session.flush()


def _latest(kind: str) -> SelectOfScalar[ParameterVersion]:
    return select(ParameterVersion).where(ParameterVersion.kind == kind).order_by(ParameterVersion.id.desc()).limit(1)


# ``dao init`` makes the first price and allocation with the deployment, and a process whose
# database holds none does not start (Runtime.load_deployment): one is always in force.

def price_version(session: Session) -> ParameterVersion:
    return session.exec(_latest("price")).one()


def allocation_version(session: Session) -> ParameterVersion:
    return session.exec(_latest("allocation")).one()


def price_in_force(session: Session) -> int:
    return int(json.loads(price_version(session).value))


def add_parameter_version(session: Session, kind: str, value: Any, *, now: int,
                          proposal_id: str | None) -> ParameterVersion:
    """A new price or allocation, in force from now on; the allocation is replaced whole."""
    if kind == "allocation" and sum(value.values()) != BPS:
        raise Unprocessable("an allocation sums to 10000 bps", code="allocation_not_100")
    row = ParameterVersion(kind=kind, value=json.dumps(value, sort_keys=True), created_at=now,
                           origin="proposal" if proposal_id else "initial", proposal_id=proposal_id)
    session.add(row)
    session.flush()
    return row


def _positive(value: int, name: str) -> int:
    if value <= 0:
        raise Unprocessable(f"{name} must be above zero", code="invalid_amount")
    return value


def record_purchase(session: Session, runtime: Runtime, *, buyer: str, payment: int,
                    reference: str) -> tuple[Purchase, bool]:
    """Mint tokens for a paid purchase at the price in force and split the payment into the
    buckets by the allocation in force. Idempotent by ``reference`` (:func:`record_once`): the
    same purchase again returns the stored one (``created=False``); another under it is a 409."""
    buyer = normalize_address(buyer)
    _positive(payment, "payment")
    s = runtime.settings

    def create() -> Purchase:
        pv, av = price_version(session), allocation_version(session)
        price, allocation = int(json.loads(pv.value)), json.loads(av.value)
        tokens = tokens_for_payment(payment, price, s.token_decimals)
        if tokens <= 0:
            raise Unprocessable(f"{payment} micro-USD buys less than one base unit at {price}",
                                code="payment_too_small")
        parts = split_payment(payment, allocation)
        postings = [Posting("external:payments", USD, -payment)]
        postings += [Posting(f"bucket:{b}", USD, amount) for b, amount in parts.items() if amount]
        postings += [Posting(f"issuance:{s.token_symbol}", s.token_symbol, -tokens),
                     Posting(f"holder:{buyer}", s.token_symbol, tokens)]
        now = runtime.clock.now()
        entry = journal.append_entry(session, kind="purchase", reference=reference, postings=postings, now=now,
                                     token_asset=s.token_symbol)
        row = Purchase(reference=reference, buyer=buyer, payment=payment, tokens=tokens, price=price,
                       price_version=pv.id, allocation_version=av.id, split=json.dumps(parts, sort_keys=True),
                       journal_seq=entry.seq, created_at=now)
        session.add(row)
        session.flush()
        return row

    _lock_journal(session)
    return record_once(session, reference=reference, what="purchase", create=create,
                       find=lambda: _by_reference(session, Purchase, reference),
                       same=lambda p: (p.buyer, p.payment) == (buyer, payment))


def record_buyback(session: Session, runtime: Runtime, *, seller: str, amount: int, tokens: int,
                   reference: str) -> tuple[Buyback, bool]:
    """Pay ``amount`` micro-USD from the buybacks bucket for ``tokens`` of ``seller``, and burn
    them. 422 (nothing stored) when the bucket or the seller holds too little. Idempotent by
    ``reference`` like a purchase."""
    seller = normalize_address(seller)
    _positive(amount, "amount")
    _positive(tokens, "tokens")
    sym = runtime.settings.token_symbol

    def create() -> Buyback:
        now = runtime.clock.now()
        legs = [Posting("bucket:buybacks", USD, -amount), Posting("external:buybacks", USD, amount),
                Posting(f"holder:{seller}", sym, -tokens), Posting(f"issuance:{sym}", sym, tokens)]
        entry = journal.append_entry(session, kind="buyback", reference=reference, now=now, token_asset=sym,
                                     postings=legs)
        row = Buyback(reference=reference, seller=seller, amount=amount, tokens=tokens, journal_seq=entry.seq,
                      created_at=now)
        session.add(row)
        session.flush()
        return row

    _lock_journal(session)
    return record_once(session, reference=reference, what="buyback", create=create,
                       find=lambda: _by_reference(session, Buyback, reference),
                       same=lambda b: (b.seller, b.amount, b.tokens) == (seller, amount, tokens))


def _lock_journal(session: Session) -> None:
    """Take the journal head's lock before looking a reference up: the lookup and the write
    then happen under the one lock that serializes journal writers (a row lock on PostgreSQL;
    SQLite's writers are serialized by BEGIN IMMEDIATE already). Looked up before the lock,
    two identical requests both saw no record and both wrote: a deposit was journaled twice,
    a purchase's second insert failed on the unique reference with a 500."""
    journal.head(session, lock=True)


def _by_reference(session: Session, model: type[T], reference: str) -> T | None:
    return session.exec(select(model).where(model.reference == reference)).first()  # type: ignore[attr-defined]


def transfer_tokens(session: Session, runtime: Runtime, *, sender: str, recipient: str, amount: int,
                    reference: str) -> JournalEntry:
    """Move tokens between holders (how tokens change hands after a snapshot)."""
    normalize_address(sender)
    normalize_address(recipient)
    sym = runtime.settings.token_symbol
    _positive(amount, "amount")
    legs = [Posting(f"holder:{sender}", sym, -amount), Posting(f"holder:{recipient}", sym, amount)]
    return journal.append_entry(session, kind="transfer", reference=reference, now=runtime.clock.now(),
                                token_asset=sym, postings=legs)


def record_deposit(session: Session, runtime: Runtime, *, bucket: str, asset: str, amount: int,
                   reference: str, assets: set[str]) -> tuple[Deposit, bool]:
    """Credit funds the treasury received on chain to a bucket, in that asset. Idempotent by
    ``reference`` like a purchase: the same deposit again returns the stored one
    (``created=False``), another deposit under it is a 409 ``reference_conflict``."""
    if bucket not in runtime.settings.buckets:
        raise Unprocessable(f"unknown bucket {bucket!r}", code="unknown_bucket")
    if asset not in assets:
        raise Unprocessable(f"asset {asset!r} is not a configured on-chain asset", code="unknown_asset")
    _positive(amount, "amount")

    def create() -> Deposit:
        now = runtime.clock.now()
        entry = journal.append_entry(session, kind="deposit", reference=reference, now=now,
                                     token_asset=runtime.settings.token_symbol,
                                     postings=[Posting(f"external:deposits:{asset}", asset, -amount),
                                               Posting(f"bucket:{bucket}", asset, amount)])
        row = Deposit(reference=reference, bucket=bucket, asset=asset, amount=amount,
                      balance=bucket_balance(session, bucket, asset), journal_seq=entry.seq, created_at=now)
        session.add(row)
        session.flush()
        return row

    _lock_journal(session)
    return record_once(session, reference=reference, what="deposit", create=create,
                       find=lambda: _by_reference(session, Deposit, reference),
                       same=lambda d: (d.bucket, d.asset, d.amount) == (bucket, asset, amount))


def bucket_balance(session: Session, bucket: str, asset: str = USD) -> int:
    return journal.balance(session, f"bucket:{bucket}", asset)


@dataclass(frozen=True)
class TreasuryState:
    """The treasury now: parameters in force, what each bucket holds, the token supply, the
    journal's head. Balances are what is left to spend (reservations already taken out)."""

    price: int  # micro-USD per whole token
    price_version: int
    allocation: dict[str, int]  # bps per bucket
    allocation_version: int
    buckets: dict[str, int]  # micro-USD per bucket, every configured bucket
    assets: dict[str, dict[str, int]]  # on-chain asset -> bucket -> base units
    supply: int
    head: JournalPoint


def treasury_state(session: Session, runtime: Runtime) -> TreasuryState:
    s = runtime.settings
    rows = session.exec(select(AccountBalance).where(AccountBalance.account.like("bucket:%"))).all()
    buckets: dict[str, dict[str, int]] = {}
    for r in rows:
        buckets.setdefault(r.asset, {})[r.account.removeprefix("bucket:")] = r.balance
    pv, av = price_version(session), allocation_version(session)
    h = journal.head(session)
    return TreasuryState(
        price=int(json.loads(pv.value)), price_version=pv.id or 0, allocation=json.loads(av.value),
        allocation_version=av.id or 0, buckets={b: buckets.get(USD, {}).get(b, 0) for b in s.buckets},
        assets={a: v for a, v in buckets.items() if a != USD},
        supply=-journal.balance(session, f"issuance:{s.token_symbol}", s.token_symbol),
        head=JournalPoint(h.seq, h.hash))


def ledger_page(session: Session, *, after: int, limit: int) -> list[tuple[JournalEntry, list[JournalPosting]]]:
    entries = list(session.exec(select(JournalEntry).where(JournalEntry.seq > after)
                                .order_by(JournalEntry.seq).limit(limit)))
    if not entries:
        return []
    legs: dict[int, list[JournalPosting]] = {e.seq: [] for e in entries}
    for p in session.exec(select(JournalPosting).where(JournalPosting.entry_seq.in_(list(legs)))
                          .order_by(JournalPosting.id)):
        legs[p.entry_seq].append(p)
    return [(e, legs[e.seq]) for e in entries]


def history(session: Session, kind: str | None = None) -> list[ParameterVersion]:
    query = select(ParameterVersion).order_by(ParameterVersion.id)
    if kind is not None:
        if kind not in ("price", "allocation"):
            raise BadRequest("kind is price or allocation", code="invalid_filter")
        query = query.where(ParameterVersion.kind == kind)
    return list(session.exec(query))

