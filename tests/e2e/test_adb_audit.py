"""Acceptance of the device path: a farm of virtual phones on the real adb server, audited
through adb + scrcpy with the same coordinator as the in-process backend; and a phone killed
and restarted mid-run."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from bubblescope.cluster.cli import main
from bubblescope.cluster.job import load_job
from bubblescope.cluster.local import AuditOptions, run_audit
from bubblescope.sim.android.farm import farm_down, farm_status, farm_up, restart_phone
from tests.conftest import write_job
from tests.support.adb_server import private_adb_server
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow

KILL_WAIT_S = 240  # until six step parts are written and a phone can be killed
ADB_JOB = """
    job_id: {job_id}
    seed: 4
    storage_path: out
    personas: [PERSONAS/concentrated.yaml, PERSONAS/dispersed.yaml]
    platforms: [douyin-like, "null"]
    experiments:
      depth: {{cultivation_steps: {steps}, counterfactual_steps: {steps}}}
    window: 5
    replicates: 1
    devices:
      backend: {backend}
      count: 4
      adb:
        port: {adb_port}
        glance_s: 1.0
        scrcpy: {{server_jar: {jar}, max_fps: 4}}
        speech: {{enabled: false}}
    metrics: {{port: null, bootstrap: 50}}
    checkpoint_seconds: 0.3
"""


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("farm")
    with private_adb_server(folder) as adb:
        record = farm_up(folder / "farm", devices=4, time_warp=40.0, adb_port=adb.port)
        try:
            yield folder, adb, record
        finally:
            farm_down(folder / "farm")


def job_file(folder: Path, farm_record, adb_port: int, job_id: str, backend: str = "adb",
             steps: int = 8) -> Path:
    body = ADB_JOB.format(job_id=job_id, steps=steps, backend=backend, adb_port=adb_port,
                          jar=farm_record.jar)
    return write_job(folder, body, name=f"{job_id}.yaml")


def steps_of(folder: Path, job_id: str) -> list[dict]:
    return ds.dataset(folder / "out" / job_id / "steps").to_table().to_pylist()


def test_farm_up_lists_four_devices_on_adb(farm) -> None:
    _, adb, record = farm
    states = adb.states()
    assert sorted(states) == sorted(p.serial for p in record.phones)
    assert set(states.values()) == {"device"}
    assert all(p["process"] == "running" for p in farm_status(farm[0] / "farm"))


def test_adb_audit_matches_the_in_process_backend(farm, tmp_path: Path) -> None:
    _, adb, record = farm
    adb_job = job_file(tmp_path, record, adb.port, "viaadb")
    sim_job = job_file(tmp_path, record, adb.port, "inprocess", backend="sim")
    for job in (adb_job, sim_job):
        assert main(["audit", str(job), "--no-progress", "--no-metrics"]) == 0
    summaries = {j: json.loads((tmp_path / "out" / j / "summary.json").read_text())
                 for j in ("viaadb", "inprocess")}
    assert summaries["viaadb"]["complete"] and summaries["inprocess"]["complete"]
    run_keys = {j: {frozenset(r) for r in s["runs"]} for j, s in summaries.items()}
    assert run_keys["viaadb"] == run_keys["inprocess"]  # the same outputs, field for field
    assert {r["run_id"] for r in summaries["viaadb"]["runs"]} == \
        {r["run_id"] for r in summaries["inprocess"]["runs"]}
    assert all(r["bep"] is not None and r["bep_ci"] for r in summaries["viaadb"]["runs"])
    rows = steps_of(tmp_path, "viaadb")
    assert len(rows) == 4 * 16
    assert max(Counter((r["run_id"], r["step"]) for r in rows).values()) == 1
    assert {r["device"] for r in rows} <= {p.serial for p in record.phones}
    agree = sum(r["category"].split("/")[0] == r["category_truth"].split("/")[0] for r in rows)
    assert agree / len(rows) >= 0.9, agree / len(rows)  # classified from the screen's text
    assert all(r["latency_observe_s"] > 0 and r["latency_act_s"] > 0 for r in rows)


@pytest.mark.timeout(KILL_WAIT_S + 180)  # the wait before the kill, then the rest of the run
def test_a_phone_killed_and_restarted_mid_run_loses_no_step(farm, tmp_path: Path) -> None:
    folder, adb, record = farm
    job = load_job(job_file(tmp_path, record, adb.port, "survivor", steps=30))
    victim = record.phones[0]
    killed = threading.Event()

    def kill_then_restart() -> None:  # a failed wait leaves `killed` unset: the test fails
        steps_dir = tmp_path / "out" / "survivor" / "steps"
        wait_for(lambda: steps_dir.exists() and len(list(steps_dir.glob("*/part-*.parquet"))) >= 6,
                 KILL_WAIT_S, every_s=0.2, what="six step parts before the kill")
        restart_phone(folder / "farm", victim.name, kill=True)  # SIGKILL, then up again
        killed.set()

    chaos = threading.Thread(target=kill_then_restart, daemon=True)
    chaos.start()
    assert run_audit(job, AuditOptions(progress=False, metrics_port=None)) == 0
    chaos.join(timeout=30)
    assert killed.is_set()
    rows = steps_of(tmp_path, "survivor")
    by_run = Counter(r["run_id"] for r in rows)
    assert set(by_run.values()) == {60} and len(by_run) == 4
    assert max(Counter((r["run_id"], r["step"]) for r in rows).values()) == 1
    steps = sorted(r["step"] for r in rows if r["device"] == victim.serial)
    assert steps, "the killed phone ran no step"
