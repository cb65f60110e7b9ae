"""Crashes lose nothing and repeat nothing: killed device actors, a killed coordinator,
a killed CLI process, and Ctrl-C. Each interrupted job is compared, step for step, with
the same job run without interruption.

Unpaced, the whole job runs in about two seconds, so a kill could land after the end. Every
interrupted run is paced (`devices.sim_pace`, which never changes results) so that it takes
at least PACED_MIN_S of wall-clock time, and each test asserts that its kill landed while the
run was incomplete rather than assuming it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow.compute as pc
import pytest
import ray

from bubblescope.actors.coordinator import Coordinator
from bubblescope.cluster.job import load_job
from bubblescope.cluster.local import AuditOptions, run_audit
from bubblescope.store import JobStore
from tests.conftest import write_job
from tests.support.processes import stop_process
from tests.support.wait import wait_for

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
TOTAL_STEPS = 6 * 1800  # 2 personas x 3 replicates, 900 + 900 steps each
# The job's runs hold about 173,000 device seconds (9.6 per step), shared by its 2 devices:
# at 3000 device seconds per wall-clock second it cannot finish in under ~29 s, however fast
# the machine (unpaced it takes ~2 s). A kill waits for the first 40-100 steps (~1 s of it).
PACE = 3000
PACED_MIN_S = 29
PACED_JOB = LONG_JOB.replace("max_restarts: 10}", f"max_restarts: 10, sim_pace: {PACE}}}")
DEADLINE_S = 120  # for a (paced) job to finish, or a CLI to exit
KILL_WAIT_S = 60  # for a run to make the progress a kill waits for


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


def steps_done(store: JobStore) -> int:
    """Steps committed to the store, from its file names alone; 0 before the first."""
    try:
        return sum(store.next_step(r) for r in store.run_ids())
    except FileNotFoundError:
        return 0


def restarts(stats: dict) -> int:
    return sum(d["restarts"] for d in stats["devices"].values())


def kill_a_running_device(coordinator) -> int:
    """SIGKILL a device actor that is mid-run, wait until the coordinator has restarted it,
    and return the steps done just before the kill."""
    def running() -> tuple[int, dict] | None:
        stats = ray.get(coordinator.stats.remote(), timeout=30)
        busy = [d for d in stats["devices"].values()
                if d["state"] == "running" and d["pid"] and d["steps"] > 0]
        return (busy[0]["pid"], stats) if busy else None

    pid, stats = wait_for(running, KILL_WAIT_S, what="a device actor with steps done")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: restarts(ray.get(coordinator.stats.remote(), timeout=30)) > restarts(stats),
             KILL_WAIT_S, what=f"the coordinator to restart the killed device (pid {pid})")
    return stats["steps_done"]


@pytest.mark.timeout(DEADLINE_S * 2 + KILL_WAIT_S * 6 + 60)  # the reference, 3 kills, the run
def test_killed_device_actors_resume_without_loss_or_duplicates(tmp_path, ray_local,
                                                                reference) -> None:
    job = load_job(write_job(tmp_path, PACED_JOB))
    coordinator = ray.remote(Coordinator).options(num_cpus=0, max_concurrency=8).remote(job)
    done = coordinator.run.remote()
    at_kills = [kill_a_running_device(coordinator) for _ in range(3)]  # three times, mid-run
    assert max(at_kills) < TOTAL_STEPS, at_kills  # each kill landed while the run was incomplete
    final = ray.get(done, timeout=DEADLINE_S)
    assert final["state"] == "done"
    assert restarts(final) >= 3
    store = JobStore(job.storage_path, job.job_id)
    assert_exactly_once(store, job)
    assert steps_of(store) == reference  # as if nothing had happened


@pytest.mark.timeout(DEADLINE_S * 3 + KILL_WAIT_S + 60)  # the reference, the kill, two runs
def test_a_killed_coordinator_is_recreated_by_the_driver(tmp_path, ray_local, reference,
                                                         capsys) -> None:
    job = load_job(write_job(tmp_path, PACED_JOB))
    store = JobStore(job.storage_path, job.job_id)
    at_kill: list[int] = []

    def kill_coordinator_mid_run() -> None:  # a failed wait leaves at_kill empty: test fails
        wait_for(lambda: store.exists("steps") and len(store.run_ids()) > 0
                 and any(store.next_step(r) > 100 for r in store.run_ids()), KILL_WAIT_S,
                 what="a run past step 100 before the kill")
        at_kill.append(steps_done(store))
        ray.kill(ray.get_actor(f"coordinator-{job.job_id}", namespace="bubblescope"))

    killer = threading.Thread(target=kill_coordinator_mid_run, daemon=True)
    killer.start()
    code = run_audit(job, AuditOptions(progress=False, metrics_port=None))
    killer.join(timeout=5)
    assert code == 0
    assert at_kill and at_kill[0] < TOTAL_STEPS, at_kill  # killed while incomplete
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


@pytest.mark.timeout(DEADLINE_S * 2 + KILL_WAIT_S + 90)  # the reference, the kill, the rerun
def test_killed_cli_process_resumes_when_rerun(tmp_path, reference) -> None:
    write_job(tmp_path, PACED_JOB)
    store = JobStore(str(tmp_path / "out"), "long")
    process = cli(tmp_path)
    try:
        wait_for(progressed(store), KILL_WAIT_S, what="40 steps of a run before the kill")
        at_kill = steps_done(store)
        os.killpg(process.pid, signal.SIGKILL)  # the crash: the whole group, Ray included
    finally:
        stop_process(process, 30, group=True)  # reaps it (and sweeps up on a failed wait)
    assert at_kill < TOTAL_STEPS and not store.exists("summary.json")  # killed mid-run
    write_job(tmp_path, LONG_JOB)  # resuming unpaced: pacing is not part of the job's identity
    rerun = cli(tmp_path)
    output, _ = rerun.communicate(timeout=DEADLINE_S)
    assert rerun.returncode == 0, output
    assert "resuming job long" in output
    assert_exactly_once(store, None)
    assert steps_of(store) == reference


@pytest.mark.timeout(DEADLINE_S * 5 + KILL_WAIT_S + 60)  # reference, stop, report, rerun
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_stops_cleanly_and_report_works_on_the_partial_job(tmp_path, reference,
                                                                   stop_signal) -> None:
    write_job(tmp_path, PACED_JOB)  # so the signal lands mid-run however loaded the machine
    store = JobStore(str(tmp_path / "out"), "long")
    process = cli(tmp_path)
    wait_for(progressed(store), KILL_WAIT_S, what="40 steps of a run before the signal")
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
