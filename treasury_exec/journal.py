"""The journal: append-only, double-entry, each entry hashed with its predecessor.

Entry hash = sha256 of the canonical JSON (keys sorted, no whitespace) of
``{"seq", "kind", "reference", "created_at", "memo", "prev", "postings"}``, where postings
are ``[account, asset, amount as a decimal string]`` sorted. The first entry's ``prev`` is
64 zeros. Balances derive from the postings; every account except the sources and sinks
(``external:*``, ``issuance:*``) must stay at or above zero. ``reserved:execution:<id>``
and ``reserved:fee:<id>`` accounts hold money in flight, ``external:network-fees`` receives the
fees the treasury account burns (see ``treasury_exec.reservations``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice

from sqlalchemy import String, func, literal, type_coerce
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from governance.errors import Unprocessable
from governance.ports import JournalPoint, RecordedHead
from governance.types import UINT256_MAX
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
    # ``dao init`` made it with the deployment, and a process without one never started
    # (Runtime.load_deployment): it is always there
    return session.exec(query).one()


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
        if abs(after) > UINT256_MAX:  # past what the balance column holds (PostgreSQL: a 500)
            raise Unprocessable(f"{account} would hold more than 2^256-1 {asset}", code="amount_too_large")
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


class JournalReaderPort:
    """governance.ports.JournalReader over this journal."""

    @staticmethod
    def head(session: Session) -> JournalPoint:
        h = head(session)
        return JournalPoint(h.seq, h.hash)

    @staticmethod
    def point_at(session: Session, seq: int) -> JournalPoint:
        if seq == 0:
            return JournalPoint(0, GENESIS)
        digest = session.exec(select(JournalEntry.hash).where(JournalEntry.seq == seq)).first()
        if digest is None:
            raise LookupError(f"the journal has no entry {seq}")
        return JournalPoint(seq, digest)


# ------------------------------------------------------------------------------------ verification

@dataclass(frozen=True)
class Problem:
    """One difference: where (an entry, a row of a derived table, a recorded head) and what
    was expected there against what was found."""

    where: str
    detail: str
    seq: int | None = None  # the journal entry it concerns, if any

    def __str__(self) -> str:
        return f"{self.where}: {self.detail}"


@dataclass
class VerifyReport:
    entries: int  # entries whose hash chain verified, from the first on
    head_hash: str  # the hash of the last of them
    problems: list[Problem] = field(default_factory=list)
    balances: int = 0  # account_balance rows that match the postings
    checkpoints: int = 0  # token_checkpoint rows that match the postings
    recorded: int = 0  # recorded journal heads the chain still holds

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def broken_at(self) -> int | None:
        return self.problems[0].seq if self.problems else None

    @property
    def reason(self) -> str:
        return self.problems[0].detail if self.problems else ""


def verify_chain(session: Session, *, token_asset: str | None = None, recorded: Iterable[RecordedHead] = (),
                 batch: int = 2000) -> VerifyReport:
    """Check the journal and everything derived from it; name the first difference.

    Walks the entries in order, in batches: each entry's link and hash, that its postings
    balance, that no bounded account goes below zero; and recomputes from the postings every
    row :func:`append_entry` writes, comparing them both ways with the tables (a wrong value,
    a missing row and an extra row are each a difference): ``token_checkpoint`` (for every
    ``holder:`` account and the supply, one row at every entry that posts to it in the token
    asset, zero-sum postings included, holding the balance after that entry), the head row,
    and ``account_balance`` (every account and asset ever posted to, with its final balance).
    Then each ``recorded`` head (a proposal's snapshot, a tally result, a copy kept
    elsewhere) must still be in the chain with the same hash: a truncated or rewritten
    journal fails there even when it is consistent in itself.

    Memory: one balance per (account, asset) and one batch of entries; checkpoints stream
    from the database in entry order. ``token_asset`` is the deployment's token symbol; by
    default the asset of the ``issuance:<asset>`` account. Run it in one snapshot of the
    database (REPEATABLE READ on PostgreSQL; any read transaction on SQLite) while others
    write.
    """
    if token_asset is None:
        token_asset = _token_asset(session)
    audit = _Audit(session, token_asset)
    try:
        problem = audit.walk(batch)
    except MalformedValue as exc:
        problem = exc.problem
    finally:
        audit.close()
    report = VerifyReport(audit.count, audit.prev, checkpoints=audit.checkpoints_ok)
    if problem is None:
        try:
            problem = audit.compare_balances()
        except MalformedValue as exc:
            problem = exc.problem
        report.balances = audit.balances_ok
    if problem is not None:
        report.problems.append(problem)
    _check_recorded(session, recorded, report)
    return report


def _token_asset(session: Session) -> str | None:
    p = JournalPosting.__table__  # type: ignore[attr-defined]
    rows = session.execute(sa_select(p.c.asset).where(p.c.account == literal("issuance:") + p.c.asset)
                           .distinct().limit(2)).scalars().all()
    if len(rows) > 1:
        raise ValueError(f"the journal issues several assets ({', '.join(sorted(rows))}): name the token asset")
    return rows[0] if rows else None


_STREAM = {"yield_per": 5000}  # server-side cursor on PostgreSQL: a large table is never held whole


class _Audit:
    """The walk's state: the chain so far, the running balances, the checkpoint rows ahead."""

    def __init__(self, session: Session, token_asset: str | None):
        self.session, self.token_asset = session, token_asset
        self.prev, self.count = GENESIS, 0
        self.balances: dict[tuple[str, str], int] = {}
        self.checkpoints_ok = self.balances_ok = 0
        c = TokenCheckpoint.__table__  # type: ignore[attr-defined]
        # Read in entry order so that it merges with the walk: the database sorts, spilling to
        # disk if it must, and the rows stream. Within one sequence the order is the
        # collation's, which differs between databases: each sequence's rows are compared as a set.
        self._result = session.execute(sa_select(c.c.seq, c.c.account, _raw(c.c.balance)).order_by(c.c.seq),
                                       execution_options=_STREAM)
        self._rows = iter(self._result)
        self._next = next(self._rows, None)

    def close(self) -> None:
        self._result.close()

    def walk(self, batch: int) -> Problem | None:
        e, p = JournalEntry.__table__, JournalPosting.__table__  # type: ignore[attr-defined]
        h = head(self.session)
        while True:
            entries = self.session.execute(sa_select(e).where(e.c.seq > self.count).order_by(e.c.seq)
                                           .limit(batch)).all()
            if not entries:
                break
            legs: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
            for seq, account, asset, amount in self.session.execute(
                    sa_select(p.c.entry_seq, p.c.account, p.c.asset, _raw(p.c.amount))
                    .where(p.c.entry_seq >= entries[0].seq, p.c.entry_seq <= entries[-1].seq).order_by(p.c.id)):
                legs[seq].append((account, asset, _stored(amount, f"journal_posting (entry {seq}, {account})")))
            for entry in entries:
                problem = self._entry(entry, legs[entry.seq])
                if problem is not None:
                    return problem
        if h.seq != self.count or h.hash != self.prev:
            return Problem("journal_head", f"expected seq {self.count} with hash {self.prev} (the last entry), "
                           f"found seq {h.seq} with hash {h.hash}", self.count + 1 if h.seq > self.count else h.seq)
        if self._next is not None:
            return self._stray(f"the journal ends at entry {self.count}")
        return None

    def _entry(self, entry, legs: list[tuple[str, str, int]]) -> Problem | None:
        seq = self.count + 1
        where = f"entry {seq}"
        if entry.seq != seq:
            return Problem(where, "is missing", seq)
        if entry.prev_hash != self.prev:
            return Problem(where, f"its previous-hash link does not match entry {seq - 1}", seq)
        digest = entry_hash(seq, entry.kind, entry.reference, entry.created_at, entry.memo, entry.prev_hash, legs)
        if digest != entry.hash:
            return Problem(where, "its contents do not match its hash (an entry or a posting was changed)", seq)
        sums: dict[str, int] = defaultdict(int)
        deltas: dict[tuple[str, str], int] = defaultdict(int)
        for account, asset, amount in legs:
            sums[asset] += amount
            deltas[(account, asset)] += amount
        if any(sums.values()):
            return Problem(where, "its postings do not balance", seq)
        # what append_entry wrote for this entry: a new balance for every (account, asset)
        # posted to, and a checkpoint for each in the token asset, even when its postings net zero
        expected: dict[str, int] = {}
        for (account, asset), delta in deltas.items():
            after = self.balances.get((account, asset), 0) + delta
            self.balances[(account, asset)] = after
            if after < 0 and not may_go_negative(account):
                return Problem(where, f"{account} goes negative in {asset}", seq)
            if asset == self.token_asset:
                if account.startswith("holder:"):
                    expected[account.removeprefix("holder:")] = after
                elif account.startswith("issuance:"):
                    expected[SUPPLY] = -after
        self.prev, self.count = entry.hash, seq
        return self._checkpoints(seq, expected)

    def _group(self) -> tuple[int, dict[str, int]]:
        """The table's rows at its next sequence (as many as one entry posts to, unless forged)."""
        assert self._next is not None
        seq, found = self._next.seq, {}
        while self._next is not None and self._next.seq == seq:
            found[self._next.account] = _stored(self._next[2], f"token_checkpoint (account {self._next.account}, "
                                                f"seq {seq})")
            self._next = next(self._rows, None)
        return seq, found

    def _stray(self, why: str) -> Problem:
        seq, found = self._group()
        account = min(found)
        return _row_problem("token_checkpoint", f"account {account}, seq {seq}", None, found[account], seq, why)

    def _checkpoints(self, seq: int, expected: dict[str, int]) -> Problem | None:
        if self._next is not None and self._next.seq < seq:  # every earlier entry took its own rows
            return self._stray(f"the journal has no entry {self._next.seq}")
        found = self._group()[1] if self._next is not None and self._next.seq == seq else {}
        first = _first_difference(expected, found)
        if first is not None:
            account, want, have = first
            return _row_problem("token_checkpoint", f"account {account}, seq {seq}", want, have, seq,
                                f"entry {seq} changes no token balance of {account}")
        self.checkpoints_ok += len(found)
        return None

    def compare_balances(self) -> Problem | None:
        """``account_balance`` against the final balances, both ways; the smallest key first."""
        b = AccountBalance.__table__  # type: ignore[attr-defined]
        first: tuple[tuple[str, str], int | None, int | None] | None = None
        for account, asset, raw in self.session.execute(sa_select(b.c.account, b.c.asset, _raw(b.c.balance)),
                                                        execution_options=_STREAM):
            found = _stored(raw, f"account_balance (account {account}, asset {asset})")
            want = self.balances.pop((account, asset), None)
            if want == found:
                self.balances_ok += 1
            elif first is None or (account, asset) < first[0]:
                first = ((account, asset), want, found)
        for key, want in self.balances.items():  # left over: no row
            if first is None or key < first[0]:
                first = (key, want, None)
        if first is None:
            return None
        (account, asset), want, found = first
        return _row_problem("account_balance", f"account {account}, asset {asset}", want, found, None,
                            f"no posting to {account} in {asset}")


class MalformedValue(Exception):
    """A derived row holds something that is not an integer (written around the service: on
    SQLite, arithmetic in SQL turns the stored digits into a float's text)."""

    def __init__(self, where: str, value: object):
        super().__init__(f"{where}: malformed value {value!r}, not an integer")
        self.problem = Problem(where, f"malformed value {value!r}: not an integer (changed outside the service)", None)


def _raw(column):
    """The column as stored, not through its type (which would fail on a malformed value)."""
    return type_coerce(column, String)


def _stored(raw: object, where: str) -> int:
    text = str(raw).strip()
    if isinstance(raw, int | Decimal) or _INTEGER.fullmatch(text):
        try:
            value = Decimal(text)
        except ArithmeticError:
            raise MalformedValue(where, raw) from None
        if value == value.to_integral_value():
            return int(value)
    raise MalformedValue(where, raw)


_INTEGER = re.compile(r"-?[0-9]+(\.0+)?")  # PostgreSQL's numeric may print a zero scale


def _first_difference(expected: dict[str, int], found: dict[str, int]) -> tuple[str, int | None, int | None] | None:
    keys = [k for k in expected.keys() | found.keys() if expected.get(k) != found.get(k)]
    if not keys:
        return None
    k = min(keys)
    return k, expected.get(k), found.get(k)


def _row_problem(table: str, key: str, want: int | None, found: int | None, seq: int | None,
                 why_none: str) -> Problem:
    if found is None:
        detail = f"row missing: expected balance {want}, found no row"
    elif want is None:
        detail = f"extra row: expected no row ({why_none}), found balance {found}"
    else:
        detail = f"wrong balance: expected {want}, found {found}"
    return Problem(f"{table} ({key})", detail, seq)


def _chunks(items: Iterable[RecordedHead], size: int) -> Iterator[list[RecordedHead]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _check_recorded(session: Session, recorded: Iterable[RecordedHead], report: VerifyReport) -> None:
    """Each recorded head must be an entry of the chain with the same hash; reports the first
    that is not of each kind, with how many of that kind are not."""
    e = JournalEntry.__table__  # type: ignore[attr-defined]
    first: dict[str, Problem] = {}
    bad: dict[str, int] = defaultdict(int)
    for chunk in _chunks(recorded, 500):
        wanted = sorted({r.seq for r in chunk if r.seq > 0})
        hashes = dict(session.execute(sa_select(e.c.seq, e.c.hash).where(e.c.seq.in_(wanted))).all()) \
            if wanted else {}
        for r in chunk:
            found = GENESIS if r.seq == 0 else hashes.get(r.seq)
            if found == r.hash:
                report.recorded += 1
                continue
            bad[r.kind] += 1
            if r.kind in first:
                continue
            want = f"expected entry {r.seq} with hash {r.hash}, found "
            if found is None:
                last = session.execute(sa_select(func.max(e.c.seq))).scalar() or 0
                detail = want + f"no entry {r.seq}: the journal ends at entry {last} (truncated?)"
            else:
                detail = want + f"hash {found} (the journal was rewritten)"
            first[r.kind] = Problem(r.name, detail, r.seq)
    for kind, problem in first.items():
        if bad[kind] > 1:
            problem = Problem(problem.where, f"{problem.detail}; {bad[kind]} {kind} records disagree in all",
                              problem.seq)
        report.problems.append(problem)
