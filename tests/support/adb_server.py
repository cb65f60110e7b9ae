"""A private adb server for tests: the real Debian `adb`, on its own port, always stopped.

Tests must never touch a user's default adb server (port 5037) or their keys, so the server
runs on a free port with HOME pointing at a temporary folder, as a `nodaemon` subprocess that
the context manager owns; it is stopped with `adb -P PORT kill-server`, then terminated if it
lingers. A missing binary fails the test with the install hint: it is never skipped.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import adbutils
import pytest

from tests.support.processes import stop_process
from tests.support.system_programs import free_port, require_binary
from tests.support.wait import wait_for

INSTALL_HINT = "install Debian's adb (make test does it)"
COMMAND_TIMEOUT_S = 30.0
POLL_S = 0.1


def require_adb() -> Path:
    return require_binary("adb", INSTALL_HINT)


@dataclass
class AdbServer:
    binary: Path
    port: int
    env: dict[str, str]
    log: Path

    def adb(self, *args: str, timeout_s: float = COMMAND_TIMEOUT_S, check: bool = True,
            stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        """`adb -P PORT args...`; with `check`, a non-zero exit fails the test."""
        result = subprocess.run([str(self.binary), "-P", str(self.port), *args], env=self.env,
                                input=stdin, stdin=None if stdin is not None else
                                subprocess.DEVNULL, capture_output=True, timeout=timeout_s)
        if check and result.returncode != 0:
            pytest.fail(f"adb {' '.join(args)} exited {result.returncode}: "
                        f"{result.stdout!r} {result.stderr!r}\n{self.log_tail()}")
        return result

    def client(self) -> adbutils.AdbClient:
        return adbutils.AdbClient(host="127.0.0.1", port=self.port, socket_timeout=10)

    def connect(self, device_port: int, timeout_s: float = 15.0) -> str:
        """`adb connect 127.0.0.1:PORT`, then wait until the device is in state `device`."""
        serial = f"127.0.0.1:{device_port}"
        out = self.adb("connect", serial).stdout.decode()
        assert f"connected to {serial}" in out, out
        self.wait_for_state(serial, {"device"}, timeout_s)
        return serial

    def states(self) -> dict[str, str]:
        """serial -> state, from `adb devices`."""
        lines = self.adb("devices").stdout.decode().splitlines()[1:]
        return dict(line.split("\t", 1) for line in lines if "\t" in line)

    def wait_for_state(self, serial: str, states: set[str | None],
                       timeout_s: float = 15.0) -> str | None:
        """Poll `adb devices` until `serial` is in one of `states` (None = not listed)."""
        seen: list[str | None] = []

        def in_states() -> bool:
            seen.append(self.states().get(serial))
            return seen[-1] in states

        wait_for(in_states, timeout_s, every_s=POLL_S, what=f"{serial} to be in {states}",
                 detail=lambda: f"{serial} is {seen[-1]!r}\n{self.log_tail()}")
        return seen[-1]

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@contextmanager
def private_adb_server(workdir: Path, start_timeout_s: float = 15.0) -> Iterator[AdbServer]:
    """A fresh adb server on a free port, HOME in `workdir`; killed on exit."""
    binary = require_adb()
    home = workdir / "adb-home"
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOME": str(home), "ANDROID_SDK_HOME": str(home),
           "ANDROID_USER_HOME": str(home / ".android"), "ADB_MDNS": "0"}
    env.pop("ADB_VENDOR_KEYS", None)
    env.pop("ANDROID_SERIAL", None)
    server = AdbServer(binary, free_port(), env, workdir / "adb-server.log")
    # adbutils runs `adb start-server` (default port 5037) when it cannot reach its server;
    # point it at `false` so a test can never start or touch the user's default server.
    with pytest.MonkeyPatch.context() as patch, server.log.open("wb") as log:
        patch.setenv("ADBUTILS_ADB_PATH", shutil.which("false") or "/bin/false")
        process = subprocess.Popen([str(binary), "-P", str(server.port), "nodaemon", "server"],
                                   env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        try:
            _wait_ready(server, process, start_timeout_s)
            yield server
        finally:
            _stop(server, process)


def _answers_version(port: int) -> bool:
    """Ask `host:version` over a raw socket: adbutils would start a default server (port
    5037) by itself if ours were not up yet."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"000chost:version")
            return sock.recv(4) == b"OKAY"
    except OSError:
        return False


def _wait_ready(server: AdbServer, process: subprocess.Popen, timeout_s: float) -> None:
    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"adb server exited with {process.returncode}:\n{server.log_tail()}")
        return _answers_version(server.port)

    wait_for(ready, timeout_s, every_s=POLL_S, what=f"the adb server on port {server.port}",
             detail=server.log_tail)


def _stop(server: AdbServer, process: subprocess.Popen) -> None:
    """`adb kill-server` (the server's own way out), then stop_process if it lingers."""
    with suppress(subprocess.TimeoutExpired):
        subprocess.run([str(server.binary), "-P", str(server.port), "kill-server"],
                       env=server.env, capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    with suppress(AssertionError):
        wait_for(lambda: process.poll() is not None, 10, what="the adb server to exit")
    stop_process(process, 5)
