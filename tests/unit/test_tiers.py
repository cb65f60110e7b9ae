"""The test tiers stay what tests/README.md says they are.

- every test module lives in a tier folder, and every folder is a package;
- a unit test imports neither Ray nor the support code that starts servers;
- nothing under tests/ calls `time.sleep` but tests/support/wait.py, except a sleep that
  models a person's or a stream's pace, marked `# paced:` on its line.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
TIERS = ("unit", "integration", "e2e")
NOT_IN_UNIT = ("ray", "tests.support.adb_server", "tests.support.prometheus_server",
               "tests.support.s3_server")
SLEEP_ALLOWED = TESTS / "support" / "wait.py"
PACED = "# paced:"


def _modules() -> list[Path]:
    return sorted(TESTS.rglob("*.py"))


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _is_sleep(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.module == "time" and any(alias.name == "sleep" for alias in node.names)
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
        node.func.attr == "sleep" and isinstance(node.func.value, ast.Name) and \
        node.func.value.id == "time"


def _sleeps(tree: ast.AST) -> list[int]:
    """Lines that call time.sleep (as `time.sleep(...)` or a `from time import sleep`)."""
    return [node.lineno for node in ast.walk(tree) if _is_sleep(node)]


def test_every_test_module_is_in_a_tier() -> None:
    stray = [p.relative_to(TESTS) for p in TESTS.rglob("test_*.py")
             if p.relative_to(TESTS).parts[0] not in TIERS]
    assert not stray, f"put these in tests/unit, tests/integration or tests/e2e: {stray}"


def test_every_test_folder_is_a_package() -> None:
    folders = {p.parent for p in _modules()}
    missing = [f.relative_to(TESTS.parent) for f in folders if not (f / "__init__.py").exists()]
    assert not missing, f"tests import each other as tests.x: add __init__.py to {missing}"


def test_unit_tests_start_no_ray_and_no_servers() -> None:
    found = {}
    for path in sorted((TESTS / "unit").rglob("*.py")):
        names = _imports(ast.parse(path.read_text("utf-8")))
        bad = sorted(n for n in names if any(n == b or n.startswith(b + ".") for b in NOT_IN_UNIT))
        if bad:
            found[str(path.relative_to(TESTS))] = bad
    assert not found, f"not unit tests (move them to tests/integration): {found}"


def test_no_fixed_sleep_as_synchronisation() -> None:
    found = []
    for path in _modules():
        if path == SLEEP_ALLOWED:
            continue
        text = path.read_text("utf-8").splitlines()
        found += [f"{path.relative_to(TESTS)}:{line}" for line in _sleeps(ast.parse("\n".join(
            text))) if PACED not in text[line - 1]]
    assert not found, ("wait on the condition with tests.support.wait.wait_for, or mark a "
                       f"person's pace with '{PACED} why' on the line: {found}")
