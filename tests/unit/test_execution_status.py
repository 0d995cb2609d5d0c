"""The execution status machine, pure: every status documented, every path ends."""

from __future__ import annotations

import re
from pathlib import Path

from treasury_exec.status import IN_FLIGHT, TERMINAL, TRANSITIONS, ExecutionStatus

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_status_is_in_the_readme_executions_table() -> None:
    text = README.read_text()
    section = text[text.index("### Executions"):]
    table = section[section.index("| status | meaning |"):]
    table = table[:table.index("\n\n")]
    documented = re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.M)
    assert documented == [s.value for s in ExecutionStatus]


def test_terminal_statuses_lead_nowhere_and_every_other_reaches_one() -> None:
    assert {"done", "expired", "canceled", "failed"} == TERMINAL
    assert set(TRANSITIONS) == set(ExecutionStatus)
    for start in set(ExecutionStatus) - TERMINAL:
        seen, todo = set(), [start]
        while todo:
            s = todo.pop()
            seen.add(s)
            todo += [t for t in TRANSITIONS[s] if t not in seen]
        assert seen & TERMINAL, start


def test_a_transfer_in_flight_can_only_land_fail_or_come_back() -> None:
    assert {ExecutionStatus.SIGNED} == IN_FLIGHT
    assert TRANSITIONS[ExecutionStatus.SIGNED] == {"ready", "done", "failed"}  # never expired or canceled
