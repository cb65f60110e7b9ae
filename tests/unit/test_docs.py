"""The docs live in the repository: docstrings cite docs/architecture.md's sections, which
exist, and every file the architecture page names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "architecture.md"
SKIP = {".venv", ".git", "build", "dist", "node_modules"}
CODE = [p for top in ROOT.iterdir() if top.is_dir() and not top.is_symlink()
        and top.name not in SKIP for p in top.rglob("*.py") if not p.is_symlink()]


def _anchor(heading: str) -> str:
    """GitHub's slug of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors() -> set[str]:
    return {_anchor(line.lstrip("#")) for line in PAGE.read_text().splitlines()
            if line.startswith("#")}


def test_no_docstring_points_outside_the_repository() -> None:
    cited = [str(p.relative_to(ROOT)) for p in CODE
             if re.search(r"\b(PROTOCOLS|DESIGN)\.md", p.read_text(encoding="utf-8"))]
    assert not cited


def test_every_cited_section_exists() -> None:
    anchors = _anchors()
    missing = {}
    for path in CODE:
        for anchor in re.findall(r"docs/architecture\.md#([\w-]+)", path.read_text("utf-8")):
            if anchor not in anchors:
                missing[anchor] = str(path.relative_to(ROOT))
    assert not missing
    assert len(anchors) > 20


def test_every_file_the_page_names_exists() -> None:
    named = set(re.findall(r"`((?:[a-z_]+/)+[a-z_]+\.(?:py|yaml|md))`", PAGE.read_text()))
    assert len(named) > 20
    assert not sorted(n for n in named if not (ROOT / n).exists())
