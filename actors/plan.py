"""Expanding a job into runs: persona x platform x replicate x experiment, each with its phases."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from bubblescope.contracts import Experiment, Phase
from bubblescope.job import ResolvedJob
from bubblescope.jobspec import BreadthSpec, DepthSpec


@dataclass(frozen=True)
class PhasePlan:
    name: Phase
    steps: int
    reversed: bool  # the counterfactual phase plays the persona's quantile reversal


@dataclass(frozen=True)
class RunSpec:
    job_id: str
    run_id: str
    persona: str
    platform: str
    replicate: int
    experiment: Experiment
    phases: tuple[PhasePlan, ...]
    seed: int
    account: str
    phone: str | None = None  # the phone holding the run's account, when the farm has said

    @property
    def total_steps(self) -> int:
        return sum(phase.steps for phase in self.phases)

    def phase_at(self, step: int) -> tuple[PhasePlan, int]:
        """The phase that global step `step` falls in, and the step's index within it."""
        offset = step
        for phase in self.phases:
            if offset < phase.steps:
                return phase, offset
            offset -= phase.steps
        raise IndexError(f"run {self.run_id} has {self.total_steps} steps, not {step + 1}")


def run_seed(job_seed: int, *parts: object) -> int:
    """A stable 63-bit seed per run, independent of Python's hash randomisation."""
    text = "/".join(str(p) for p in (job_seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def _phases(experiment: Experiment, depth: DepthSpec | None,
            breadth: BreadthSpec | None) -> tuple[PhasePlan, ...]:
    if experiment == "depth" and depth is not None:
        return (PhasePlan("cultivation", depth.cultivation_steps, False),
                PhasePlan("counterfactual", depth.counterfactual_steps, True))
    if experiment == "breadth" and breadth is not None:
        return (PhasePlan("breadth", breadth.steps, False),)
    raise ValueError(f"experiment {experiment} is not in the job")


def plan_runs(job: ResolvedJob) -> list[RunSpec]:
    """All runs of a ResolvedJob, replicate-major so early results cover every cell."""
    spec = job.spec
    experiments: list[Experiment] = [name for name in ("depth", "breadth")
                                     if getattr(spec.experiments, name) is not None]
    runs = []
    for replicate in range(spec.replicates):
        for experiment in experiments:
            for persona in job.personas:
                for platform in job.profiles:
                    run_id = f"{persona}--{platform}--{experiment}--r{replicate}"
                    runs.append(RunSpec(
                        job_id=job.job_id, run_id=run_id, persona=persona, platform=platform,
                        replicate=replicate, experiment=experiment,
                        phases=_phases(experiment, spec.experiments.depth, spec.experiments.breadth),
                        seed=run_seed(spec.seed, persona, platform, experiment, replicate),
                        account=f"{job.job_id}-{run_id}",
                    ))
    return runs
