"""Crash points for fault tests: ``DAO_FAILPOINT=<name>`` makes the process kill itself with
SIGKILL when it reaches ``failpoint(<name>)`` — a real kill -9 at an exact step, so a test can
prove what a restart finds. Unset (always, outside such tests), a failpoint does nothing."""

from __future__ import annotations

import os
import signal


def failpoint(name: str) -> None:
    if os.environ.get("DAO_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
