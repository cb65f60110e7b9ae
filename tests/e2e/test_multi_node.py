"""The farm at cluster scale on one machine: a head and two phone nodes started with
`ray start`, each worker with its own adb server and its own virtual phones. An audit run
through `bubblescope audit --address` places every device actor on the node that holds its
phone, gives a phone plugged in mid-job a run, and survives a worker's raylet killed and
brought back with no step lost or repeated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from bubblescope.actors.phone_nodes import ADB_PORT_LABEL, PHONES_LABEL
from bubblescope.sim.android.farm import farm_down, farm_up
from tests.conftest import write_job
from tests.support.adb_server import private_adb_server
from tests.support.processes import stop_process
from tests.support.ray_cluster import ray_cluster
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow

AUDIT_S = 420  # the whole audit, with a worker down for a while
STEPS = 12  # per phase; two phases per depth run
JOB = """
    job_id: farm
    seed: 5
    storage_path: out
    personas: [PERSONAS/concentrated.yaml, PERSONAS/dispersed.yaml]
    platforms: [douyin-like, "null"]
    experiments:
      depth: {{cultivation_steps: {steps}, counterfactual_steps: {steps}}}
    window: 5
    replicates: 2
    devices:
      backend: adb
      cpus_per_device: 0.5
      adb:
        glance_s: 1.0
        online_timeout_s: 240
        scrcpy: {{server_jar: {jar}, max_fps: 4}}
        speech: {{enabled: false}}
    metrics: {{port: null, bootstrap: 50}}
    checkpoint_seconds: 0.3
"""


def parts(out: Path, audit: subprocess.Popen) -> int:
    """Step files written so far; an audit that has exited fails the wait at once."""
    assert audit.poll() is None, f"the audit exited {audit.returncode} early"
    return len(list((out / "farm" / "steps").glob("*/part-*.parquet")))


@pytest.mark.timeout(AUDIT_S + 240)
def test_an_audit_over_two_phone_nodes(tmp_path: Path) -> None:
    with private_adb_server(tmp_path / "adb0") as adb0, \
            private_adb_server(tmp_path / "adb1") as adb1:
        farms = [farm_up(tmp_path / "farm0", devices=2, time_warp=40.0, adb_port=adb0.port),
                 farm_up(tmp_path / "farm1", devices=2, time_warp=40.0, adb_port=adb1.port)]
        extra = None
        try:
            labels = [{PHONES_LABEL: "true", ADB_PORT_LABEL: str(adb.port)} for adb in (adb0, adb1)]
            with ray_cluster(Path("/tmp") / f"bs-{tmp_path.name[-12:]}", labels) as cluster:
                job = write_job(tmp_path, JOB.format(steps=STEPS, jar=farms[0].jar))
                audit = subprocess.Popen(
                    [sys.executable, "-m", "bubblescope.cluster.cli", "audit", str(job),
                     "--address", cluster.address, "--no-progress"],
                    cwd=tmp_path, env=cluster.env, stdout=(tmp_path / "audit.log").open("wb"),
                    stderr=subprocess.STDOUT)

                def log() -> str:
                    return (tmp_path / "audit.log").read_text(errors="replace")[-3000:]

                try:
                    out = tmp_path / "out"
                    wait_for(lambda: parts(out, audit) >= 4, 180, every_s=0.5,
                             what="the first steps on the farm", detail=log)
                    extra = farm_up(tmp_path / "farm-extra", devices=1, time_warp=40.0,
                                    adb_port=adb0.port)  # plugged into node 0 mid-job
                    wait_for(lambda: parts(out, audit) >= 12, 180, every_s=0.5,
                             what="more steps before the kill", detail=log)
                    victim = cluster.workers[1]
                    os.kill(victim.raylet_pid(), signal.SIGKILL)  # a crash, not a shutdown
                    cluster.stop(victim)  # then what is left of the node
                    parts(out, audit)  # the audit was still running when the node died
                    cluster.start(victim)  # back, under a new node id
                    assert audit.wait(timeout=AUDIT_S) == 0, log()
                finally:
                    stop_process(audit, 30.0)
                nodes = cluster.nodes()
        finally:
            for farm_dir in ("farm0", "farm1", "farm-extra"):
                if (tmp_path / farm_dir).exists():
                    farm_down(tmp_path / farm_dir)

    rows = ds.dataset(tmp_path / "out" / "farm" / "steps").to_table().to_pylist()
    by_run = Counter(r["run_id"] for r in rows)
    assert len(by_run) == 8 and set(by_run.values()) == {2 * STEPS}
    assert max(Counter((r["run_id"], r["step"]) for r in rows).values()) == 1  # none twice
    port_of_node = {n["NodeID"]: int(n["Labels"][ADB_PORT_LABEL]) for n in nodes
                    if ADB_PORT_LABEL in (n.get("Labels") or {})}
    adb_of_serial = {p.serial: farm.adb_port for farm in farms for p in farm.phones}
    adb_of_serial.update({p.serial: extra.adb_port for p in extra.phones} if extra else {})
    assert all(port_of_node[r["node"]] == adb_of_serial[r["device"]] for r in rows)
    assert extra is not None and {p.serial for p in extra.phones} & {r["device"] for r in rows}
    restarted = [n["NodeID"] for n in nodes if n["Labels"].get(ADB_PORT_LABEL) == str(adb1.port)]
    assert len(restarted) == 2 and all(any(r["node"] == n for r in rows) for n in restarted)
