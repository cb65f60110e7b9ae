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
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import ray

from bubblescope.actors.coordinator import Coordinator, world_of
from bubblescope.actors.device_actor import DeviceActor
from bubblescope.actors.plan import plan_runs
from bubblescope.cluster.job import ResolvedJob, load_job
from bubblescope.metrics.live import STAGES
from bubblescope.store import JobStore

ROOT = Path(__file__).resolve().parents[1]
PERSONAS = ROOT / "examples" / "personas"
DEVICE_COUNTS = (1, 2, 4, 8, 16)
STEPS_PER_DEVICE = 4000
CHUNK = 100  # checkpoint_every: steps per committed chunk
START_TIMEOUT_S = 120.0  # coordinator construction
MIN_RATE = 50.0  # steps/s below which a run is declared stuck (sets the run timeout)
SECTION = "## Steps per second vs device actors (simulated, in-process devices)"

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


@dataclass
class Row:
    """One line of the table: a configuration and what it measured."""

    label: str
    devices: int  # 0 for the in-process baseline
    runs: int
    steps: int
    wall_s: float
    steady_rate: float  # steps/s while every run was stepping
    stage_s: dict[str, float]  # summed seconds per stage (STAGES)
    store_s: float  # summed seconds inside JobStore.commit
    coordinator_cpu_s: float | None = None  # CPU time of the coordinator process over run()
    drift_us: dict[str, tuple[float, float]] | None = None  # stage µs/step: first, last tenth

    @property
    def rate(self) -> float:
        return self.steps / self.wall_s

    def share(self, stage: str) -> float:
        return 100.0 * self.stage_s[stage] / sum(self.stage_s.values())

    def per_step_us(self, seconds: float) -> float:
        return 1e6 * seconds / self.steps


# -- the job store, timed ---------------------------------------------------------------------
class _TimedStore:
    """A JobStore with a stopwatch around `commit`; everything else passes through."""

    def __init__(self, store: JobStore) -> None:
        self._store = store
        self.commit_s = 0.0

    def commit(self, run_id: str, rows: list[dict], checkpoint: dict) -> None:
        began = time.perf_counter()
        self._store.commit(run_id, rows, checkpoint)
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
def measure_in_process(job: ResolvedJob) -> Row:
    """One DeviceActor as a plain object, chunks committed to the store: no Ray at all."""
    run = plan_runs(job)[0]
    store = JobStore(job.storage_path, job.job_id)
    stage_s = dict.fromkeys(STAGES, 0.0)
    store_s, steps = 0.0, 0
    began = time.perf_counter()
    actor = DeviceActor("sim-0", world_of(job))
    actor.start(run, job.personas[run.persona], job.spec.policy.kind, None)
    while steps < run.total_steps:
        chunk = actor.advance(job.spec.checkpoint_every)
        committing = time.perf_counter()
        store.commit(run.run_id, chunk.rows, chunk.checkpoint)
        store_s += time.perf_counter() - committing
        for stage, seconds in chunk.stage_s.items():
            stage_s[stage] += seconds
        steps += len(chunk.rows)
    wall_s = time.perf_counter() - began
    stored = store.read_steps()
    return Row("in-process, no Ray", 0, 1, steps, wall_s, steady_rate(stored), stage_s, store_s,
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
    return (inside - 1) / (end - start)


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


def measure(devices: int, steps: int) -> Row:
    """One configuration in a fresh temporary storage folder, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=f"bubblescope-bench-{devices}-"))
    try:
        job = make_job(folder, max(devices, 1), steps)
        return measure_devices(job) if devices else measure_in_process(job)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- the machine ------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{cpu_model()} ({platform.machine()}), {os.cpu_count()} CPUs ({usable} usable), "
            f"{platform.system()} {platform.release()}; Python {platform.python_version()}, "
            f"Ray {ray.__version__}")


def load_average() -> str:
    """1/5/15-minute load average of the machine."""
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


# -- the report -------------------------------------------------------------------------------
HEADER = ("| devices | runs | steps | wall s | steps/s | steady steps/s | speed-up vs 1 "
          "| observe % | decide % | act % | record % | Ray overhead % | overhead µs/step "
          "| store µs/step | coordinator CPU µs/step |")


def table_line(row: Row, one: Row | None) -> str:
    speedup = f"{row.steady_rate / one.steady_rate:.2f}x" if one and row.devices else "-"
    overhead = row.stage_s["overhead"]
    shares = " | ".join(f"{row.share(s):.1f}" for s in STAGES[:-1])
    ray_cells = (f"{row.share('overhead'):.1f} | {row.per_step_us(overhead):.0f}" if row.devices
                 else "- | -")
    cpu = "-" if row.coordinator_cpu_s is None else f"{row.per_step_us(row.coordinator_cpu_s):.0f}"
    return (f"| {row.label} | {row.runs} | {row.steps} | {row.wall_s:.1f} | {row.rate:.0f} "
            f"| {row.steady_rate:.0f} | {speedup} | {shares} | {ray_cells} "
            f"| {row.per_step_us(row.store_s):.0f} | {cpu} |")


def table(rows: Sequence[Row]) -> str:
    one = next((r for r in rows if r.devices == 1), None)
    rule = "|" + "---|" * HEADER.count(" | ") + "---|"
    return "\n".join([HEADER, rule, *(table_line(r, one) for r in rows)])


def interpretation(rows: Sequence[Row]) -> list[str]:
    """A few sentences read off the numbers, so a re-run rewrites them to match."""
    base = next(r for r in rows if not r.devices)
    actors = [r for r in rows if r.devices]
    lines = [_saturation_line(base, actors), *_ray_cost_lines(base, actors),
             _drift_line(base.drift_us or {})]
    startup = [r for r in actors if r.rate < 0.9 * r.steady_rate]
    if startup:
        lines.append(
            "Wall-clock steps/s trail steady steps/s where actor start-up (a Ray worker "
            "process, imports and the simulated catalogue per actor) is a visible part of the "
            f"run: {', '.join(str(r.devices) for r in startup)} device actors here.")
    return lines


def _saturation_line(base: Row, actors: Sequence[Row]) -> str:
    """Where throughput stops growing, against the ceiling the cores allow."""
    best = max(actors, key=lambda r: r.steady_rate)
    knee = next(r for r in actors if r.steady_rate >= 0.9 * best.steady_rate)
    cores = os.cpu_count() or 1
    step_us = base.per_step_us(sum(base.stage_s.values()))
    coordinator_us = float(np.median([r.per_step_us(r.coordinator_cpu_s or 0.0)
                                      for r in actors]))
    ceiling = cores * 1e6 / (step_us + coordinator_us)
    return (f"Steady throughput peaks at {best.steady_rate:.0f} steps/s with {best.label} and "
            f"is within 10% of that from {knee.label} on. A step needs about {step_us:.0f} µs "
            f"of CPU in its actor (in-process) plus {coordinator_us:.0f} µs in the coordinator, "
            f"so {cores} cores allow at most about {ceiling:.0f} steps/s "
            f"({100 * best.steady_rate / ceiling:.0f}% reached; the raylet, pickling and the "
            "rest of the machine take the remainder); device actors beyond that only "
            "time-slice the same cores.")


def _ray_cost_lines(base: Row, actors: Sequence[Row]) -> list[str]:
    one = actors[0]
    shares = [r.share("overhead") for r in actors]
    worst = actors[int(np.argmax(shares))]
    cpu = [r.per_step_us(r.coordinator_cpu_s or 0.0) for r in actors]
    store = [r.per_step_us(r.store_s) for r in actors]
    return [
        f"In-process, one core steps {base.steady_rate:.0f} steps/s; {one.label} through "
        f"Ray reach{'es' * (one.devices == 1)} {one.steady_rate:.0f} "
        f"({100 * one.steady_rate / base.steady_rate:.0f}%), with Ray overhead of "
        f"{one.per_step_us(one.stage_s['overhead']):.0f} µs/step (one round trip per "
        f"{CHUNK}-step chunk of rows).",
        f"Ray overhead is {min(shares):.1f}% to {max(shares):.1f}% of step time, largest with "
        f"{worst.label} ({worst.per_step_us(worst.stage_s['overhead']):.0f} µs/step): once "
        "actors outnumber cores it is mostly waiting, for a share of a core and for the "
        "coordinator, whose single event loop commits every chunk to the store in turn.",
        f"The coordinator process uses {min(cpu):.0f}-{max(cpu):.0f} µs of CPU per step, "
        "whatever the number of actors: the job store's commit (a checkpoint JSON and a "
        f"Parquet part per chunk: {min(store):.0f}-{max(store):.0f} µs of wall time per step), "
        "receiving the chunks and the live metrics; one coordinator would fill a core near "
        f"{1e6 / max(min(cpu), 1.0):.0f} steps/s.",
    ]


def _drift_line(drift: dict[str, tuple[float, float]]) -> str:
    first = sum(f for f, _ in drift.values())
    last = sum(b for _, b in drift.values())
    if last < 1.15 * first:
        return (f"In-process, a step costs about the same early and late in a run ({first:.0f} "
                f"µs over its first tenth, {last:.0f} µs over its last).")
    grew = max(drift, key=lambda s: drift[s][1] - drift[s][0])
    return (f"A step costs more late in a run: in-process, {first:.0f} µs over a run's first "
            f"tenth, {last:.0f} µs over its last, most of the growth in {grew} (the simulated "
            "feed avoids videos the account has seen and searches longer as its history grows; "
            "the checkpoint carries that history too), so rates depend on --steps-per-device.")


@dataclass(frozen=True)
class Setting:
    """Where and when the benchmark ran."""

    steps: int  # per device actor
    began: datetime
    machine: str
    load_before: str
    load_after: str


def section(rows: Sequence[Row], setting: Setting) -> str:
    steps, began = setting.steps, setting.began
    return "\n".join([
        SECTION, "",
        f"Machine: {setting.machine}.  ",
        f"Date (UTC): {began:%Y-%m-%d %H:%M}. Command: `.venv/bin/python bench/steps_per_second.py "
        f"--steps-per-device {steps}`.  ",
        f"Load average (1/5/15 min): {setting.load_before} before, {setting.load_after} after "
        "(other work on the machine lowers every rate here).",
        "",
        f"Each configuration is a breadth-only job on `douyin-like` with one run of {steps} "
        f"steps per device actor (`cpus_per_device: 0`, `checkpoint_every: {CHUNK}`), run by "
        "the Coordinator actor on one local Ray. *steps/s* is wall clock over `run()`, actor "
        "start-up included; *steady steps/s* counts only the interval in which every run was "
        "stepping; *speed-up* compares steady rates. Stage shares are of the summed stage "
        "latencies; *Ray overhead* is chunk round-trip time minus time inside `advance`; "
        "*store* is the coordinator's `JobStore.commit` per step (not part of the shares); "
        "*coordinator CPU* is the coordinator process's CPU time over `run()` per step.",
        "",
        table(rows),
        "",
        *(f"- {line}" for line in interpretation(rows)),
        "",
    ])


def write_section(out: Path, text: str) -> None:
    """Replace this benchmark's section of `out` (or append it); other sections stay intact."""
    lines = out.read_text("utf-8").splitlines() if out.exists() else ["# Benchmarks", ""]
    if SECTION in lines:
        start = lines.index(SECTION)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        lines[start:end] = text.splitlines()
    else:
        lines += ["", *text.splitlines()] if lines and lines[-1] else text.splitlines()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8")


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
    began, load_before = datetime.now(timezone.utc), load_average()
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        print(f"warning: load average {load_before} on {os.cpu_count()} CPUs; other work will "
              "lower the rates measured", file=sys.stderr)
    rows = [measure(0, args.steps_per_device)]
    print(f"{rows[0].label}: {rows[0].steady_rate:.0f} steps/s", flush=True)
    ray.init(include_dashboard=False, namespace="bubblescope-bench",
             logging_level=logging.WARNING, log_to_driver=False)
    try:
        for devices in args.devices:
            rows.append(measure(devices, args.steps_per_device))
            print(f"{rows[-1].label}: {rows[-1].wall_s:.1f} s, "
                  f"{rows[-1].steady_rate:.0f} steady steps/s", flush=True)
    finally:
        ray.shutdown()
    setting = Setting(args.steps_per_device, began, machine_line(), load_before, load_average())
    text = section(rows, setting)
    write_section(args.out, text)
    print(f"\n{text}\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
