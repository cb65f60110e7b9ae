"""The farm at cluster scale on one machine: a head and two phone nodes started with
`ray start`, each worker with its own adb server and its own virtual phones. An audit run
through `bubblescope audit --address` places every device actor on the node that holds its
phone, gives a phone plugged in mid-job a run, and survives a worker's raylet killed and
brought back with no step lost or repeated."""

from __future__ import annotations

import json
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
    job_id: {job_id}
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
      accounts: accounts.yaml
      adb:
        app: {app}
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


def refused_for_accounts(folder: Path, cluster, jar: str) -> subprocess.CompletedProcess:
    """A real app's job (no minting) over a farm file with one fresh account per platform."""
    (folder / "accounts.yaml").write_text(
        "accounts:\n  - {id: d1, platform: douyin-like, phone: any}\n"
        "  - {id: n1, platform: 'null', phone: any}\n")
    job = write_job(folder, JOB.format(job_id="refused", app="douyin", steps=STEPS, jar=jar),
                    name="refused.yaml")
    return subprocess.run([sys.executable, "-m", "bubblescope.cluster.cli", "audit", str(job),
                           "--address", cluster.address, "--no-progress"], cwd=folder,
                          env=cluster.env, capture_output=True, text=True, timeout=180)


@pytest.mark.timeout(AUDIT_S + 420)
def test_an_audit_over_two_phone_nodes(tmp_path: Path) -> None:
    with private_adb_server(tmp_path / "adb0") as adb0, \
            private_adb_server(tmp_path / "adb1") as adb1:
        farms = [farm_up(tmp_path / "farm0", devices=2, time_warp=40.0, adb_port=adb0.port),
                 farm_up(tmp_path / "farm1", devices=2, time_warp=40.0, adb_port=adb1.port)]
        extra = None
        try:
            labels = [{PHONES_LABEL: "true", ADB_PORT_LABEL: str(adb.port)} for adb in (adb0, adb1)]
            with ray_cluster(Path("/tmp") / f"bs-{tmp_path.name[-12:]}", labels) as cluster:
                (tmp_path / "accounts.yaml").write_text("accounts: []\n")  # phones mint theirs
                job = write_job(tmp_path, JOB.format(job_id="farm", app="bubblescope-sim",
                                                     steps=STEPS, jar=farms[0].jar))
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
                refused = refused_for_accounts(tmp_path, cluster, farms[0].jar)
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
    accounts = {r["run_id"]: {x["account"] for x in rows if x["run_id"] == r["run_id"]}
                for r in rows}
    assert all(len(held) == 1 for held in accounts.values())
    assert len({next(iter(held)) for held in accounts.values()}) == 8  # a fresh one per run
    ledger = [json.loads(line) for line in
              (tmp_path / "accounts.yaml.ledger.jsonl").read_text().splitlines()]
    assert Counter(line["to"] for line in ledger) == {"created": 8, "in-use": 8, "cultivated": 8}
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "job refused needs 4 fresh douyin-like accounts; the farm has 1" in refused.stderr
    assert not (tmp_path / "out" / "refused" / "steps").exists()  # nothing started
