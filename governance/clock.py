"""Time as the service sees it: whole Unix seconds, from a clock that tests can set.

Everything that depends on time (freshness of signatures, voting windows, timelocks,
expiry) asks a :class:`Clock`, never :func:`time.time` directly, so the suite drives time
instead of sleeping. Processes started by tests share one :class:`FileClock`.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> int:
        """The current time in whole Unix seconds."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> int:
        return int(time.time())


class SettableClock:
    """A clock that stands still until told otherwise (tests)."""

    def __init__(self, start: int | None = None):
        self._now = int(time.time()) if start is None else start
        self._lock = threading.Lock()

    def now(self) -> int:
        return self._now

    def set(self, when: int) -> None:
        with self._lock:
            self._now = when

    def advance(self, seconds: int) -> int:
        with self._lock:
            self._now += seconds
            return self._now


class FileClock:
    """A settable clock shared across processes: the time is the integer in a file.

    Test-only (``DAO_TEST_CLOCK_FILE``): lets a test move time for a server or scheduler
    process it started. Reads the file on every call; a missing file means system time.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def now(self) -> int:
        try:
            return int(self.path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return int(time.time())

    def set(self, when: int) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(str(when))
        tmp.replace(self.path)  # atomic: a reader never sees a half-written number

    def advance(self, seconds: int) -> int:
        when = self.now() + seconds
        self.set(when)
        return when
