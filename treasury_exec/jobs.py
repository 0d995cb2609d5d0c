"""What the scheduler runs for the treasury: create due executions, expire, execute, settle."""

from __future__ import annotations

import logging

from sqlalchemy import update
from sqlmodel import select

from governance.db import session_scope
from governance.failpoints import failpoint
from governance.runtime import Runtime
from proposals.lifecycle import State
from proposals.models import Proposal
from treasury_exec import executions
from treasury_exec.models import Execution

log = logging.getLogger("treasury_exec.jobs")


def _ids(runtime: Runtime, *, status: str, modes: tuple[str, ...]) -> list[int]:
    with session_scope(runtime.engine, write=False) as s:
        return list(s.exec(select(Execution.id).where(Execution.status == status, Execution.mode.in_(modes))
                           .order_by(Execution.id).limit(200)))


def run_executions(runtime: Runtime) -> int:
    """One pass; every item in its own transaction, so one failure holds back no other."""
    now = runtime.clock.now()
    done = 0
    with session_scope(runtime.engine) as s:
        executions.create_due(s, runtime, now)
    with session_scope(runtime.engine) as s:
        executions.expire_due(s, now)
        s.execute(update(Execution).where(
            Execution.status.in_(("ready", "claimed")),
            Execution.proposal_id.in_(select(Proposal.id).where(Proposal.state == State.CANCELED.value)),
        ).values(status="canceled", updated_at=now))
    for ex_id in _ids(runtime, status="ready", modes=("parameters", "internal")):
        try:
            with session_scope(runtime.engine) as s:
                done += executions.run_internal(s, runtime, ex_id, now)
                failpoint("before_execute_commit")  # tests: the effect applied, not committed
            failpoint("after_execute_commit")
        except Exception:
            log.exception("execution %s failed; it will be retried", ex_id)
    for ex_id in _ids(runtime, status="ready", modes=("chain",)):
        try:
            with session_scope(runtime.engine) as s:
                executions.sign_chain(s, runtime, ex_id, now)
                failpoint("before_sign_commit")
            failpoint("after_sign_commit")
        except Exception:
            log.exception("signing execution %s failed; it will be retried", ex_id)
    for ex_id in _ids(runtime, status="signed", modes=("chain",)):
        try:
            with session_scope(runtime.engine) as s:
                done += executions.settle_chain(s, runtime, ex_id, now) == "done"
        except Exception:
            log.exception("settling execution %s failed; it will be retried", ex_id)
    return done


JOBS = [("executions", run_executions)]
