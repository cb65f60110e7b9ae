"""A real Prometheus server for tests, started as a subprocess and always stopped.

Tests that prove the exporter, the dashboard queries and the alert rules work do so against
the Prometheus binary Debian ships (`make test` installs it), not a mock of its API. A missing
binary fails the test with a message saying how to install it: it is never skipped, so a
green run always means these checks ran.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.processes import stop_process
from tests.support.system_programs import free_port
from tests.support.system_programs import require_binary as require_program
from tests.support.wait import wait_for

INSTALL_HINT = "install Debian's prometheus (make test does it)"
REQUEST_TIMEOUT_S = 5.0
POLL_S = 0.2

Sample = dict  # one element of a Prometheus API "vector" result


def require_binary(name: str) -> Path:
    return require_program(name, INSTALL_HINT)


@dataclass
class PrometheusServer:
    url: str
    log: Path

    def query(self, expr: str) -> dict:
        """The API's JSON answer to an instant query (whatever its status)."""
        response = requests.get(f"{self.url}/api/v1/query", params={"query": expr},
                                timeout=REQUEST_TIMEOUT_S)
        return response.json()

    def vector(self, expr: str) -> list[Sample]:
        body = self.query(expr)
        assert body["status"] == "success", f"{expr}: {body}"
        return body["data"]["result"]

    def wait_for(self, expr: str, check: Callable[[list[Sample]], bool],
                 timeout_s: float = 15.0) -> list[Sample]:
        """Poll `expr` until `check(result)` holds; fail with the last result at the deadline."""
        results: list[list[Sample]] = [[]]

        def holds() -> bool:
            results.append(self.vector(expr))
            return check(results[-1])

        wait_for(holds, timeout_s, every_s=POLL_S, what=f"{expr} to hold",
                 detail=lambda: f"{expr} gives {json.dumps(results[-1])}\n"
                                f"prometheus log tail:\n{self.log_tail()}")
        return results[-1]

    def get(self, path: str) -> dict:
        return requests.get(f"{self.url}{path}", timeout=REQUEST_TIMEOUT_S).json()

    def log_tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@contextmanager
def running_prometheus(config: dict, workdir: Path,
                       start_timeout_s: float = 20.0) -> Iterator[PrometheusServer]:
    """Start Prometheus on a free local port with `config` (written as YAML-compatible JSON)."""
    binary = require_binary("prometheus")
    config_file = workdir / "prometheus.yml"
    config_file.write_text(json.dumps(config, indent=2), encoding="utf-8")
    port = free_port()
    server = PrometheusServer(url=f"http://127.0.0.1:{port}", log=workdir / "prometheus.log")
    with server.log.open("wb") as log:
        process = subprocess.Popen(
            [str(binary), f"--config.file={config_file}",
             f"--storage.tsdb.path={workdir / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_ready(server, process, start_timeout_s)
            yield server
        finally:
            stop_process(process, 10)


def _wait_ready(server: PrometheusServer, process: subprocess.Popen,
                timeout_s: float) -> None:
    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited with {process.returncode}:\n{server.log_tail()}")
        try:
            return requests.get(f"{server.url}/-/ready", timeout=1.0).status_code == 200
        except requests.RequestException:
            return False

    wait_for(ready, timeout_s, every_s=POLL_S, what=f"prometheus at {server.url}/-/ready",
             detail=server.log_tail)
