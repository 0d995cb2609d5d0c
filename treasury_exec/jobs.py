"""What the scheduler runs for the treasury: create due executions, expire, execute, settle."""

from __future__ import annotations

import logging

from sqlmodel import select

from governance.db import session_scope
from governance.failpoints import failpoint
from governance.runtime import Runtime
from treasury_exec import executions
from treasury_exec.models import Execution

log = logging.getLogger("treasury_exec.jobs")


def _ids(runtime: Runtime, *, status: str, modes: tuple[str, ...]) -> list[int]:
    with session_scope(runtime.engine, write=False) as s:
        return list(s.exec(select(Execution.id).where(Execution.status == status, Execution.mode.in_(modes))
                           .order_by(Execution.id).limit(200)))


def _each(runtime: Runtime, what: str, ids: list, step) -> int:
    """Run ``step(session, id)`` for each id, each in its own transaction (one failure holds
    back no other, and each holds its locks for one item only)."""
    done = 0
    for item in ids:
        try:
            with session_scope(runtime.engine) as s:
                done += bool(step(s, item))
        except Exception:
            log.exception("%s %s failed; it runs again next tick", what, item)
    return done


def _attempt(runtime: Runtime, what: str, ex_id: int, now: int, step) -> int:
    """Run one execution step; if it raises, record a failed attempt with the reason (in a
    transaction of its own: the step's was rolled back) so that nothing retries unseen."""
    try:
        return step()
    except Exception as exc:
        log.exception("%s execution %s failed; it will be retried", what, ex_id)
        try:
            with session_scope(runtime.engine) as s:
                executions.record_failure(s, runtime, ex_id, now, exc)
        except Exception:
            log.exception("recording the failure of execution %s failed too", ex_id)
        return 0


def run_executions(runtime: Runtime) -> int:
    """One pass: create due executions, expire and end what can no longer run, then run,
    sign and settle; every item in its own transaction."""
    now = runtime.clock.now()
    done = 0
    with session_scope(runtime.engine) as s:
        executions.create_due(s, runtime, now)
    with session_scope(runtime.engine, write=False) as s:
        expirable = executions.expirable(s, now)
    _each(runtime, "expiring proposal", expirable, lambda s, pid: executions.expire(s, runtime, pid, now))
    with session_scope(runtime.engine, write=False) as s:
        stopped = executions.stopped(s)
    _each(runtime, "ending execution", stopped, lambda s, ex_id: executions.end_stopped(s, runtime, ex_id, now))
    for ex_id in _ids(runtime, status="ready", modes=("parameters", "internal")):
        done += _attempt(runtime, "running", ex_id, now, lambda ex_id=ex_id: _run_internal(runtime, ex_id, now))
    for ex_id in _ids(runtime, status="ready", modes=("chain",)):
        _attempt(runtime, "signing", ex_id, now, lambda ex_id=ex_id: _sign(runtime, ex_id, now))
    for ex_id in _ids(runtime, status="signed", modes=("chain",)):
        try:  # a transfer in flight: an RPC outage only delays it
            with session_scope(runtime.engine) as s:
                done += executions.settle_chain(s, runtime, ex_id, now) == "done"
        except Exception:
            log.exception("settling execution %s failed; it will be retried", ex_id)
    return done


def _run_internal(runtime: Runtime, ex_id: int, now: int) -> int:
    with session_scope(runtime.engine) as s:
        done = executions.run_internal(s, runtime, ex_id, now)
        failpoint("before_execute_commit")  # tests: the effect applied, not committed
    failpoint("after_execute_commit")
    return int(done)


def _sign(runtime: Runtime, ex_id: int, now: int) -> int:
    with session_scope(runtime.engine) as s:
        executions.sign_chain(s, runtime, ex_id, now)
        failpoint("before_sign_commit")
    failpoint("after_sign_commit")
    return 0


JOBS = [("executions", run_executions)]
