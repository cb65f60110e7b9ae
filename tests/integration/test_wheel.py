"""The built wheel holds every module and data file of the tree, and each one imports from it.

The parts are top-level folders reached through symlinks in bubblescope/, so a subpackage that
the build misses would still import in the repository; only the wheel shows it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA_FILES = {"bubblescope/data/taxonomy.yaml", "bubblescope/devices/data/apps.yaml",
              "bubblescope/sim/data/humans.yaml", "bubblescope/sim/data/profiles.yaml",
              "bubblescope/sim/data/vocabulary.yaml"}
BUILD_TIMEOUT_S = 300
IMPORT_TIMEOUT_S = 600

IMPORT_ALL = """
import importlib, sys
from pathlib import Path
unpacked = Path(sys.argv[1]).resolve()
import bubblescope
assert Path(bubblescope.__file__).resolve().is_relative_to(unpacked), bubblescope.__file__
for name in sys.argv[2:]:
    module = importlib.import_module(name)
    assert Path(module.__file__).resolve().is_relative_to(unpacked), module.__file__
print("imported", len(sys.argv) - 2)
"""


def _source_modules() -> set[str]:
    found = set()
    for folder, dirs, files in os.walk(ROOT / "bubblescope", followlinks=True):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        relative = Path(folder).relative_to(ROOT)
        found.update(str(relative / name) for name in files if name.endswith(".py"))
    return found


def _module_name(path: str) -> str:
    parts = Path(path).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True, timeout=BUILD_TIMEOUT_S,
                   capture_output=True)
    (built,) = out.glob("bubblescope-*.whl")
    return built


def test_the_wheel_holds_every_module_and_data_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {n for n in names if n.endswith(".py")}
    assert modules == _source_modules()
    assert names >= DATA_FILES
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "bench/"))]


def test_every_module_imports_from_the_wheel(wheel: Path, tmp_path: Path) -> None:
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    modules = sorted(_module_name(n) for n in zipfile.ZipFile(wheel).namelist()
                     if n.endswith(".py"))
    env = {**os.environ, "PYTHONPATH": str(unpacked)}
    done = subprocess.run([sys.executable, "-c", IMPORT_ALL, str(unpacked), *modules],
                          cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=IMPORT_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["imported", str(len(modules))]
