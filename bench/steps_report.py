"""The Markdown section of bench/RESULTS.md that `steps_per_second.py` writes: the table of
rows, the machine it ran on, and a few sentences read off the numbers (so a re-run rewrites
them to match). Measurement lives in `steps_per_second.py`; this module only formats."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import ray

from bubblescope.metrics.live import STAGES

SECTION = "## Steps per second vs device actors (simulated, in-process devices)"


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


def interpretation(rows: Sequence[Row], chunk: int) -> list[str]:
    """A few sentences read off the numbers, so a re-run rewrites them to match."""
    base, again = (r for r in rows if not r.devices)
    actors = [r for r in rows if r.devices]
    change = 100 * abs(again.steady_rate / base.steady_rate - 1)
    lines = [_saturation_line(base, actors), *_ray_cost_lines(base, actors, chunk),
             _drift_line(base.drift_us or {}),
             f"The in-process baseline ran {base.steady_rate:.0f} steps/s before the Ray runs "
             f"and {again.steady_rate:.0f} after: the machine's own speed moved by {change:.0f}% "
             "during the benchmark; differences between rows smaller than that are noise."]
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
            f"({100 * best.steady_rate / ceiling:.0f}% reached; the rest goes to Ray's own "
            "processes, pickling, context switches and whatever else runs on the machine); "
            "device actors beyond that only time-slice the same cores.")


def _ray_cost_lines(base: Row, actors: Sequence[Row], chunk: int) -> list[str]:
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
        f"chunk of at most {chunk} steps or 0.5 s).",
        f"Ray overhead is {min(shares):.1f}% to {max(shares):.1f}% of step time, largest with "
        f"{worst.label} ({worst.per_step_us(worst.stage_s['overhead']):.0f} µs/step): once "
        "actors outnumber cores it is mostly waiting, for a share of a core and for the "
        "coordinator, whose single event loop commits every chunk to the store in turn.",
        f"The coordinator process uses {min(cpu):.0f}-{max(cpu):.0f} µs of CPU per step"
        f"{', whatever the number of actors' * (max(cpu) < 1.3 * min(cpu))}: the job store's "
        "commit (a checkpoint JSON and a Parquet part per chunk: "
        f"{min(store):.0f}-{max(store):.0f} µs of wall time per step), receiving the chunks "
        "and the live metrics; one coordinator would fill a core near "
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
    chunk: int  # checkpoint_every
    devices: tuple[int, ...]
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
        f"--steps-per-device {steps} --devices {','.join(map(str, setting.devices))}`.  ",
        f"Load average (1/5/15 min): {setting.load_before} before, {setting.load_after} after "
        "(other work on the machine lowers every rate here).",
        "",
        f"Each configuration is a breadth-only job on `douyin-like` with one run of {steps} "
        f"steps per device actor (`cpus_per_device: 0`, `checkpoint_every: {setting.chunk}`, "
        "`checkpoint_seconds: 0.5`: a chunk ends at whichever comes first), "
        "run by "
        "the Coordinator actor on one local Ray. *steps/s* is wall clock over `run()`, actor "
        "start-up included; *steady steps/s* counts only the interval in which every run was "
        "stepping; *speed-up* compares steady rates. Stage shares are of the summed stage "
        "latencies; *Ray overhead* is chunk round-trip time minus time inside `advance`; "
        "*store* is the coordinator's `JobStore.commit` per step (not part of the shares); "
        "*coordinator CPU* is the coordinator process's CPU time over `run()` per step.",
        "",
        table(rows),
        "",
        *(f"- {line}" for line in interpretation(rows, setting.chunk)),
        "",
    ])


def write_section(out: Path, title: str, text: str) -> None:
    """Replace the section headed `title` in `out` (or append it); other sections stay intact."""
    lines = out.read_text("utf-8").splitlines() if out.exists() else ["# Benchmarks", ""]
    if title in lines:
        start = lines.index(title)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        lines[start:end] = [*text.rstrip("\n").splitlines(), ""]
    else:
        lines += ["", *text.splitlines()] if lines and lines[-1] else text.splitlines()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8")


def publish(text: str, out: Path | None) -> None:
    """Print a results section and append it to `out` (bench/RESULTS.md) when given."""
    print(text)
    if out:
        with out.open("a", encoding="utf-8") as handle:
            handle.write("\n" + text)
