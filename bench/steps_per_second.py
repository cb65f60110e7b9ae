"""Steps per second vs device actors, and where each step's time goes.

What is measured, in one process and one local Ray:

- **in-process baseline**: one `DeviceActor` driven as a plain Python object, no Ray, each
  100-step chunk committed to a job store as the coordinator would. This is the pure cost of a
  simulated step (observe -> decide -> act -> record) plus the store's write cost.
- **N device actors** (1, 2, 4, 8, 16): a breadth-only job with exactly N equal runs, run by
  the real `Coordinator` Ray actor with `cpus_per_device: 0`, so all N actors run at once
  however many cores the machine has. The only addition is a stopwatch around the job store's
  `commit` (the `_TimedStore` below), because that write is part of the coordinator's loop
  but appears in none of its stage latencies.

Reported per row: wall-clock steps/s from `run()` start to end (includes actor start-up:
a Ray worker process per actor, imports, the simulated catalogue); steady steps/s over the
interval in which every run was stepping (read from the `recorded_at` of the stored steps);
the share of step time in observe / decide / act / record / Ray overhead (from the
coordinator's final latency stats; overhead is each chunk's wall time seen by the
coordinator minus the time the actor spent inside `advance`); the store's commit cost; and
the CPU time the coordinator process used per step.

Why: the audit's throughput should grow with device actors until the cores are saturated,
and coordination through Ray should cost a small share of a step. Speed is measured here,
never in timed tests.

    .venv/bin/python bench/steps_per_second.py [--steps-per-device N] [--out bench/RESULTS.md]

This file measures; `steps_report.py` beside it turns the rows into the RESULTS.md section.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import ray
from steps_report import SECTION, Row, Setting, load_average, machine_line, section, write_section

from bubblescope.actors.coordinator import Coordinator
from bubblescope.actors.device_actor import DeviceActor
from bubblescope.actors.loader import world_of
from bubblescope.actors.plan import plan_runs
from bubblescope.cluster.job import ResolvedJob, load_job
from bubblescope.metrics.live import STAGES
from bubblescope.store import JobStore

ROOT = Path(__file__).resolve().parents[1]
PERSONAS = ROOT / "examples" / "personas"
DEVICE_COUNTS = (1, 2, 4, 8, 16)
STEPS_PER_DEVICE = 4000
CHUNK = 1000  # checkpoint_every: most steps per committed chunk (the job default)
START_TIMEOUT_S = 120.0  # coordinator construction
MIN_RATE = 50.0  # steps/s below which a run is declared stuck (sets the run timeout)

JOB = """\
job_id: bench-{devices}
seed: 11
storage_path: store
personas: [{personas}/concentrated.yaml]
platforms: [douyin-like]
experiments: {{breadth: {{steps: {steps}}}}}
window: 50
replicates: {devices}
devices: {{count: {devices}, cpus_per_device: 0}}
metrics: {{port: null, bootstrap: 50}}
checkpoint_every: {chunk}
"""


# -- the job store, timed ---------------------------------------------------------------------
class _TimedStore:
    """A JobStore with a stopwatch around `commit`; everything else passes through."""

    def __init__(self, store: JobStore) -> None:
        self._store = store
        self.commit_s = 0.0

    def commit(self, run_id: str, steps: pa.Table, checkpoint: dict) -> None:
        began = time.perf_counter()
        self._store.commit(run_id, steps, checkpoint)
        self.commit_s += time.perf_counter() - began

    def __getattr__(self, name: str):
        return getattr(self._store, name)


class TimedCoordinator(Coordinator):
    """The real Coordinator; its final stats also carry the seconds spent committing and the
    CPU time its process (all threads, Ray's included) used during run()."""

    def __init__(self, job: ResolvedJob) -> None:
        super().__init__(job)
        self.store = _TimedStore(self.store)

    async def run(self) -> dict:
        cpu = time.process_time()
        stats = await super().run()
        stats["coordinator_cpu_s"] = time.process_time() - cpu
        stats["store_commit_s"] = self.store.commit_s
        return stats


# -- jobs -------------------------------------------------------------------------------------
def make_job(folder: Path, devices: int, steps: int) -> ResolvedJob:
    """A breadth-only job with exactly `devices` runs of `steps` steps, stored under folder."""
    path = folder / "job.yaml"
    path.write_text(JOB.format(devices=devices, steps=steps, personas=PERSONAS, chunk=CHUNK),
                    encoding="utf-8")
    job = load_job(path)
    runs = plan_runs(job)
    if len(runs) != devices or any(r.total_steps != steps for r in runs):
        raise RuntimeError(f"job for {devices} devices plans {len(runs)} runs, not {devices}")
    return job


# -- in-process baseline ----------------------------------------------------------------------
def measure_in_process(job: ResolvedJob, label: str) -> Row:
    """One DeviceActor as a plain object, chunks committed to the store: no Ray at all."""
    run = plan_runs(job)[0]
    store = JobStore(job.storage_path, job.job_id)
    stage_s = dict.fromkeys(STAGES, 0.0)
    store_s, steps = 0.0, 0
    began = time.perf_counter()
    actor = DeviceActor("sim-0", job.spec.devices, world_of(job))
    actor.start(run, job.personas[run.persona], job.spec.policy, None)
    while steps < run.total_steps:
        chunk = actor.advance(job.spec.checkpoint_every, job.spec.checkpoint_seconds)
        committing = time.perf_counter()
        store.commit(run.run_id, chunk.steps, chunk.checkpoint)
        store_s += time.perf_counter() - committing
        for stage, seconds in chunk.stage_s.items():
            stage_s[stage] += seconds
        steps += chunk.steps.num_rows
    wall_s = time.perf_counter() - began
    stored = store.read_steps()
    return Row(label, 0, 1, steps, wall_s, steady_rate(stored), stage_s, store_s,
               drift_us=step_cost_drift(stored))


# -- N device actors through the coordinator --------------------------------------------------
def run_coordinator(job: ResolvedJob, timeout_s: float) -> tuple[dict, float]:
    """Run the job on a fresh coordinator actor; returns its final stats and run() wall time."""
    coordinator = ray.remote(TimedCoordinator).options(num_cpus=0, max_concurrency=64).remote(job)
    try:
        ray.get(coordinator.stats.remote(), timeout=START_TIMEOUT_S)  # constructed, idle
        began = time.perf_counter()
        stats = ray.get(coordinator.run.remote(), timeout=timeout_s)
        return stats, time.perf_counter() - began
    finally:
        ray.kill(coordinator)


def steady_rate(table: pa.Table) -> float:
    """Steps/s while every run was stepping: from the last run's first step to the first
    run's last step (the whole span if the runs never all overlapped)."""
    stamps = table.column("recorded_at").cast(pa.int64()).to_numpy() / 1e6
    runs = np.asarray(table.column("run_id").to_pylist())
    firsts = [stamps[runs == r].min() for r in np.unique(runs)]
    lasts = [stamps[runs == r].max() for r in np.unique(runs)]
    start, end = max(firsts), min(lasts)
    if end - start < 0.5:
        start, end = stamps.min(), stamps.max()
    inside = int(((stamps >= start) & (stamps <= end)).sum())
    return max(inside - 1, 1) / max(end - start, 1e-6)


def step_cost_drift(table: pa.Table) -> dict[str, tuple[float, float]]:
    """Mean µs per step of each stage over the first and the last tenth of every run."""
    step = table.column("step").to_numpy()
    tenth = max(int(step.max() + 1) // 10, 1)
    first, last = step < tenth, step > step.max() - tenth
    drift = {}
    for stage in STAGES[:-1]:
        cost = 1e6 * table.column(f"latency_{stage}_s").to_numpy()
        drift[stage] = float(cost[first].mean()), float(cost[last].mean())
    return drift


def measure_devices(job: ResolvedJob) -> Row:
    """Run the job through the real Coordinator actor and read its stats and stored steps."""
    runs = plan_runs(job)
    expected = sum(r.total_steps for r in runs)
    stats, wall_s = run_coordinator(job, timeout_s=120.0 + expected / MIN_RATE)
    if stats["state"] != "done" or stats["steps_done"] != expected:
        raise RuntimeError(f"{job.job_id}: state {stats['state']}, {stats['steps_done']} of "
                           f"{expected} steps, failures {stats['failures']}")
    table = JobStore(job.storage_path, job.job_id).read_steps()
    if table.num_rows != expected:
        raise RuntimeError(f"{job.job_id}: the store holds {table.num_rows} of {expected} steps")
    stage_s = {stage: stats["latency"][stage]["sum"] for stage in STAGES}
    devices = job.spec.devices.count
    return Row(f"{devices} device actor{'s' * (devices > 1)}", devices, len(runs), expected,
               wall_s, steady_rate(table), stage_s, stats["store_commit_s"],
               stats["coordinator_cpu_s"], step_cost_drift(table))


def measure(devices: int, steps: int, label: str = "in-process, no Ray") -> Row:
    """One configuration in a fresh temporary storage folder, removed afterwards; 0 devices
    is the in-process baseline."""
    folder = Path(tempfile.mkdtemp(prefix=f"bubblescope-bench-{devices}-"))
    try:
        job = make_job(folder, max(devices, 1), steps)
        row = measure_devices(job) if devices else measure_in_process(job, label)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{row.label}: {row.wall_s:.1f} s, {row.steady_rate:.0f} steady steps/s", flush=True)
    return row


def measure_all(devices: Sequence[int], steps: int) -> list[Row]:
    """The baseline, every device count on one local Ray, then the baseline again (how much
    the machine's own speed moved during the run)."""
    rows = [measure(0, steps)]
    ray.init(include_dashboard=False, namespace="bubblescope-bench",
             logging_level=logging.WARNING, log_to_driver=False)
    try:
        rows += [measure(n, steps) for n in devices]
    finally:
        ray.shutdown()
    return [*rows, measure(0, steps, "in-process, no Ray (again, after)")]


# -- main -------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps-per-device", type=int, default=STEPS_PER_DEVICE,
                        help=f"steps of each device actor's run (default {STEPS_PER_DEVICE})")
    parser.add_argument("--devices", default=",".join(map(str, DEVICE_COUNTS)),
                        help="comma-separated device actor counts (default 1,2,4,8,16)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md",
                        help="Markdown file whose section this benchmark writes")
    args = parser.parse_args(argv)
    args.devices = [int(n) for n in args.devices.split(",")]
    if args.steps_per_device < CHUNK or any(n < 1 for n in args.devices) or not args.devices:
        parser.error(f"--steps-per-device must be >= {CHUNK} and device counts >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    began, load_before = datetime.now(UTC), load_average()
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        print(f"warning: load average {load_before} on {os.cpu_count()} CPUs; other work will "
              "lower the rates measured", file=sys.stderr)
    rows = measure_all(args.devices, args.steps_per_device)
    setting = Setting(args.steps_per_device, CHUNK, tuple(args.devices), began, machine_line(),
                      load_before, load_average())
    text = section(rows, setting)
    write_section(args.out, SECTION, text)
    print(f"\n{text}\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
