"""Treasury use cases: purchases, buybacks, deposits, parameters, reads. The session is
passed in; the caller commits."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, select

from governance.errors import BadRequest, Conflict, Unprocessable
from governance.runtime import Runtime
from governance.signatures import normalize_address
from treasury_exec import journal
from treasury_exec.journal import GENESIS, Posting
from treasury_exec.models import (
    AccountBalance,
    Buyback,
    JournalEntry,
    JournalHead,
    JournalPosting,
    ParameterVersion,
    Purchase,
)
from treasury_exec.split import split_payment, tokens_for_payment

USD = "USD"  # micro-USD, the internal asset revenue is kept in


def initialise(session: Session, runtime: Runtime) -> None:
    """``dao init``: the journal head and the initial price and allocation (idempotent)."""
    if session.get(JournalHead, 1) is None:
        session.add(JournalHead(id=1, seq=0, hash=GENESIS))
    now = runtime.clock.now()
    s = runtime.settings
    if _latest(session, "price") is None:
        session.add(ParameterVersion(kind="price", value=json.dumps(s.initial_price), created_at=now, origin="initial"))
    if _latest(session, "allocation") is None:
        session.add(ParameterVersion(kind="allocation", value=json.dumps(s.initial_allocation, sort_keys=True),
                                     created_at=now, origin="initial"))
    session.flush()


def _latest(session: Session, kind: str) -> ParameterVersion | None:
    return session.exec(select(ParameterVersion).where(ParameterVersion.kind == kind)
                        .order_by(ParameterVersion.id.desc()).limit(1)).first()


def price_version(session: Session) -> ParameterVersion:
    row = _latest(session, "price")
    if row is None:
        raise RuntimeError("no price in force: run `dao init`")
    return row


def allocation_version(session: Session) -> ParameterVersion:
    row = _latest(session, "allocation")
    if row is None:
        raise RuntimeError("no allocation in force: run `dao init`")
    return row


def price_in_force(session: Session) -> int:
    return int(json.loads(price_version(session).value))


def allocation_in_force(session: Session) -> dict[str, int]:
    return json.loads(allocation_version(session).value)


def add_parameter_version(session: Session, kind: str, value: Any, *, now: int,
                          proposal_id: str | None) -> ParameterVersion:
    """A new price or allocation, in force from now on; the allocation is replaced whole."""
    if kind == "allocation" and sum(value.values()) != 10_000:
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
    buckets by the allocation in force. Idempotent by ``reference``: the same purchase again
    returns the first result (``created=False``); different content under it is a 409."""
    normalize_address(buyer)
    _positive(payment, "payment")
    existing = session.exec(select(Purchase).where(Purchase.reference == reference)).first()
    if existing is not None:
        if (existing.buyer, existing.payment) != (buyer, payment):
            raise Conflict(f"reference {reference!r} was used for another purchase", code="reference_conflict")
        return existing, False
    s = runtime.settings
    pv, av = price_version(session), allocation_version(session)
    price, allocation = int(json.loads(pv.value)), json.loads(av.value)
    tokens = tokens_for_payment(payment, price, s.token_decimals)
    if tokens <= 0:
        raise Unprocessable(f"{payment} micro-USD buys less than one base unit at {price}", code="payment_too_small")
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
    return row, True


def record_buyback(session: Session, runtime: Runtime, *, seller: str, amount: int, tokens: int,
                   reference: str) -> tuple[Buyback, bool]:
    """Pay ``amount`` micro-USD from the buybacks bucket for ``tokens`` of ``seller``, and burn
    them. 422 (nothing stored) when the bucket or the seller holds too little."""
    normalize_address(seller)
    _positive(amount, "amount")
    _positive(tokens, "tokens")
    existing = session.exec(select(Buyback).where(Buyback.reference == reference)).first()
    if existing is not None:
        if (existing.seller, existing.amount, existing.tokens) != (seller, amount, tokens):
            raise Conflict(f"reference {reference!r} was used for another buyback", code="reference_conflict")
        return existing, False
    sym = runtime.settings.token_symbol
    now = runtime.clock.now()
    entry = journal.append_entry(session, kind="buyback", reference=reference, now=now, token_asset=sym, postings=[
        Posting("bucket:buybacks", USD, -amount), Posting("external:buybacks", USD, amount),
        Posting(f"holder:{seller}", sym, -tokens), Posting(f"issuance:{sym}", sym, tokens),
    ])
    row = Buyback(reference=reference, seller=seller, amount=amount, tokens=tokens, journal_seq=entry.seq,
                  created_at=now)
    session.add(row)
    session.flush()
    return row, True


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
                   reference: str, assets: set[str]) -> JournalEntry:
    """Credit funds the treasury received on chain to a bucket, in that asset (idempotent by
    reference: the same deposit again returns its entry)."""
    if bucket not in runtime.settings.buckets:
        raise Unprocessable(f"unknown bucket {bucket!r}", code="unknown_bucket")
    if asset not in assets:
        raise Unprocessable(f"asset {asset!r} is not a configured on-chain asset", code="unknown_asset")
    _positive(amount, "amount")
    existing = session.exec(select(JournalEntry).where(JournalEntry.kind == "deposit",
                                                       JournalEntry.reference == reference)).first()
    if existing is not None:
        return existing
    return journal.append_entry(session, kind="deposit", reference=reference, now=runtime.clock.now(),
                                token_asset=runtime.settings.token_symbol,
                                postings=[Posting(f"external:deposits:{asset}", asset, -amount),
                                          Posting(f"bucket:{bucket}", asset, amount)])


def bucket_balance(session: Session, bucket: str, asset: str = USD) -> int:
    return journal.balance(session, f"bucket:{bucket}", asset)


def treasury_state(session: Session, runtime: Runtime) -> dict[str, Any]:
    s = runtime.settings
    rows = session.exec(select(AccountBalance).where(AccountBalance.account.like("bucket:%"))).all()
    buckets: dict[str, dict[str, int]] = {}
    for r in rows:
        buckets.setdefault(r.asset, {})[r.account.removeprefix("bucket:")] = r.balance
    usd = {b: buckets.get(USD, {}).get(b, 0) for b in s.buckets}
    supply = -journal.balance(session, f"issuance:{s.token_symbol}", s.token_symbol)
    pv, av = price_version(session), allocation_version(session)
    h = journal.head(session)
    return {"price": int(json.loads(pv.value)), "price_version": pv.id, "allocation": json.loads(av.value),
            "allocation_version": av.id, "buckets": usd,
            "assets": {a: v for a, v in buckets.items() if a != USD}, "supply": str(supply),
            "ledger_seq": h.seq, "ledger_head": {"seq": h.seq, "hash": h.hash}}


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

