"""Building benchmark deployments: a fresh database, holders, a proposal, bulk ballots."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

from sqlalchemy import text

from bench.signer import Signer
from governance.bootstrap import bootstrap
from governance.clock import Clock
from governance.db import create_engine, is_sqlite, session_scope
from governance.migrations import upgrade
from governance.runtime import Runtime
from governance.settings import load_settings
from governance.setup import create_deployment
from governance.signatures import Envelope
from proposals.service import submit_proposal
from treasury_exec.journal import Posting, append_entry

WORK = Path(__file__).parent / ".work"
POSTGRES_ADMIN_URL = os.environ.get("DAO_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TOKEN = 10**18
# Rate limiting stays on, as by default, so its cost is measured; but every request comes from
# one address (the harness), so the limit is one the harness cannot reach.
BENCH_SETTINGS = {"chain_id": 1, "voting_delay": 0, "voting_period": 3600, "rate_limit_per_minute": 10**9,
                  "rate_limit_burst": 10**6, "max_clock_skew": 3600}


def fresh_database(kind: str, name: str) -> str:
    """An empty database: a new SQLite file under bench/.work, or a new PostgreSQL database."""
    if kind == "sqlite":
        WORK.mkdir(exist_ok=True)
        path = WORK / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    db = f"dao_bench_{name}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(POSTGRES_ADMIN_URL, pool=False).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db}"'))
    admin.dispose()
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + db


def drop_database(url: str) -> None:
    if is_sqlite(url):
        return
    admin = create_engine(POSTGRES_ADMIN_URL, pool=False).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def settings_env(url: str, **extra: object) -> dict[str, str]:
    """The DAO_* environment a server process needs for this deployment."""
    env = {f"DAO_{k.upper()}": str(v) for k, v in {**BENCH_SETTINGS, **extra}.items()}
    return env | {"DAO_DATABASE_URL": url}


def deploy(url: str, clock: Clock | None = None, **extra: object) -> Runtime:
    upgrade(url)
    rt = bootstrap(load_settings(env={}, database_url=url, **{**BENCH_SETTINGS, **extra}), clock=clock)
    create_deployment(rt)
    return rt


def mint(rt: Runtime, holders: list[tuple[str, int]]) -> None:
    """Give each holder tokens in one journal entry (a bulk mint, as a token migration would).
    Balances and checkpoints are written exactly as purchases write them."""
    symbol = rt.settings.token_symbol
    postings = [Posting(f"issuance:{symbol}", symbol, -sum(t for _, t in holders))]
    postings += [Posting(f"holder:{a}", symbol, t) for a, t in holders]
    with session_scope(rt.engine) as session:
        append_entry(session, kind="mint", reference=f"bench-{uuid.uuid4().hex[:8]}", postings=postings,
                     now=rt.clock.now(), token_asset=symbol, memo="benchmark holders")


def propose(rt: Runtime, proposer: Signer, title: str = "bench: new price") -> str:
    now = rt.clock.now()
    msg = {"proposer": proposer.address, "title": title, "description": "benchmark", "price": "110000",
           "timestamp": now}
    env = Envelope(**proposer.envelope(rt.encoder, "PriceChange", msg))
    with session_scope(rt.engine) as session:
        proposal, _ = submit_proposal(session, rt, env)
        return proposal.id


def bulk_ballots(rt: Runtime, proposal_id: str, ballots: int, voters: int, at: int) -> dict[str, int]:
    """``ballots`` ballot rows from ``voters`` voters (the first ballots − voters voters changed
    their vote once; the older ballot is superseded), plus the matching running totals.

    Rows are written in bulk, bypassing signature checks: finalizing never re-verifies
    signatures (``dao verify`` does), it re-counts the log. Returns the expected totals."""
    assert voters <= ballots <= 2 * voters
    changed = ballots - voters
    message = json.dumps({"choice": 1, "proposal": proposal_id, "reason": "", "timestamp": at,
                          "voter": "0x" + "ab" * 20}, separators=(",", ":"))
    signature = "0x" + "11" * 65
    totals = {"for": 0, "against": 0, "abstain": 0}
    names = {0: "against", 1: "for", 2: "abstain"}

    def rows():
        seq = 0
        for v in range(voters):
            voter = "0x" + hashlib.sha256(b"voter" + v.to_bytes(4, "big")).hexdigest()[:40]
            weight = TOKEN * (1 + v % 997)
            versions = 2 if v < changed else 1
            for k in range(versions):
                seq += 1
                choice = (v + k) % 3
                vid = "0x" + hashlib.sha256(b"ballot" + seq.to_bytes(4, "big")).hexdigest()
                last = k == versions - 1
                if last:
                    totals[names[choice]] += weight
                yield (vid, proposal_id, seq, voter, choice, str(weight), "", at + k, at + k, "eip712",
                       signature, message, not last)

    columns = ("id, proposal_id, seq, voter, choice, weight, reason, signed_at, accepted_at, scheme, signature, "
               "message, superseded")
    engine = rt.engine
    with engine.begin() as conn:
        cur = conn.connection.dbapi_connection.cursor()
        if is_sqlite(engine):
            stmt = f"INSERT INTO ballot ({columns}) VALUES ({', '.join(['?'] * 13)})"
            batch: list[tuple] = []
            for row in rows():
                batch.append(row)
                if len(batch) == 20_000:
                    cur.executemany(stmt, batch)
                    batch.clear()
            cur.executemany(stmt, batch)
        else:
            with cur.copy(f"COPY ballot ({columns}) FROM STDIN") as copy:
                for row in rows():
                    copy.write_row(row)
        conn.execute(text(
            "INSERT INTO proposal_tally (proposal_id, for_votes, against_votes, abstain_votes, voters, last_seq) "
            "VALUES (:p, :f, :a, :b, :v, :s)"),
            {"p": proposal_id, "f": _u(engine, totals["for"]), "a": _u(engine, totals["against"]),
             "b": _u(engine, totals["abstain"]), "v": voters, "s": ballots})
    return totals | {"voters": voters}


def _u(engine, value: int):
    return str(value) if is_sqlite(engine) else value
