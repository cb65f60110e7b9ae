"""Running metrics of a job in flight, kept by the coordinator and exported by `stats()`.

Everything here is plain data (dicts of numbers) so that it crosses Ray's actor boundary
and the Prometheus exporter can turn it into metric families without knowing the coordinator.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from bubblescope.metrics.bep import js_divergence

LATENCY_BUCKETS_S = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025,
                     0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STAGES = ("observe", "decide", "act", "record", "overhead")


@dataclass
class Histogram:
    """Cumulative-friendly histogram: counts per upper bound, plus +Inf, sum and count."""

    buckets: tuple[float, ...] = LATENCY_BUCKETS_S
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    total: float = 0.0
    n: int = 0

    def observe_many(self, values: Sequence[float] | np.ndarray) -> None:
        array = np.asarray(values, dtype=float)
        if array.size == 0:
            return
        index = np.searchsorted(self.buckets, array, side="left")
        for i, c in zip(*np.unique(index, return_counts=True), strict=True):
            self.counts[int(i)] += int(c)
        self.total += float(array.sum())
        self.n += int(array.size)

    def as_dict(self) -> dict:
        return {"buckets": list(self.buckets), "counts": list(self.counts),
                "sum": self.total, "count": self.n}


@dataclass
class RunLive:
    persona: str
    platform: str
    experiment: str
    replicate: int
    total_steps: int
    window: int
    steps_done: int = 0
    phase: str = ""
    state: str = "pending"  # pending | running | done | failed | stopped
    device: str = ""
    recent: deque = field(default_factory=deque)
    phase_counts: dict[str, Counter] = field(default_factory=dict)

    def add(self, categories: Iterable[str | None], phases: Iterable[str]) -> None:
        for category, phase in zip(categories, phases, strict=True):
            self.steps_done += 1
            self.phase = phase
            if category is None:
                continue
            self.recent.append(category)
            if len(self.recent) > self.window:
                self.recent.popleft()
            self.phase_counts.setdefault(phase, Counter())[category] += 1

    def diversity(self) -> float | None:
        return float(len(set(self.recent))) if self.recent else None

    def entropy_bits(self) -> float | None:
        if not self.recent:
            return None
        p = np.array(list(Counter(self.recent).values()), dtype=float) / len(self.recent)
        return float(-(p * np.log2(p)).sum())

    def running_bep(self) -> float | None:
        before = self.phase_counts.get("cultivation")
        after = self.phase_counts.get("counterfactual")
        if not before or not after:
            return None
        labels = sorted(set(before) | set(after))
        return js_divergence([before[k] for k in labels], [after[k] for k in labels])

    def as_dict(self) -> dict:
        return {"persona": self.persona, "platform": self.platform, "experiment": self.experiment,
                "replicate": self.replicate, "steps_done": self.steps_done,
                "steps_total": self.total_steps, "phase": self.phase, "state": self.state,
                "device": self.device, "window_diversity": self.diversity(),
                "window_entropy_bits": self.entropy_bits(), "running_bep": self.running_bep()}


class LiveMetrics:
    def __init__(self, job_id: str, level: str, window: int) -> None:
        self.job_id = job_id
        self.level = level
        self.window = window
        self.runs: dict[str, RunLive] = {}
        self.steps: Counter = Counter()  # (persona, platform, experiment, phase) -> steps
        self.latency = {stage: Histogram() for stage in STAGES}
        self.format_failures = 0
        self.replicas: dict[str, Counter] = {}  # replica -> decisions, adapter loads, evictions

    def add_run(self, run_id: str, run) -> None:
        self.runs[run_id] = RunLive(run.persona, run.platform, run.experiment, run.replicate,
                                    run.total_steps, self.window)

    def _level(self, category: str | None) -> str | None:
        if category is None or self.level == "sub":
            return category
        return category.split("/", 1)[0]

    def record(self, run_id: str, steps: pa.Table, overhead_s: float = 0.0,
               count_steps: bool = True) -> None:
        """Account for committed steps (StepRecord columns); `overhead_s` is the chunk's time
        outside the steps. Steps replayed from the store on resume pass count_steps=False."""
        live = self.runs[run_id]
        phases = steps.column("phase").to_pylist()
        live.add([self._level(c) for c in steps.column("category").to_pylist()], phases)
        if not count_steps or steps.num_rows == 0:
            return
        for phase, count in Counter(phases).items():
            self.steps[(live.persona, live.platform, live.experiment, phase)] += count
        self.format_failures += steps.num_rows - sum(steps.column("action_format_ok").to_pylist())
        self._count_served(steps)
        for stage in STAGES[:-1]:
            self.latency[stage].observe_many(steps.column(f"latency_{stage}_s").to_numpy())
        n = steps.num_rows
        self.latency["overhead"].observe_many(np.full(n, max(overhead_s, 0.0) / n))

    def _count_served(self, steps: pa.Table) -> None:
        columns = ("served_replica", "served_adapter_loads", "served_adapter_evictions")
        for replica, loads, evictions in zip(*(steps.column(c).to_pylist() for c in columns),
                                             strict=True):
            if replica is not None:
                counts = self.replicas.setdefault(replica, Counter())
                counts.update(decisions=1, adapter_loads=loads or 0,
                              adapter_evictions=evictions or 0)

    def snapshot(self) -> dict:
        return {
            "job_id": self.job_id,
            "runs": {run_id: live.as_dict() for run_id, live in self.runs.items()},
            "steps": [{"persona": k[0], "platform": k[1], "experiment": k[2], "phase": k[3],
                       "count": v} for k, v in sorted(self.steps.items())],
            "latency": {stage: h.as_dict() for stage, h in self.latency.items()},
            "format_failures": self.format_failures,
            "replicas": {replica: dict(counts) for replica, counts in sorted(self.replicas.items())},
        }
