"""Crashes lose nothing and repeat nothing: killed device actors, a killed coordinator,
a killed CLI process, and Ctrl-C. Each interrupted job is compared, step for step, with
the same job run without interruption."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.compute as pc
import pytest
import ray

from bubblescope.actors.coordinator import Coordinator
from bubblescope.cluster.job import load_job
from bubblescope.cluster.local import AuditOptions, run_audit
from bubblescope.store import JobStore
from tests.conftest import write_job

LONG_JOB = """
    job_id: long
    seed: 5
    storage_path: out
    personas: [PERSONAS/concentrated.yaml, PERSONAS/dispersed.yaml]
    platforms: [kuaishou-like]
    experiments:
      depth: {cultivation_steps: 900, counterfactual_steps: 900}
    window: 20
    replicates: 3
    devices: {count: 2, cpus_per_device: 0.5, max_restarts: 10}
    metrics: {port: null, bootstrap: 60}
    checkpoint_every: 20
"""
COMPARED = ["run_id", "step", "phase", "phase_step", "video_id", "category", "device_time",
            "decided_watch_s", "action_watch_s", "action_like"]
DEADLINE_S = 120


def steps_of(store: JobStore) -> list[dict]:
    table = store.read_steps().select(COMPARED)
    return table.sort_by([("run_id", "ascending"), ("step", "ascending")]).to_pylist()


def assert_exactly_once(store: JobStore, job) -> None:
    table = store.read_steps()
    for run_id in {r for r in table.column("run_id").to_pylist()}:
        steps = table.filter(pc.equal(table["run_id"], run_id)).column("step").to_pylist()
        assert sorted(steps) == list(range(1800)), run_id  # none lost, none twice
    assert len(set(table.column("run_id").to_pylist())) == 6


@pytest.fixture(scope="module")
def reference(tmp_path_factory, ray_local) -> list[dict]:
    """The job run once without interruption."""
    folder = tmp_path_factory.mktemp("reference")
    job = load_job(write_job(folder, LONG_JOB))
    coordinator = ray.remote(Coordinator).options(num_cpus=0, max_concurrency=8).remote(job)
    assert ray.get(coordinator.run.remote(), timeout=DEADLINE_S)["state"] == "done"
    ray.kill(coordinator)
    return steps_of(JobStore(job.storage_path, job.job_id))


def wait_for(predicate, timeout: float = DEADLINE_S, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"condition not met within {timeout} s")


def test_killed_device_actors_resume_without_loss_or_duplicates(tmp_path, ray_local,
                                                                reference) -> None:
    job = load_job(write_job(tmp_path, LONG_JOB))
    coordinator = ray.remote(Coordinator).options(num_cpus=0, max_concurrency=8).remote(job)
    done = coordinator.run.remote()
    for _ in range(3):  # kill a running device actor three times, mid-run
        def running_pid():
            stats = ray.get(coordinator.stats.remote(), timeout=30)
            busy = [d for d in stats["devices"].values()
                    if d["state"] == "running" and d["pid"] and d["steps"] > 0]
            return busy[0]["pid"] if busy and stats["steps_done"] < 8000 else None
        os.kill(wait_for(running_pid), signal.SIGKILL)
        time.sleep(0.3)
    final = ray.get(done, timeout=DEADLINE_S)
    assert final["state"] == "done"
    assert sum(d["restarts"] for d in final["devices"].values()) >= 3
    store = JobStore(job.storage_path, job.job_id)
    assert_exactly_once(store, job)
    assert steps_of(store) == reference  # as if nothing had happened


def test_a_killed_coordinator_is_recreated_by_the_driver(tmp_path, ray_local, reference,
                                                         capsys) -> None:
    job = load_job(write_job(tmp_path, LONG_JOB))
    store = JobStore(job.storage_path, job.job_id)

    def kill_coordinator_mid_run() -> None:
        wait_for(lambda: store.exists("steps") and len(store.run_ids()) > 0
                 and any(store.next_step(r) > 100 for r in store.run_ids()))
        ray.kill(ray.get_actor(f"coordinator-{job.job_id}", namespace="bubblescope"))

    killer = threading.Thread(target=kill_coordinator_mid_run, daemon=True)
    killer.start()
    code = run_audit(job, AuditOptions(progress=False, metrics_port=None))
    killer.join(timeout=5)
    assert code == 0
    assert "coordinator died" in capsys.readouterr().err
    assert_exactly_once(store, job)
    assert steps_of(store) == reference


def cli(folder: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bubblescope.cluster.cli", "audit", str(folder / "job.yaml"),
         "--no-progress", "--no-metrics", *extra],
        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)


def progressed(store: JobStore, steps: int = 40):
    def check() -> bool:
        try:
            return any(store.next_step(r) >= steps for r in store.run_ids())
        except FileNotFoundError:
            return False
    return check


def test_killed_cli_process_resumes_when_rerun(tmp_path, reference) -> None:
    write_job(tmp_path, LONG_JOB)
    store = JobStore(str(tmp_path / "out"), "long")
    process = cli(tmp_path)
    try:
        wait_for(progressed(store))
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the whole process group, Ray included
        process.wait(timeout=30)
    assert not store.exists("summary.json")
    rerun = cli(tmp_path)
    output, _ = rerun.communicate(timeout=DEADLINE_S)
    assert rerun.returncode == 0, output
    assert "resuming job long" in output
    assert_exactly_once(store, None)
    assert steps_of(store) == reference


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_stops_cleanly_and_report_works_on_the_partial_job(tmp_path, reference,
                                                                   stop_signal) -> None:
    # Paced (which never changes results) so the signal lands mid-run however loaded the
    # machine is: unpaced, the whole job can run in the seconds a starved test takes to look.
    write_job(tmp_path, LONG_JOB.replace("max_restarts: 10}", "max_restarts: 10, "
                                         "sim_pace: 300}"))
    store = JobStore(str(tmp_path / "out"), "long")
    process = cli(tmp_path)
    wait_for(progressed(store))
    # Ctrl-C in a terminal signals the whole process group; SIGTERM comes to the driver alone
    if stop_signal == signal.SIGINT:
        os.killpg(process.pid, stop_signal)
    else:
        os.kill(process.pid, stop_signal)
    output, _ = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 130, output
    assert "partial results" in output
    summary = (tmp_path / "out" / "long" / "summary.json").read_text()
    assert '"complete": false' in summary
    partial = steps_of(store)
    assert 0 < len(partial) < len(reference)
    for run_id in {r["run_id"] for r in partial}:  # each run holds a clean prefix
        mine = [r for r in partial if r["run_id"] == run_id]
        assert mine == [r for r in reference if r["run_id"] == run_id][:len(mine)]
    report = subprocess.run([sys.executable, "-m", "bubblescope.cluster.cli", "report",
                             str(tmp_path / "out" / "long")], capture_output=True, text=True,
                            timeout=DEADLINE_S)
    assert report.returncode == 0 and "partial job long" in report.stdout
    write_job(tmp_path, LONG_JOB)  # resuming unpaced: pacing is not part of the job's identity
    rerun = cli(tmp_path)
    output, _ = rerun.communicate(timeout=DEADLINE_S)
    assert rerun.returncode == 0, output
    assert steps_of(store) == reference
