"""The import rules of docs/architecture.md, checked on the source: the core (``governance``)
imports no domain except in the composition root; ``proposals`` imports no other domain;
``voting`` and ``treasury_exec`` never import each other. Imports under ``if TYPE_CHECKING:``
are annotations only and do not count."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("governance", "proposals", "voting", "treasury_exec")
# which other packages each package may import at run time
ALLOWED = {
    "governance": set(),
    "proposals": {"governance"},
    "voting": {"governance", "proposals"},
    "treasury_exec": {"governance", "proposals"},
}
COMPOSITION_ROOT = {"governance.bootstrap"}  # the one module that knows every domain


def _runtime_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            typing_only |= {id(n) for child in node.body for n in ast.walk(child)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield package, ".".join(path.relative_to(ROOT).with_suffix("").parts), path


@pytest.mark.parametrize(("package", "module", "path"), list(_modules()), ids=lambda v: v if isinstance(v, str) else "")
def test_imports_follow_the_layers(package: str, module: str, path: Path) -> None:
    if module in COMPOSITION_ROOT:
        return
    crossing = {name for name in _runtime_imports(path)
                if name.split(".")[0] in PACKAGES and name.split(".")[0] != package}
    wrong = sorted(name for name in crossing if name.split(".")[0] not in ALLOWED[package])
    assert not wrong, f"{module} imports {wrong}: see docs/architecture.md, which way imports go"


def test_the_rule_catches_a_crossing(tmp_path: Path) -> None:
    """The check itself: a run-time import across the rule is seen, a TYPE_CHECKING one is not."""
    src = tmp_path / "m.py"
    src.write_text("from typing import TYPE_CHECKING\nimport voting.service\n"
                   "if TYPE_CHECKING:\n    from treasury_exec.chain import ChainClient\n")
    assert _runtime_imports(src) == {"typing", "voting.service"}
