"""The served OpenAPI document passes Redocly CLI's recommended rules: no error, no warning.

Frontends generate their clients from ``/schema/openapi.json``; the linter catches what a
generator would stumble on or guess at (an operation that does not say whether it takes a key,
one without a documented 4xx, a missing license). Fix the document where it is generated (the
route's decorator, ``governance.http``'s ``public``/``api_key``/``errors``, the
``OpenAPIConfig`` in ``governance.app``), not the rules (redocly.yaml).

Redocly CLI comes from npm (package.json). Without node or node_modules this test skips,
unless ``DAO_REQUIRE_NODE`` is set (CI), where it fails instead.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.node import node_with

ROOT = Path(__file__).resolve().parents[2]
REDOCLY = ROOT / "node_modules" / ".bin" / "redocly"
CONFIG = ROOT / "redocly.yaml"


@pytest.fixture(params=["sqlite"])
def database_url(tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """One database is enough (the document does not depend on it): conftest's ``database_url``
    on SQLite only. The id stays ``[sqlite]``, so ``-k sqlite`` keeps the test."""
    path = tmp_path / "dao.db"
    shutil.copyfile(sqlite_template, path)
    yield f"sqlite:///{path}"


def _where(problem: dict) -> str:
    """``#/paths/~1v1~1dao/get/responses`` as ``paths › /v1/dao › get › responses``."""
    pointer = problem["location"][0]["pointer"] if problem.get("location") else "#/"
    parts = pointer.removeprefix("#").strip("/").split("/")
    return " › ".join(p.replace("~1", "/").replace("~0", "~") for p in parts) or "(root)"


def test_served_document_passes_redocly_recommended(client, tmp_path: Path) -> None:
    node = node_with("the OpenAPI lint", REDOCLY)
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = tmp_path / "openapi.json"
    document.write_bytes(response.content)

    run = subprocess.run([node, str(REDOCLY), "lint", str(document), "--config", str(CONFIG),
                          "--format", "json", "--max-problems", "1000"],
                         capture_output=True, text=True, encoding="utf-8", cwd=ROOT, timeout=120, check=False)
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"redocly lint gave no JSON report (exit {run.returncode}):\n{run.stdout}\n{run.stderr}")

    problems = [f"{p['severity']:<7} {p['ruleId']:<24} {_where(p)}: {p['message']}" for p in report["problems"]]
    totals = report["totals"]
    assert totals["errors"] == 0 and totals["warnings"] == 0, (
        f"redocly lint (recommended): {totals['errors']} errors, {totals['warnings']} warnings\n"
        + "\n".join(problems))
    assert run.returncode == 0, run.stderr
