"""Several Ray nodes on this machine: a head and workers started with `ray start --block`.

Each node is a `ray start --block` subprocess with its own temp dir, owned by the context
manager and stopped by its PID (SIGTERM: `--block` then stops the node's own processes). The
cluster uses Ray's token auth with a fresh token, so nothing else on the machine can join it
and it cannot join anything else; `env` is what a client process needs to reach it.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.support.processes import stop_process
from tests.support.system_programs import free_port
from tests.support.wait import wait_for

NODE_START_S = 90.0
CLIENT_S = 20.0  # one client's connect and query
RAY = str(Path(sys.executable).with_name("ray"))


@dataclass
class RayNode:
    name: str
    labels: dict[str, str]
    num_cpus: int
    process: subprocess.Popen | None = None
    log: Path | None = None

    def raylet_pid(self) -> int:
        assert self.process is not None
        for child in psutil.Process(self.process.pid).children(recursive=True):
            with suppress(psutil.Error):
                if child.name() == "raylet":
                    return child.pid
        raise AssertionError(f"node {self.name} has no raylet")


@dataclass
class RayCluster:
    root: Path
    port: int
    env: dict[str, str]
    head: RayNode
    workers: list[RayNode] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, node: RayNode, head: bool = False) -> None:
        temp = self.root / node.name  # short: Ray's socket paths must fit in 107 bytes
        node.log = self.root / f"{node.name}.log"
        args = [RAY, "start", "--block", f"--num-cpus={node.num_cpus}", "--disable-usage-stats"]
        args += (["--head", f"--port={self.port}", f"--temp-dir={temp}",
                  "--include-dashboard=false"] if head
                 else [f"--address={self.address}", f"--temp-dir={temp}"])
        if node.labels:
            args += ["--labels", ",".join(f"{k}={v}" for k, v in node.labels.items())]
        before = 0 if head else self.alive_nodes()
        node.process = subprocess.Popen(args, env=self.env, stdout=node.log.open("ab"),
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if head:
            wait_for(lambda: self._running(node) and port_open(self.port), NODE_START_S,
                     every_s=0.2, what="the Ray head's GCS port",
                     detail=lambda: self.log_tail(node))
        wait_for(lambda: self._running(node) and self.alive_nodes() > before, NODE_START_S,
                 every_s=0.5,
                 what=f"Ray node {node.name} to join", detail=lambda: self.log_tail(node))

    def _running(self, node: RayNode) -> bool:
        assert node.process is not None
        if node.process.poll() is not None:
            raise AssertionError(f"ray start for {node.name} exited {node.process.returncode}:\n"
                                 f"{self.log_tail(node)}")
        return True

    def stop(self, node: RayNode) -> None:
        if node.process is not None:
            stop_process(node.process, 30.0)
            node.process = None

    def nodes(self) -> list[dict]:
        """`ray.nodes()` of the cluster, read by a client process of its own."""
        script = (f"import json, ray; ray.init(address={self.address!r}, logging_level='ERROR'); "
                  "print(json.dumps(ray.nodes()))")
        try:
            result = subprocess.run([sys.executable, "-c", script], env=self.env, text=True,
                                    capture_output=True, timeout=CLIENT_S)
        except subprocess.TimeoutExpired:
            return []  # the head's GCS is not up yet
        if result.returncode != 0:
            return []
        return json.loads(result.stdout.strip().splitlines()[-1])

    def alive_nodes(self) -> int:
        return sum(node["Alive"] for node in self.nodes())

    def log_tail(self, node: RayNode, lines: int = 20) -> str:
        if node.log is None or not node.log.exists():
            return ""
        return "\n".join(node.log.read_text(errors="replace").splitlines()[-lines:])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def ray_cluster(root: Path, workers: list[dict[str, str]], worker_cpus: int = 4,
                head_cpus: int = 1) -> Iterator[RayCluster]:
    """A head and one worker per label set in `workers`, all stopped on the way out."""
    root.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16),
               RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_ADDRESS", None)
    cluster = RayCluster(root, free_port(), env, RayNode("head", {}, head_cpus))
    try:
        cluster.start(cluster.head, head=True)
        for index, labels in enumerate(workers):
            node = RayNode(f"w{index}", labels, worker_cpus)
            cluster.workers.append(node)
            cluster.start(node)
        yield cluster
    finally:
        for node in [*reversed(cluster.workers), cluster.head]:
            cluster.stop(node)
