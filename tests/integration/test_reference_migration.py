"""Migration 0003_references on a database with history: deposits journaled before it get their
record (one per reference, the first when the old race journaled one twice), purchase prices
survive the change of column type, and the migration goes down and up again."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session, select

from alembic import command
from governance.db import create_engine
from governance.migrations import alembic_config, upgrade
from treasury_exec import journal
from treasury_exec.journal import GENESIS, Posting
from treasury_exec.models import Deposit, JournalHead, Purchase


def deposit_entry(session: Session, reference: str, bucket: str, amount: int, now: int) -> None:
    journal.append_entry(session, kind="deposit", reference=reference, now=now, token_asset="AST",
                         postings=[Posting("external:deposits:ETH", "ETH", -amount),
                                   Posting(f"bucket:{bucket}", "ETH", amount)])


def test_deposits_journaled_before_get_one_record_per_reference(database_url: str) -> None:
    command.downgrade(alembic_config(database_url), "0002_domains")
    engine = create_engine(database_url, pool=False)
    try:
        with Session(engine) as s:
            s.add(JournalHead(id=1, seq=0, hash=GENESIS))
            s.flush()
            deposit_entry(s, "d1", "community", 5, 100)
            deposit_entry(s, "d2", "compute", 3, 101)
            deposit_entry(s, "d1", "community", 5, 102)  # what the old race left: d1 journaled twice
            deposit_entry(s, "d3", "community", 2, 103)
            price = "100000" if engine.dialect.name == "sqlite" else 100_000
            s.execute(text("INSERT INTO purchase (reference, buyer, payment, tokens, price, price_version, "
                           "allocation_version, split, journal_seq, created_at) VALUES ('p', 'b', :pay, :tok, "
                           ":price, 1, 2, '{}', 5, 104)"),
                      {"pay": price, "tok": price, "price": 100_000})
            s.commit()
        upgrade(database_url)
        with Session(engine) as s:
            rows = s.exec(select(Deposit).order_by(Deposit.journal_seq)).all()
            assert [(d.reference, d.bucket, d.asset, d.amount, d.balance, d.journal_seq, d.created_at)
                    for d in rows] == [("d1", "community", "ETH", 5, 5, 1, 100), ("d2", "compute", "ETH", 3, 3, 2, 101),
                                       ("d3", "community", "ETH", 2, 12, 4, 103)]
            assert s.exec(select(Purchase)).one().price == 100_000
        command.downgrade(alembic_config(database_url), "0002_domains")
        upgrade(database_url)
        with Session(engine) as s:
            assert len(s.exec(select(Deposit)).all()) == 3
            assert s.exec(select(Purchase)).one().price == 100_000
    finally:
        engine.dispose()
