"""Node and the npm tools of package.json (node_modules) that tests run: the independent
signer (tests/js), Redocly CLI. A test that needs them skips on a laptop without them, and
fails where ``DAO_REQUIRE_NODE`` is set (CI)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def node_with(purpose: str, *needs: Path) -> str:
    """The ``node`` executable, when it and every path in ``needs`` exist; otherwise skip the
    test (``purpose`` says what for), or fail it under ``DAO_REQUIRE_NODE``."""
    node = shutil.which("node") or ("/usr/bin/node" if Path("/usr/bin/node").exists() else None)
    missing = ([] if node else ["node"]) + [path.name for path in needs if not path.exists()]
    if node and not missing:
        return node
    if os.environ.get("DAO_REQUIRE_NODE"):
        pytest.fail(f"DAO_REQUIRE_NODE is set but {', '.join(missing)} is missing: install node and run npm ci")
    pytest.skip(f"{purpose} needs {', '.join(missing)} (npm install, as ./dev test runs it)")
