"""The scheduler: runs every domain's jobs on an interval (apscheduler 3).

APScheduler 3 cannot share a job store between processes, so nothing is stored in it: each
process runs the same jobs, and every job claims its rows in the database so that running
it twice, or in two processes at once, has the effect of running it once.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler

from governance.bootstrap import JOBS
from governance.runtime import Runtime

log = logging.getLogger("governance.scheduler")


Job = tuple[str, Callable[[Runtime], int]]


def run_once(runtime: Runtime, jobs: list[Job] | None = None) -> dict[str, int]:
    """Run every job one time, in order; returns how many items each one moved."""
    done: dict[str, int] = {}
    for name, job in jobs if jobs is not None else JOBS:
        try:
            done[name] = int(job(runtime) or 0)
        except Exception:  # one failing job must not stop the others; it runs again next tick
            log.exception("scheduler job %s failed", name)
            done[name] = -1
    # a job may have written without counting it (a failed execution attempt is recorded):
    # views rendered before this tick may be stale
    runtime.view_cache.invalidate()
    return done


def start_background(runtime: Runtime) -> BackgroundScheduler:
    """Start the jobs in a background thread of this process (``dao serve``, ``dao scheduler``)."""
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        run_once, "interval", args=[runtime], seconds=runtime.settings.scheduler_interval,
        id="governance-tick", max_instances=1, coalesce=True, next_run_time=None,
    )
    scheduler.start()
    # first tick right away, so a restart finalizes what came due while it was down
    scheduler.modify_job("governance-tick", next_run_time=_now())
    return scheduler


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def run_forever(runtime: Runtime) -> None:
    """``dao scheduler``: run the jobs in the foreground until SIGINT/SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    scheduler = start_background(runtime)
    log.info("scheduler running every %ss", runtime.settings.scheduler_interval)
    try:
        stop.wait()
    finally:
        scheduler.shutdown(wait=True)
