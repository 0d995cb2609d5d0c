"""``dao ledger verify`` against a real journal built through the service (purchases, a
transfer, a transfer to oneself, a buyback, a proposal and its tally), then tampered with
through SQL the way someone with database access would: every row it derives from the
postings (balances, token checkpoints, the head) and the journal heads published before.
The voting weight and the quorum base are read from exactly these rows. SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, insert, select, text, update
from sqlmodel import Session

from governance.cli import main
from governance.db import session_scope
from governance.ports import Snapshot
from governance.runtime import Runtime
from proposals.service import journal_point
from tests.support import PRICE, TOKEN, Gov, Wallet
from treasury_exec import service
from treasury_exec.journal import SUPPLY, verify_chain
from treasury_exec.models import AccountBalance, JournalEntry, JournalHead, JournalPosting, TokenCheckpoint

CP = TokenCheckpoint.__table__
BAL = AccountBalance.__table__


@pytest.fixture
def settings_overrides() -> dict:
    return {"voting_delay": 60, "voting_period": 600, "timelock": 300, "grace_period": 600,
            "proposal_threshold": TOKEN, "price_quorum_bps": 1000, "price_approval_bps": 5000}


@dataclass
class Book:
    gov: Gov
    runtime: Runtime
    a: Wallet
    b: Wallet
    c: Wallet
    proposal: str
    published: dict  # GET /v1/treasury's ledger_head once the book was written


def hash_of(runtime: Runtime, seq: int) -> str:
    with Session(runtime.engine) as s:
        return s.get(JournalEntry, seq).hash


@pytest.fixture
def book(client, runtime, operator_key) -> Book:
    """Entries 1-7: purchases by a, b, c; a pays b 30; c pays itself 5 (nets zero, still a
    checkpoint); b sells 10 back; then a's proposal (snapshot at 6), tallied, and c buys once more."""
    gov = Gov(client, runtime, operator_key)
    a, b, c = Wallet.evm(), Wallet.solana(), Wallet.evm()
    gov.buy(a, 100)  # 1
    gov.buy(b, 50)  # 2
    gov.buy(c, 20)  # 3
    with session_scope(runtime.engine) as s:
        service.transfer_tokens(s, runtime, sender=a.address, recipient=b.address, amount=30 * TOKEN,
                                reference="a-pays-b")  # 4
        service.transfer_tokens(s, runtime, sender=c.address, recipient=c.address, amount=5 * TOKEN,
                                reference="c-pays-c")  # 5
    r = client.post("/v1/treasury/buybacks", headers={"Authorization": f"Bearer {operator_key}"},
                    json={"seller": b.address, "amount": 10 * PRICE, "tokens": str(10 * TOKEN), "reference": "bb"})
    assert r.status_code == 201, r.text  # 6
    pid = gov.proposal(a, "PriceChange", price=110_000)
    gov.advance(60)
    assert gov.vote(a, pid, 1).status_code == 201
    gov.advance(600)
    assert gov.tick()["finalize"] == 1
    gov.buy(c, 1)  # 7
    published = client.get("/v1/treasury").json()["ledger_head"]
    return Book(gov, runtime, a, b, c, pid, published)


def tamper(runtime: Runtime, *statements) -> None:
    with runtime.engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)


def checkpoint(runtime: Runtime, account: str, seq: int) -> int:
    with Session(runtime.engine) as s:
        return s.execute(select(CP.c.balance).where(CP.c.account == account, CP.c.seq == seq)).scalar_one()


def cli(monkeypatch, runtime: Runtime, *args: str):
    monkeypatch.setenv("DAO_DATABASE_URL", runtime.settings.database_url)
    return CliRunner().invoke(main, ["ledger", "verify", *args])


def verify(runtime: Runtime):
    with Session(runtime.engine) as s:
        return verify_chain(s, token_asset=runtime.settings.token_symbol)


def test_honest_journal_verifies_with_every_derived_row_and_recorded_head(book, monkeypatch) -> None:
    report = verify(book.runtime)
    assert report.ok, report.problems
    assert report.entries == 7
    # checkpoints: a 1,4; b 2,4,6; c 3,5,7; supply 1,2,3,6,7
    assert report.checkpoints == 2 + 3 + 3 + 5
    out = cli(monkeypatch, book.runtime)
    assert out.exit_code == 0, out.output
    assert f"journal ok: 7 entries, head 7:{hash_of(book.runtime, 7)}" in out.output
    assert "2 recorded heads are in the chain" in out.output  # the proposal's snapshot and its result


def test_journal_head_is_published_with_the_treasury_each_snapshot_and_each_result(book) -> None:
    h6, h7 = hash_of(book.runtime, 6), hash_of(book.runtime, 7)
    state = book.gov.client.get("/v1/treasury").json()
    assert state["ledger_head"] == {"seq": 7, "hash": h7} and state["ledger_seq"] == 7
    p = book.gov.get(book.proposal)
    assert p["snapshot"]["ref"] == 6
    assert p["snapshot"]["ledger_head"] == {"seq": 6, "hash": h6}
    assert p["result"]["ledger_head"] == {"seq": 6, "hash": h6}  # tallied before entry 7
    export = book.gov.client.get(f"/v1/proposals/{book.proposal}/export").json()
    assert export["snapshot"]["ledger_head"] == {"seq": 6, "hash": h6}
    assert export["result"]["ledger_head"] == {"seq": 6, "hash": h6}


def test_snapshot_of_another_power_source_records_the_head_now(book) -> None:
    with Session(book.runtime.engine) as s:
        point = journal_point(s, book.runtime, Snapshot(source="holders-file", ref=1, total=0))
    assert (point.seq, point.hash) == (7, hash_of(book.runtime, 7))


FORGED = Wallet.evm().address

# (what is done through SQL, the difference verify must name). Each reported "journal ok" before.
TAMPERS: dict[str, tuple[Callable[[Book], list], Callable[[Book], str]]] = {
    "inserted_token_checkpoint": (
        lambda k: [insert(CP).values(account=FORGED, seq=6, balance=1000 * TOKEN)],
        lambda k: f"token_checkpoint (account {FORGED}, seq 6): extra row: expected no row (entry 6 changes no "
                  f"token balance of {FORGED}), found balance {1000 * TOKEN}"),
    "raised_token_checkpoint": (
        lambda k: [update(CP).where(CP.c.account == k.a.address, CP.c.seq == 4).values(balance=900 * TOKEN)],
        lambda k: f"token_checkpoint (account {k.a.address}, seq 4): wrong balance: expected {70 * TOKEN}, "
                  f"found {900 * TOKEN}"),
    "raised_supply_checkpoint": (
        lambda k: [update(CP).where(CP.c.account == SUPPLY, CP.c.seq == 6).values(balance=10_000 * TOKEN)],
        lambda k: f"token_checkpoint (account {SUPPLY}, seq 6): wrong balance: expected {160 * TOKEN}, "
                  f"found {10_000 * TOKEN}"),
    "deleted_holder_checkpoints": (
        lambda k: [delete(CP).where(CP.c.account == k.b.address)],
        lambda k: f"token_checkpoint (account {k.b.address}, seq 2): row missing: expected balance {50 * TOKEN}, "
                  "found no row"),
    "deleted_zero_sum_checkpoint": (
        lambda k: [delete(CP).where(CP.c.account == k.c.address, CP.c.seq == 5)],
        lambda k: f"token_checkpoint (account {k.c.address}, seq 5): row missing: expected balance {20 * TOKEN}, "
                  "found no row"),
    "deleted_balance_row": (
        lambda k: [delete(BAL).where(BAL.c.account == f"holder:{k.b.address}")],
        lambda k: f"account_balance (account holder:{k.b.address}, asset AST): row missing: expected balance "
                  f"{70 * TOKEN}, found no row"),
    "extra_balance_row": (
        lambda k: [insert(BAL).values(account=f"holder:{FORGED}", asset="AST", balance=5 * TOKEN)],
        lambda k: f"account_balance (account holder:{FORGED}, asset AST): extra row: expected no row (no posting "
                  f"to holder:{FORGED} in AST), found balance {5 * TOKEN}"),
    "truncated_journal_head_adjusted": (
        lambda k: [delete(JournalPosting).where(JournalPosting.entry_seq == 7),
                   delete(JournalEntry).where(JournalEntry.seq == 7),
                   update(JournalHead).values(seq=6, hash=hash_of(k.runtime, 6))],
        lambda k: f"token_checkpoint (account {SUPPLY}, seq 7): extra row: expected no row (the journal ends at "
                  f"entry 6), found balance {161 * TOKEN}"),
}


@pytest.mark.parametrize("case", list(TAMPERS))
def test_tampered_derived_row_fails_verify_naming_it(book, monkeypatch, case: str) -> None:
    change, named = TAMPERS[case]
    tamper(book.runtime, *change(book))
    report = verify(book.runtime)
    assert not report.ok
    assert str(report.problems[0]) == named(book)
    out = cli(monkeypatch, book.runtime)
    assert out.exit_code == 1
    assert f"journal BROKEN at {named(book)}" in out.output


@pytest.mark.parametrize("table", ["account_balance", "token_checkpoint", "journal_posting"])
def test_arithmetic_in_sql_on_a_stored_number_fails_verify_naming_the_row(book, monkeypatch, table: str) -> None:
    # on SQLite the digits are text, and SQL arithmetic on them stores a float's text ("7.0e+19"),
    # which is not an integer; PostgreSQL keeps it exact, and the value is then simply wrong
    column, key = {"account_balance": ("balance", "account"), "token_checkpoint": ("balance", "account"),
                   "journal_posting": ("amount", "account")}[table]
    account = f"holder:{book.b.address}" if table != "token_checkpoint" else book.b.address
    tamper(book.runtime, text(f"UPDATE {table} SET {column} = {column} + 1 WHERE {key} = :a").bindparams(a=account))
    report = verify(book.runtime)
    assert not report.ok
    # named by its row (malformed, SQLite) or found wrong (PostgreSQL); a posting also breaks its entry's hash
    assert report.problems[0].where.startswith((table, "entry ")), report.problems
    out = cli(monkeypatch, book.runtime)
    assert out.exit_code == 1 and isinstance(out.exception, SystemExit), out.output
    assert "journal BROKEN at" in out.output


def truncate_consistently(runtime: Runtime, keep: int) -> None:
    """Cut the journal after entry ``keep`` and rebuild every derived row to match: the chain
    is then consistent in itself, and only a head recorded or published before shows the cut."""
    with Session(runtime.engine) as s:
        sums: dict[tuple[str, str], int] = defaultdict(int)
        for p in s.exec(select(JournalPosting).where(JournalPosting.entry_seq <= keep)).scalars():
            sums[(p.account, p.asset)] += p.amount
    tamper(runtime,
           delete(JournalPosting).where(JournalPosting.entry_seq > keep),
           delete(JournalEntry).where(JournalEntry.seq > keep),
           delete(CP).where(CP.c.seq > keep),
           delete(BAL),
           *[insert(BAL).values(account=a, asset=x, balance=v) for (a, x), v in sums.items()],
           update(JournalHead).values(seq=keep, hash=hash_of(runtime, keep)))


def test_truncated_journal_fails_verify_naming_the_proposal_and_result_that_recorded_its_head(
        book, monkeypatch) -> None:
    h6 = hash_of(book.runtime, 6)
    truncate_consistently(book.runtime, 5)
    assert verify(book.runtime).ok  # consistent in itself: the derived rows cannot tell
    out = cli(monkeypatch, book.runtime)
    assert out.exit_code == 1
    assert (f"journal BROKEN at proposal {book.proposal} (journal head at its snapshot): expected entry 6 with "
            f"hash {h6}, found no entry 6: the journal ends at entry 5 (truncated?)") in out.output
    assert f"journal BROKEN at result of proposal {book.proposal} (journal head when tallied)" in out.output


def test_rewritten_journal_fails_verify_against_heads_recorded_and_published_before(book, monkeypatch) -> None:
    h6, published = hash_of(book.runtime, 6), book.published
    truncate_consistently(book.runtime, 5)
    book.gov.buy(book.c, 3)  # a new entry 6, through the service: a rewritten history
    book.gov.buy(book.c, 4)  # and 7
    new6 = hash_of(book.runtime, 6)
    assert verify(book.runtime).ok
    out = cli(monkeypatch, book.runtime, "--expect", f"{published['seq']}:{published['hash']}")
    assert out.exit_code == 1
    assert (f"journal BROKEN at proposal {book.proposal} (journal head at its snapshot): expected entry 6 with "
            f"hash {h6}, found hash {new6} (the journal was rewritten)") in out.output
    assert f"journal BROKEN at result of proposal {book.proposal}" in out.output
    assert (f"journal BROKEN at --expect 7:{published['hash']}: expected entry 7 with hash {published['hash']}, "
            f"found hash {hash_of(book.runtime, 7)} (the journal was rewritten)") in out.output


def test_expect_passes_for_a_head_the_chain_still_holds_and_refuses_a_malformed_one(book, monkeypatch) -> None:
    published = book.published
    ok = cli(monkeypatch, book.runtime, "--expect", f"{published['seq']}:{published['hash'].upper()}",
             "--expect", f"0:{'0' * 64}")
    assert ok.exit_code == 0, ok.output
    assert "4 recorded heads are in the chain" in ok.output
    bad = cli(monkeypatch, book.runtime, "--expect", "7-abc")
    assert bad.exit_code == 2 and "is not SEQ:HASH" in bad.output
    ahead = cli(monkeypatch, book.runtime, "--expect", f"9:{published['hash']}")
    assert ahead.exit_code == 1
    assert (f"journal BROKEN at --expect 9:{published['hash']}: expected entry 9 with hash {published['hash']}, "
            "found no entry 9: the journal ends at entry 7 (truncated?)") in ahead.output
