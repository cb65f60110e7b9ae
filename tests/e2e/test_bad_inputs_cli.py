"""The user-found bad inputs, tried as a new user would: the real command in its own process.

Each ends in exit 2 and one line naming the file and the key, before anything starts; none in
a traceback (tests/unit/test_bad_inputs.py holds the whole corpus, in-process).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PERSONAS = ROOT / "examples" / "personas"
JOB = f"""job_id: first
storage_path: out
personas: [{PERSONAS / "concentrated.yaml"}]
platforms: [douyin-like]
experiments:
  breadth: {{steps: 100}}
window: 20
replicates: 1
devices: {{count: 1}}
metrics: {{port: null, bootstrap: 100}}
"""


def _bubblescope(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bubblescope.cluster.cli", *argv], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("name, body, key", [
    ("not-utf8", JOB.encode() + b"description: caf\xe9\n", "UTF-8"),
    ("storage-proc", JOB.replace("storage_path: out", "storage_path: /proc/nope").encode(),
     "storage_path"),
    ("window-too-long", JOB.replace("window: 20", "window: 200").encode(), "window"),
])
def test_a_new_users_mistake_is_one_line(name: str, body: bytes, key: str, tmp_path: Path):
    job = tmp_path / "job.yaml"
    job.write_bytes(body)
    done = _bubblescope("audit", str(job), "--no-progress", "--no-metrics", cwd=tmp_path)
    assert "Traceback" not in done.stdout + done.stderr
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and str(job) in done.stderr and key in done.stderr
    assert not (tmp_path / "out").exists()  # nothing started


@pytest.mark.slow
def test_help_lists_the_exit_codes(tmp_path: Path):
    done = _bubblescope("--help", cwd=tmp_path)
    assert done.returncode == 0
    assert "exit codes:" in done.stdout and "does not answer" in done.stdout
