"""Who may import what, outside the product: the benchmark uses the packages' public names
only, and a test module takes its helpers from tests/support (fixtures from a conftest.py,
which pytest finds by itself), never from another test module or a conftest."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("governance", "proposals", "voting", "treasury_exec", "tests")


def _from_imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every ``from module import name`` in the file, nested ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.module, alias.name) for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 for alias in node.names]


def _private_names(path: Path) -> list[str]:
    return [f"{module}.{name}" for module, name in _from_imports(path)
            if module.split(".")[0] in PACKAGES and name.startswith("_") and not name.startswith("__")]


def _test_module_imports(path: Path) -> list[str]:
    return [module for module, _ in _from_imports(path)
            if module.startswith("tests.") and module.rsplit(".", 1)[-1].startswith(("test_", "conftest"))]


@pytest.mark.parametrize("path", sorted((ROOT / "bench").glob("*.py")), ids=lambda p: p.name)
def test_bench_imports_public_names_only(path: Path) -> None:
    assert not _private_names(path), f"bench/{path.name} imports private names: make them public where they live"


@pytest.mark.parametrize("path", sorted((ROOT / "tests").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_test_module_imports_another(path: Path) -> None:
    assert not _test_module_imports(path), f"{path.relative_to(ROOT)}: move shared helpers to tests/support"


def test_the_checks_see_what_they_forbid(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("from governance.signatures import _checksum, verify_envelope\nimport os\n"
                   "def f():\n    from tests.e2e.test_faults import Server\n    from tests.conftest import START\n"
                   "from tests.support import Wallet\nfrom tests.support.processes import Server\n")
    assert _private_names(src) == ["governance.signatures._checksum"]
    assert sorted(_test_module_imports(src)) == ["tests.conftest", "tests.e2e.test_faults"]
