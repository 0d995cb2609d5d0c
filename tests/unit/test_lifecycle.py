"""The lifecycle state machine, pure."""

from __future__ import annotations

from proposals.lifecycle import (
    State,
    can_transition,
    cancel_allowed,
    effective_state,
    execution_window,
    timing,
    voting_open,
)


def test_timing_derives_windows() -> None:
    t = timing(1000, 60, 600)
    assert (t.starts_at, t.ends_at) == (1060, 1660)


def test_pending_becomes_active_by_the_clock() -> None:
    assert effective_state("pending", 1060, 1059) is State.PENDING
    assert effective_state("pending", 1060, 1060) is State.ACTIVE
    assert effective_state("queued", 1060, 99999) is State.QUEUED


def test_voting_window_is_half_open() -> None:
    assert not voting_open("pending", 100, 200, 99)
    assert voting_open("pending", 100, 200, 100)
    assert voting_open("pending", 100, 200, 199)
    assert not voting_open("pending", 100, 200, 200)
    assert not voting_open("canceled", 100, 200, 150)


def test_transitions() -> None:
    assert can_transition("pending", State.QUEUED)
    assert can_transition("queued", State.EXECUTED)
    assert can_transition("queued", State.EXPIRED)
    assert not can_transition("executed", State.CANCELED)
    assert not can_transition("defeated", State.QUEUED)


def test_cancel_rules() -> None:
    # proposer: only while pending (before starts_at)
    assert cancel_allowed("pending", 100, 99, by_guardian=False)
    assert not cancel_allowed("pending", 100, 100, by_guardian=False)
    # guardian: any state before executed
    assert cancel_allowed("queued", 100, 10**9, by_guardian=True)
    assert not cancel_allowed("executed", 100, 10**9, by_guardian=True)


def test_execution_window() -> None:
    assert execution_window(1000, 86400, 3600) == (87400, 91000)
