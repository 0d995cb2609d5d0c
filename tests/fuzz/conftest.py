"""The fuzz module's accounting test runs after the operations it accounts for."""

from __future__ import annotations

from pathlib import Path

import pytest

LAST = "test_every_operation_was_fuzzed"
HERE = Path(__file__).parent


@pytest.hookimpl(trylast=True)  # after any reordering plugin (pytest-randomly shuffles first)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    last = [item for item in items if item.name == LAST and item.path.parent == HERE]
    if last:
        items[:] = [item for item in items if item not in last] + last
