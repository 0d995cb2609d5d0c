"""Fixtures shared by the whole suite.

Databases are real: every test that takes ``runtime`` (or anything built on it) runs once on
a fresh SQLite file and once on a fresh PostgreSQL database. PostgreSQL tests skip on a
machine without the server, unless ``DAO_REQUIRE_POSTGRES=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from governance.bootstrap import bootstrap
from governance.clock import SettableClock
from governance.db import create_engine
from governance.migrations import upgrade
from governance.runtime import Runtime
from governance.settings import load_settings
from tests.support import START, make_key

POSTGRES_ADMIN_URL = os.environ.get("DAO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("DAO_REQUIRE_POSTGRES") == "1"


def _postgres_reachable() -> str | None:
    try:
        engine = create_engine(POSTGRES_ADMIN_URL, pool=False)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return str(exc).splitlines()[0]


class PostgresFactory:
    """Creates one database per test from a migrated template (CREATE DATABASE … TEMPLATE)."""

    def __init__(self) -> None:
        self.prefix = f"dao_t{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.template = f"{self.prefix}_tpl"
        self.admin = create_engine(POSTGRES_ADMIN_URL, pool=False).execution_options(
            isolation_level="AUTOCOMMIT")
        self.made: list[str] = []

    def _url(self, name: str) -> str:
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
        return f"{base}/{name}"

    def prepare(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.template}"'))
        self.made.append(self.template)
        upgrade(self._url(self.template))

    def new(self) -> str:
        name = f"{self.prefix}_{len(self.made)}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        self.made.append(name)
        return self._url(name)

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        for name in reversed(self.made):
            with self.admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_factory() -> Iterator[PostgresFactory | None]:
    problem = _postgres_reachable()
    if problem:
        if REQUIRE_POSTGRES:
            pytest.fail(f"DAO_REQUIRE_POSTGRES=1 but PostgreSQL is unreachable: {problem}")
        yield None
        return
    factory = PostgresFactory()
    factory.prepare()
    yield factory
    factory.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A fresh, migrated database: one SQLite file, or one PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "dao.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    factory: PostgresFactory | None = request.getfixturevalue("postgres_factory")
    if factory is None:
        pytest.skip("PostgreSQL not reachable (set DAO_REQUIRE_POSTGRES=1 to make this a failure)")
    url = factory.new()
    yield url
    factory.drop(url)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(START)


@pytest.fixture
def settings_overrides() -> dict:
    """Override in a test module to change settings for its runtime."""
    return {}


@pytest.fixture
def runtime(database_url: str, clock: SettableClock, settings_overrides: dict) -> Iterator[Runtime]:
    """A bootstrapped deployment (salt, default parameters) on a fresh database."""
    from governance.setup import create_deployment

    # rate limiting is tested on its own; elsewhere a test's burst of requests is not abuse
    overrides = {"chain_id": 31337, "rate_limit_per_minute": 0, **settings_overrides}
    settings = load_settings(env={}, database_url=database_url, **overrides)
    rt = bootstrap(settings, clock=clock)
    create_deployment(rt)
    yield rt
    rt.close()


@pytest.fixture
def client(runtime: Runtime):
    from litestar.testing import TestClient

    from governance.app import create_app

    with TestClient(app=create_app(runtime=runtime)) as tc:
        yield tc


@pytest.fixture
def gov(client, runtime: Runtime, operator_key: str):
    """The test's deployment driven over HTTP (tests.support.Gov), with an operator key."""
    from tests.support import Gov

    return Gov(client, runtime, operator_key)


@pytest.fixture
def operator_key(runtime: Runtime) -> str:
    return make_key(runtime, "operator")


@pytest.fixture
def executor_key(runtime: Runtime) -> str:
    return make_key(runtime, "executor")


@pytest.fixture
def guardian_key(runtime: Runtime) -> str:
    return make_key(runtime, "guardian")
