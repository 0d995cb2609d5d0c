"""An execution's status and its transition table, pure (no I/O). The README's Executions
section says what each status means to an operator or an executor.

::

    ready ─(lease_to_executor)→ claimed ─(complete)→ done
      │  ↺ failed attempt          │ ↺ a lapsed lease leased again
      │                            └(executor fails)→ ready
      ├─(sign_transfer)→ signed ─(landed, journaled)→ done
      │                  ├─(reverted, or its nonce taken)→ ready
      │                  └─(landed, not journaled)→ failed
      ├─(run_internal)→ done
      └─(proposal expired or canceled)→ expired | canceled   (from claimed too)

``done``, ``expired``, ``canceled`` and ``failed`` are terminal. The paths that make each move
are in ``treasury_exec.executions`` (and ``external`` for executors); only they write it.
"""

from __future__ import annotations

from enum import StrEnum


class ExecutionStatus(StrEnum):
    READY = "ready"  # due, or waiting for ``next_attempt_at`` after a failed attempt
    CLAIMED = "claimed"  # leased to an external executor; the amount is reserved
    SIGNED = "signed"  # a transfer is signed and stored, maybe broadcast; the amount is reserved
    DONE = "done"
    EXPIRED = "expired"  # not done by the proposal's eta + grace
    CANCELED = "canceled"  # the proposal was canceled
    FAILED = "failed"  # landed but not journaled, or succeeded paying nothing: the operator acts


S = ExecutionStatus

TRANSITIONS: dict[ExecutionStatus, frozenset[ExecutionStatus]] = {
    S.READY: frozenset({S.READY, S.CLAIMED, S.SIGNED, S.DONE, S.EXPIRED, S.CANCELED}),
    S.CLAIMED: frozenset({S.CLAIMED, S.READY, S.DONE, S.EXPIRED, S.CANCELED}),
    S.SIGNED: frozenset({S.READY, S.DONE, S.FAILED}),
    S.DONE: frozenset(),
    S.EXPIRED: frozenset(),
    S.CANCELED: frozenset(),
    S.FAILED: frozenset(),
}

TERMINAL = frozenset(s for s, after in TRANSITIONS.items() if not after)
# a transfer that may still land: the proposal can neither expire nor be canceled
IN_FLIGHT = frozenset({S.SIGNED})
