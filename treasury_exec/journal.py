"""The journal: append-only, double-entry, each entry hashed with its predecessor.

Entry hash = sha256 of the canonical JSON (keys sorted, no whitespace) of
``{"seq", "kind", "reference", "created_at", "memo", "prev", "postings"}``, where postings
are ``[account, asset, amount as a decimal string]`` sorted. The first entry's ``prev`` is
64 zeros. Balances derive from the postings; every account except the sources and sinks
(``external:*``, ``issuance:*``) must stay at or above zero. ``reserved:execution:<id>``
accounts hold money in flight (see ``treasury_exec.reservations``).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import Session, select

from governance.errors import Unprocessable
from treasury_exec.models import AccountBalance, JournalEntry, JournalHead, JournalPosting, TokenCheckpoint

GENESIS = "0" * 64
SUPPLY = "*supply*"
FREE_ACCOUNTS = ("external:", "issuance:")


@dataclass(frozen=True)
class Posting:
    account: str
    asset: str
    amount: int


def entry_hash(seq: int, kind: str, reference: str, created_at: int, memo: str, prev: str,
               postings: Iterable[tuple[str, str, int]]) -> str:
    doc = {"seq": seq, "kind": kind, "reference": reference, "created_at": created_at, "memo": memo,
           "prev": prev, "postings": sorted([a, s, str(x)] for a, s, x in postings)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def may_go_negative(account: str) -> bool:
    return account.startswith(FREE_ACCOUNTS)


def balance(session: Session, account: str, asset: str, *, fresh: bool = False) -> int:
    """An account's balance; ``fresh`` reads the row again even if this session holds it (under
    the head's lock, a row loaded before the lock may have changed since)."""
    row = session.get(AccountBalance, (account, asset), populate_existing=fresh)
    return row.balance if row else 0


def head(session: Session, *, lock: bool = False) -> JournalHead:
    query = select(JournalHead).where(JournalHead.id == 1)
    if lock:
        query = query.with_for_update()
    row = session.exec(query).first()
    if row is None:
        raise RuntimeError("the journal has no head row: run `dao init`")
    return row


def append_entry(session: Session, *, kind: str, reference: str, postings: list[Posting], now: int,
                 token_asset: str, memo: str = "") -> JournalEntry:
    """Append one balanced entry. Refuses (422, storing nothing) a posting that would take a
    bounded account below zero. Updates balances and token checkpoints in the same
    transaction, under the journal head's lock."""
    sums: dict[str, int] = defaultdict(int)
    for p in postings:
        sums[p.asset] += p.amount
    if any(sums.values()):
        raise ValueError(f"unbalanced entry {kind}/{reference}: {dict(sums)}")
    h = head(session, lock=True)
    deltas: dict[tuple[str, str], int] = defaultdict(int)
    for p in postings:
        deltas[(p.account, p.asset)] += p.amount
    new_balances: dict[tuple[str, str], int] = {}
    for (account, asset), delta in deltas.items():
        after = balance(session, account, asset, fresh=True) + delta
        if after < 0 and not may_go_negative(account):
            code = "insufficient_tokens" if asset == token_asset else "insufficient_funds"
            raise Unprocessable(f"{account} holds {after - delta} {asset}; {-delta} needed", code=code)
        new_balances[(account, asset)] = after
    seq = h.seq + 1
    digest = entry_hash(seq, kind, reference, now, memo, h.hash,
                        [(p.account, p.asset, p.amount) for p in postings])
    entry = JournalEntry(seq=seq, kind=kind, reference=reference, created_at=now, memo=memo, prev_hash=h.hash,
                         hash=digest)
    session.add(entry)
    session.flush()  # the entry before its postings (foreign key)
    session.add_all(JournalPosting(entry_seq=seq, account=p.account, asset=p.asset, amount=p.amount)
                    for p in postings)
    for (account, asset), after in new_balances.items():
        row = session.get(AccountBalance, (account, asset))
        if row is None:
            session.add(AccountBalance(account=account, asset=asset, balance=after))
        else:
            row.balance = after
            session.add(row)
        if asset == token_asset:
            if account.startswith("holder:"):
                session.add(TokenCheckpoint(account=account.removeprefix("holder:"), seq=seq, balance=after))
            elif account.startswith("issuance:"):
                session.add(TokenCheckpoint(account=SUPPLY, seq=seq, balance=-after))
    h.seq, h.hash = seq, digest
    session.add(h)
    session.flush()
    return entry


@dataclass
class VerifyReport:
    ok: bool
    entries: int
    head_hash: str
    broken_at: int | None = None
    reason: str = ""


def verify_chain(session: Session, batch: int = 2000) -> VerifyReport:
    """Recompute every hash, every balance and every token checkpoint from the postings;
    report the first entry that disagrees. Reads in batches (large journals)."""
    prev, expected_seq, count = GENESIS, 1, 0
    balances: dict[tuple[str, str], int] = defaultdict(int)
    after = 0
    h = head(session)
    while True:
        entries = list(session.exec(select(JournalEntry).where(JournalEntry.seq > after)
                                    .order_by(JournalEntry.seq).limit(batch)))
        if not entries:
            break
        seqs = [e.seq for e in entries]
        postings: dict[int, list[JournalPosting]] = defaultdict(list)
        for p in session.exec(select(JournalPosting).where(JournalPosting.entry_seq.in_(seqs))):
            postings[p.entry_seq].append(p)
        checkpoints = {(c.account, c.seq): c.balance for c in session.exec(
            select(TokenCheckpoint).where(TokenCheckpoint.seq >= seqs[0], TokenCheckpoint.seq <= seqs[-1]))}
        for e in entries:
            if e.seq != expected_seq:
                return VerifyReport(False, count, prev, expected_seq, f"entry {expected_seq} is missing")
            legs = postings[e.seq]
            if e.prev_hash != prev:
                return VerifyReport(False, count, prev, e.seq, "its previous-hash link does not match entry "
                                    f"{e.seq - 1}")
            digest = entry_hash(e.seq, e.kind, e.reference, e.created_at, e.memo, e.prev_hash,
                                [(p.account, p.asset, p.amount) for p in legs])
            if digest != e.hash:
                return VerifyReport(False, count, prev, e.seq, "its contents do not match its hash "
                                    "(an entry or a posting was changed)")
            sums: dict[str, int] = defaultdict(int)
            for p in legs:
                sums[p.asset] += p.amount
                balances[(p.account, p.asset)] += p.amount
                bal = balances[(p.account, p.asset)]
                if bal < 0 and not may_go_negative(p.account):
                    return VerifyReport(False, count, prev, e.seq, f"{p.account} goes negative")
                if p.account.startswith("holder:") and (p.account[7:], e.seq) in checkpoints \
                        and checkpoints[(p.account[7:], e.seq)] != bal:
                    return VerifyReport(False, count, prev, e.seq, f"token checkpoint of {p.account[7:]} "
                                        "does not match the postings")
            if any(sums.values()):
                return VerifyReport(False, count, prev, e.seq, "its postings do not balance")
            prev, expected_seq, count = e.hash, e.seq + 1, count + 1
        after = entries[-1].seq
    if h.seq != count or h.hash != prev:
        return VerifyReport(False, count, prev, count + 1 if h.seq > count else h.seq,
                            "the journal head does not match the last entry")
    for row in session.exec(select(AccountBalance)):
        if balances.get((row.account, row.asset), 0) != row.balance:
            return VerifyReport(False, count, prev, None, f"balance of {row.account} in {row.asset} is "
                                f"{row.balance}; the journal says {balances.get((row.account, row.asset), 0)}")
    return VerifyReport(True, count, prev)
