"""The README and docs/ link only inside the repository, and every link resolves: a file that
exists, and a heading that exists in it (GitHub's anchors). A clone is the whole contract."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    out = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


def test_docs_link_only_inside_the_repository_and_every_link_resolves() -> None:
    assert len(DOCS) >= 6
    broken = []
    for doc in DOCS:
        for target in LINK.findall(doc.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            file_part, _, anchor = target.partition("#")
            path = (doc.parent / file_part).resolve() if file_part else doc
            if not path.is_relative_to(ROOT):
                broken.append(f"{doc.name}: {target} leaves the repository")
            elif not path.exists():
                broken.append(f"{doc.name}: {target} does not exist")
            elif anchor and (path.is_dir() or anchor not in anchors(path)):
                broken.append(f"{doc.name}: {target} names no heading of {path.name}")
    assert not broken, "\n".join(broken)
