"""Database engines and sessions.

SQLite (WAL) is the embedded default; PostgreSQL (psycopg 3) is the production database.
The schema comes only from the alembic migrations (``dao db upgrade``); nothing here creates
tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from governance.errors import ServiceUnavailable

# The largest integer either database stores (SQLite INTEGER, PostgreSQL BIGINT): ids, sequence
# numbers and cursors above it are request errors, not values a driver can bind.
BIGINT_MAX = 2**63 - 1


def normalize_url(url: str) -> str:
    """Let operators write ``postgresql://`` and still get the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(url_or_engine: str | Engine) -> bool:
    url = url_or_engine.url if isinstance(url_or_engine, Engine) else make_url(normalize_url(url_or_engine))
    return url.get_backend_name() == "sqlite"


def create_engine(url: str, *, pool: bool = True, timeout: int = 30) -> Engine:
    """An engine for ``url``: SQLite gets WAL, foreign keys and a busy timeout.

    ``timeout`` (seconds) bounds how long a unit of work waits for SQLite's write lock or for a
    new PostgreSQL connection; past it the error maps to 503 (see :func:`unavailable`).
    """
    url = normalize_url(url)
    if is_sqlite(url):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa_create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": timeout},
            poolclass=None if pool else NullPool,
        )
        _configure_sqlite(engine, timeout)
        return engine
    # prepare_threshold=None: no server-side prepared statements, so every statement is planned
    # for its own parameters. psycopg prepares a statement on its sixth run and PostgreSQL then
    # settles on a generic plan; for the vote writer's "this proposal's ballots by these voters"
    # on a ballot table that grew since it was last analyzed, that plan reads every ballot of the
    # proposal and filters (measured: 4 ms a batch at 3,000 ballots, growing with each vote;
    # PostgreSQL ingestion 625 -> 1,500 votes/s without it). It also keeps PgBouncer's
    # transaction pooling usable.
    kwargs: dict = {"pool_pre_ping": True, "connect_args": {"connect_timeout": timeout, "prepare_threshold": None}}
    if pool:
        kwargs |= {"pool_size": 10, "max_overflow": 20}
    else:
        kwargs["poolclass"] = NullPool
    return sa_create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine, timeout: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - exercised by every sqlite test
        # The sqlite3 module opens transactions lazily and never for SELECT; take control so
        # that BEGIN IMMEDIATE can serialize writers (see write_lock) instead of failing late.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # pragma: no cover
        # A writing unit of work takes the write lock up front: SQLite allows one writer, and
        # a deferred transaction that reads then writes can fail with SQLITE_BUSY mid-way.
        # Readers stay deferred so that, under WAL, they never wait for a writer.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def writer(engine: Engine) -> Engine:
    """The same engine, marked so that SQLite transactions begin IMMEDIATE (take the lock)."""
    return engine.execution_options(sqlite_begin="IMMEDIATE") if is_sqlite(engine) else engine


@contextmanager
def session_scope(engine: Engine, *, write: bool = True) -> Iterator[Session]:
    """One unit of work: commit when the block ends normally, roll back on any error.

    Database outages surface as :class:`ServiceUnavailable` (503), never as a 500.
    """
    bind = writer(engine) if write else engine
    with Session(bind, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except (OperationalError, DBAPIError) as exc:
            session.rollback()
            mapped = unavailable(exc)
            if mapped is not None:
                raise mapped from exc
            raise
        except BaseException:
            session.rollback()
            raise


def unavailable(exc: DBAPIError) -> ServiceUnavailable | None:
    """The 503 for a database error that means "not now" (unreachable, or SQLite's write lock
    held past the timeout); None for any other error, which is a bug (500)."""
    text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    if "database is locked" in text:
        return ServiceUnavailable("the database is busy: another writer held its lock past the timeout; "
                                  "nothing was stored", code="database_unavailable")
    if getattr(exc, "connection_invalidated", False) or any(
        s in text
        for s in ("connection refused", "could not connect", "server closed", "terminating connection",
                  "connection is closed", "unable to open database", "connection timeout", "connection failed")
    ):
        return ServiceUnavailable("the database cannot be reached; nothing was stored", code="database_unavailable")
    return None
