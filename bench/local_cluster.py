"""What the scale benchmarks start on this machine: Ray nodes (`ray start --block`) and private
adb servers, each owned by a context manager and stopped by its PID.

The approach is the multi-node test's (tests/support/ray_cluster.py, adb_server.py), copied
here because bench/ must not import from tests/ (those helpers fail through pytest). Nothing
here stops anything by name: other work shares the machine.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

NODE_START_S = 120.0  # a loaded 2-core machine starts a Ray node in 10-60 s
CLIENT_S = 30.0
RAY = str(Path(sys.executable).with_name("ray"))
ROOT = Path(__file__).resolve().parents[1]


# -- waiting and stopping ---------------------------------------------------------------------
def wait_for(predicate: Callable[[], T], timeout_s: float, *, every_s: float = 0.2,
             what: str = "the condition") -> T:
    """Poll `predicate` until it returns something truthy; TimeoutError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(every_s)


def stop_process(process: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """SIGTERM by PID, wait, then SIGKILL (`ray start --block` stops its node on SIGTERM)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            return
        with suppress(ProcessLookupError):
            process.send_signal(sig)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout_s)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# -- a private adb server ---------------------------------------------------------------------
@dataclass
class AdbServer:
    port: int
    process: subprocess.Popen


def _answers_version(port: int) -> bool:
    # a raw socket: adbutils would start a default server (port 5037) by itself
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"000chost:version")
            return sock.recv(4) == b"OKAY"
    except OSError:
        return False


@contextmanager
def adb_server(workdir: Path, timeout_s: float = 30.0) -> Iterator[AdbServer]:
    """Debian's adb as a `nodaemon` server on a free port with HOME in `workdir`, so the
    user's server (5037) and keys are never touched; stopped by PID on the way out."""
    home = workdir / "adb-home"
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HOME": str(home), "ANDROID_USER_HOME": str(home / ".android"),
           "ADB_MDNS": "0"}
    port = free_port()
    # adbutils runs `adb start-server` (port 5037) when it cannot reach a server: never here
    os.environ["ADBUTILS_ADB_PATH"] = "/bin/false"
    with (workdir / "adb-server.log").open("wb") as log:
        process = subprocess.Popen(["adb", "-P", str(port), "nodaemon", "server"], env=env,
                                   stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: process.poll() is None and _answers_version(port), timeout_s,
                 what=f"the adb server on port {port}")
        yield AdbServer(port, process)
    finally:
        with suppress(subprocess.SubprocessError, OSError):
            subprocess.run(["adb", "-P", str(port), "kill-server"], env=env,
                           capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
        stop_process(process, 10.0)


# -- Ray nodes --------------------------------------------------------------------------------
@dataclass
class RayNode:
    name: str
    num_cpus: float
    labels: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None


@dataclass
class RayCluster:
    """A head and workers on this machine, token-authenticated with a fresh token so nothing
    else can join it; `env` is what a client (this process included) needs to reach it."""

    root: Path
    port: int
    env: dict[str, str]
    nodes: list[RayNode] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, node: RayNode) -> None:
        head = not self.nodes
        temp = self.root / node.name  # short: Ray's socket paths must fit in 107 bytes
        args = [RAY, "start", "--block", f"--num-cpus={node.num_cpus:g}",
                "--disable-usage-stats", f"--temp-dir={temp}"]
        args += ([f"--port={self.port}", "--head", "--include-dashboard=false"] if head
                 else [f"--address={self.address}"])
        if node.labels:
            args += ["--labels", ",".join(f"{k}={v}" for k, v in node.labels.items())]
        before = 0 if head else self.alive_nodes()
        with (self.root / f"{node.name}.log").open("ab") as log:
            node.process = subprocess.Popen(args, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.nodes.append(node)
        if head:
            wait_for(lambda: self._running(node) and port_open(self.port), NODE_START_S,
                     what="the Ray head's GCS port")
        wait_for(lambda: self._running(node) and self.alive_nodes() > before, NODE_START_S,
                 every_s=0.5, what=f"Ray node {node.name} to join")

    def stop(self, node: RayNode) -> None:
        """Stop one node by its `ray start` PID and wait until the cluster sees it gone."""
        before = self.alive_nodes()
        if node.process is not None:
            stop_process(node.process)
            node.process = None
        self.nodes.remove(node)
        if self.nodes:
            wait_for(lambda: self.alive_nodes() < before, NODE_START_S, every_s=0.5,
                     what=f"Ray node {node.name} to leave")

    def _running(self, node: RayNode) -> bool:
        assert node.process is not None
        if node.process.poll() is not None:
            raise RuntimeError(f"ray start for {node.name} exited {node.process.returncode}; "
                               f"see {self.root / (node.name + '.log')}")
        return True

    def alive_nodes(self) -> int:
        """Alive nodes, asked by a client process of its own (this one may be connected)."""
        script = (f"import json, ray; ray.init(address={self.address!r}, logging_level='ERROR');"
                  " print(json.dumps([n['Alive'] for n in ray.nodes()]))")
        try:
            result = subprocess.run([sys.executable, "-c", script], env=self.env, text=True,
                                    capture_output=True, timeout=CLIENT_S)
        except subprocess.TimeoutExpired:
            return 0
        if result.returncode != 0 or not result.stdout.strip():
            return 0
        return sum(json.loads(result.stdout.strip().splitlines()[-1]))


@contextmanager
def ray_cluster(root: Path, head_cpus: float) -> Iterator[RayCluster]:
    """A running head; add workers with `cluster.start(RayNode(...))`. All stopped on exit."""
    root.mkdir(parents=True, exist_ok=True)
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, RAY_AUTH_MODE="token",
               RAY_AUTH_TOKEN=os.environ.get("RAY_AUTH_TOKEN") or secrets.token_hex(16),
               RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=pythonpath)
    env.pop("RAY_ADDRESS", None)
    cluster = RayCluster(root, free_port(), env)
    try:
        cluster.start(RayNode("head", head_cpus))
        yield cluster
    finally:
        for node in reversed(list(cluster.nodes)):
            if node.process is not None:
                stop_process(node.process)
