"""A deployment that test-started processes share: a database and a clock in a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from governance.bootstrap import bootstrap
from governance.clock import FileClock
from governance.runtime import Runtime
from governance.settings import load_settings
from governance.setup import create_deployment
from tests.conftest import START


def deployment(database_url: str, tmp_path: Path, settings: dict[str, Any]) -> tuple[Runtime, FileClock]:
    """A bootstrapped deployment at ``START`` whose clock, ``tmp_path / "clock"``, child processes
    read through ``DAO_TEST_CLOCK_FILE``."""
    clock = FileClock(tmp_path / "clock")
    clock.set(START)
    rt = bootstrap(load_settings(env={}, database_url=database_url, **settings), clock=clock)
    create_deployment(rt)
    return rt, clock
