"""The system programs tests drive (Debian's prometheus, adb, ...) and a free local port.

A missing program fails the test with the hint to install it: `make test` installs them,
so a skip would only hide a broken setup.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest


def require_binary(name: str, hint: str) -> Path:
    """/usr/bin/<name>, else <name> on PATH; fails the test when neither exists."""
    path = Path("/usr/bin") / name
    if path.is_file():
        return path
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: {hint}")
    return Path(found)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
