"""docs/architecture.md#parts: one loader maps the job's specs to concrete classes, the only place that
chooses. No library module but actors/loader.py instantiates a concrete device, policy or
classifier (tests and benchmarks may)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOADER = ROOT / "actors" / "loader.py"
CONCRETE = {"InProcessDevice", "AdbPhone", "AgentPolicy", "PersonaStatsPolicy", "RandomPolicy",
            "SimTruthClassifier", "TextCategoryClassifier", "VlmClassifier"}


def _library_modules() -> list[Path]:
    package = ROOT / "bubblescope"
    parts = [p.resolve() for p in package.iterdir() if p.is_dir() and p.is_symlink()]
    return sorted([*package.glob("*.py"), *(f for part in parts for f in part.rglob("*.py"))])


def _constructions(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in CONCRETE:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    return found


def test_only_the_loader_instantiates_concrete_classes() -> None:
    modules = _library_modules()
    assert LOADER in modules and len(modules) > 50
    offenders = [hit for path in modules if path != LOADER for hit in _constructions(path)]
    assert offenders == []
    assert len(_constructions(LOADER)) == len(CONCRETE)
