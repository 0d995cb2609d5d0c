"""What the scheduler runs for the treasury: find what is due, then one unit of work per item.

The domain steps are in ``executions`` and ``transfers``; this module only finds the ids, opens
a unit of work for each (one failure holds back no other, and each holds its locks for one item
only), calls the step and counts what moved. A step that asks the chain node does so first, in a
read-only unit of work of its own (``look``), so that no lock is held while the node answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from governance.db import session_scope
from governance.failpoints import failpoint
from governance.runtime import Runtime
from treasury_exec import executions, transfers
from treasury_exec.status import ExecutionStatus as S

log = logging.getLogger("treasury_exec.jobs")

SERVICE_RUN = ("parameters", "internal")


def _each(runtime: Runtime, what: str, ids: list[Any], step: Callable[..., Any], *, now: int,
          look: Callable[..., Any] | None = None, record_failure: bool = False,
          failpoints: tuple[str, str] | None = None) -> int:
    """Run ``step(session, id)`` for each id in its own unit of work; returns how many it moved.
    With ``look``, ``look(session, id)`` runs first in a read-only unit of work (the RPC calls,
    outside any lock), and ``step`` gets what it returns instead of the id (None: nothing to
    do). A step that raises leaves nothing (its unit is rolled back) and runs again next tick;
    with ``record_failure`` its failure is recorded as a failed attempt, in a unit of work of its
    own, so that nothing retries unseen. ``failpoints``: tests' crash points before and after
    each commit."""
    done = 0
    for item in ids:
        try:
            arg = item
            if look is not None:
                with session_scope(runtime.engine, write=False) as s:
                    arg = look(s, item)
                if arg is None:
                    continue
            with session_scope(runtime.engine) as s:
                moved = step(s, arg)
                if failpoints:
                    failpoint(failpoints[0])  # tests: the step done, not committed
            if failpoints:
                failpoint(failpoints[1])  # tests: committed, before the next item
            done += bool(moved)
        except Exception as exc:
            log.exception("%s %s failed; it runs again next tick", what, item)
            if record_failure:
                _record_failure(runtime, item, now, exc)
    return done


def _record_failure(runtime: Runtime, ex_id: int, now: int, exc: Exception) -> None:
    try:
        with session_scope(runtime.engine) as s:
            executions.record_failure(s, runtime, ex_id, now, exc)
    except Exception:
        log.exception("recording the failure of execution %s failed too", ex_id)


def _find(runtime: Runtime, query: Callable[..., list[Any]], *args: Any) -> list[Any]:
    with session_scope(runtime.engine, write=False) as s:
        return query(s, *args)


def run_executions(runtime: Runtime) -> int:
    """One pass: create due executions, expire and end what can no longer run, then run,
    sign and settle; every item in its own unit of work."""
    now = runtime.clock.now()
    with session_scope(runtime.engine) as s:
        executions.create_due(s, runtime, now)
    _each(runtime, "expiring proposal", _find(runtime, executions.expirable, now),
          lambda s, pid: executions.expire(s, runtime, pid, now), now=now)
    _each(runtime, "ending execution", _find(runtime, executions.stopped),
          lambda s, ex_id: executions.end_stopped(s, runtime, ex_id, now), now=now)
    done = _each(runtime, "running execution", _find(runtime, executions.due, S.READY, SERVICE_RUN),
                 lambda s, ex_id: executions.run_internal(s, runtime, ex_id, now), now=now,
                 record_failure=True, failpoints=("before_execute_commit", "after_execute_commit"))
    # signed is not done yet: not counted
    _each(runtime, "signing execution", _find(runtime, executions.due, S.READY, ("chain",)),
          lambda s, prep: transfers.sign_transfer(s, runtime, prep, now), now=now,
          look=lambda s, ex_id: transfers.prepare_transfer(s, runtime, ex_id, now),
          record_failure=True, failpoints=("before_sign_commit", "after_sign_commit"))
    # a transfer in flight: an RPC outage only delays it
    done += _each(runtime, "settling execution", _find(runtime, executions.due, S.SIGNED, ("chain",)),
                  lambda s, seen: transfers.settle_transfer(s, runtime, seen, now) == "done", now=now,
                  look=lambda s, ex_id: transfers.observe_transfer(s, runtime, ex_id, now))
    return done


def sign_one(runtime: Runtime, ex_id: int, now: int) -> Any:
    """Sign one ready ``chain`` execution, both halves (the SignedTransfer stored, or None)."""
    with session_scope(runtime.engine, write=False) as s:
        prep = transfers.prepare_transfer(s, runtime, ex_id, now)
    if prep is None:
        return None
    with session_scope(runtime.engine) as s:
        return transfers.sign_transfer(s, runtime, prep, now)


JOBS = [("executions", run_executions)]
