"""A local S3 for tests: moto's server as a subprocess, stopped by its PID.

Ray Serve LLM loads LoRA adapters only from cloud folders (s3://, gs://, azure://); the
tests serve them from this server, reached the way real S3 is (boto3, with
AWS_ENDPOINT_URL pointing here), so the production upload and download code runs.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import stop_process
from tests.support.system_programs import free_port
from tests.support.wait import wait_for

START_TIMEOUT_S = 60.0
# moto accepts any credentials; real ones must never be needed (or read) by a test.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass(frozen=True)
class S3Server:
    url: str
    log: Path

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to reach this S3 as it would reach AWS's."""
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.url, "AWS_ENDPOINT_URL_S3": self.url}

    def create_bucket(self, name: str) -> str:
        import boto3

        client = boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        client.create_bucket(Bucket=name)
        return f"s3://{name}"

    def log_tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def running_s3(workdir: Path) -> Iterator[S3Server]:
    """moto's S3 server on a free local port for the duration of the block."""
    port = free_port()
    log = workdir / "moto.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                    "-p", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    server = S3Server(f"http://127.0.0.1:{port}", log)
    try:
        wait_for(lambda: process.poll() is not None or _listening(port), START_TIMEOUT_S,
                 every_s=0.2, what="moto's S3 server to listen", detail=server.log_tail)
        assert process.poll() is None, f"moto's S3 server exited:\n{server.log_tail()}"
        yield server
    finally:
        stop_process(process, group=True)
