"""A second implementation of docs/protocol.md, in JavaScript (tests/js/protocol/, written from
the document and sharing no code with the service), reproduces every conformance vector, and
notices a vector that is wrong.

Without node or node_modules this test skips, unless ``DAO_REQUIRE_NODE`` is set (CI), where
it fails instead.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.support.node import node_with

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "js" / "protocol" / "run.mjs"
VECTORS = ROOT / "docs" / "vectors"


def run(vectors: Path) -> subprocess.CompletedProcess[str]:
    node = node_with("the JavaScript protocol implementation",
                     *(ROOT / "node_modules" / m for m in ("ethers", "tweetnacl", "bs58")))
    return subprocess.run([node, str(SCRIPT), str(vectors)], capture_output=True, text=True, encoding="utf-8",
                          cwd=ROOT, timeout=300, check=False)


def test_javascript_reproduces_every_vector() -> None:
    done = run(VECTORS)
    assert done.returncode == 0, done.stderr
    checked = json.loads(done.stdout)
    assert set(checked) == {p.name for p in VECTORS.glob("*.json")}
    assert all(n > 5 for n in checked.values()), checked


def test_javascript_notices_a_wrong_vector(tmp_path: Path) -> None:
    for p in VECTORS.glob("*.json"):
        shutil.copy(p, tmp_path / p.name)
    edits = {
        "merkle.json": lambda d: d["holderTrees"][3].__setitem__("root", "0x" + "00" * 32),
        "journal.json": lambda d: d["entries"][3].__setitem__("memo", d["entries"][3]["memo"] + " "),
        "signing.json": lambda d: d["cases"][4]["message"].__setitem__("title", "changed"),
        "export.json": lambda d: d["expected"].__setitem__("outcome", "defeated"),
    }
    for name, edit in edits.items():
        doc = json.loads((tmp_path / name).read_text(encoding="utf-8"))
        edit(doc)
        (tmp_path / name).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    done = run(tmp_path)
    assert done.returncode == 1
    for name in edits:
        assert f"{name}: " in done.stderr, name
