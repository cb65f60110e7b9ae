"""Fitting a synthetic human's behaviour to a real collector's trace.

Targets, from the real PersonaAct sessions: median and mean watch duration, quick-skip rate
(views under 3 s) and like rate. Each round records a trace of the human on their home
platform and nudges the time scales (attention, its spread, the length of a skip) and the
like rate towards the targets. The human's preference structure (interests, and how strongly
interest decides a skip) is design, not fitted. The result is printed as YAML to paste into
`sim/data/humans.yaml`. Run: python -m bubblescope.sim.calibrate [NAME ...]
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bubblescope.personas.analyser import QUICK_SKIP_S
from bubblescope.sim.human import HumanSpec, human_names, human_spec
from bubblescope.sim.recruit import DEFAULT_RECORDS, record_trace_with

REAL_SESSIONS = Path(__file__).resolve().parents[1] / "data" / "personaact-sessions"


@dataclass(frozen=True)
class TraceTargets:
    median: float
    mean: float
    quick_skip: float
    like: float

    @classmethod
    def of(cls, durations: np.ndarray, likes: np.ndarray) -> TraceTargets:
        return cls(float(np.median(durations)), float(durations.mean()),
                   float((durations < QUICK_SKIP_S).mean()), float(likes.mean()))


def real_trace(collector: str, root: Path = REAL_SESSIONS) -> tuple[np.ndarray, np.ndarray]:
    """Watch durations and like flags of every record of one real collector."""
    durations, likes = [], []
    for path in sorted((root / collector).glob("session_*.json")):
        for record in json.loads(path.read_text("utf-8")).get("actions", []):
            durations.append(float(record["viewing_duration"]))
            likes.append(any(a.get("type") == "like" for a in record.get("actions", [])))
    if not durations:
        raise FileNotFoundError(f"no sessions for collector {collector!r} under {root}")
    return np.array(durations), np.array(likes)


def synthetic_trace(spec: HumanSpec, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    sessions = record_trace_with(spec, seed=seed,
                                 records=DEFAULT_RECORDS.get(spec.calibrated_on or "", 800))
    records = [r for s in sessions for r in s.records]
    return (np.array([r.viewing_duration for r in records]),
            np.array([r.did("like") for r in records]))


def _logit(p: float) -> float:
    p = min(max(p, 1e-3), 1 - 1e-3)
    return math.log(p / (1 - p))


def _nudge(spec: HumanSpec, got: TraceTargets, want: TraceTargets) -> HumanSpec:
    spread_error = math.log(want.mean / want.median) - math.log(got.mean / got.median)
    return spec.model_copy(update={
        "skip_median_s": round(spec.skip_median_s * math.exp(
            0.5 * (_logit(got.quick_skip) - _logit(want.quick_skip))), 3),
        "attention_s": round(spec.attention_s * (want.median / got.median) ** 0.8, 3),
        "attention_sigma": round(max(0.2, spec.attention_sigma + 0.6 * spread_error), 3),
        "like_base": round(min(1.0, spec.like_base * want.like / max(got.like, 1e-3)), 4),
    })


def calibrate(name: str, rounds: int = 12, seed: int = 0) -> tuple[HumanSpec, TraceTargets]:
    spec = human_spec(name)
    want = TraceTargets.of(*real_trace(spec.calibrated_on or ""))
    for _ in range(rounds):
        spec = _nudge(spec, TraceTargets.of(*synthetic_trace(spec, seed)), want)
    return spec, TraceTargets.of(*synthetic_trace(spec, seed))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=human_names())
    args = parser.parse_args(argv)
    for name in args.names:
        spec, got = calibrate(name)
        want = TraceTargets.of(*real_trace(spec.calibrated_on or ""))
        print(f"# {name}: got {got}\n#   want {want}")
        for key in ("skip_median_s", "attention_s", "attention_sigma", "like_base"):
            print(f"  {key}: {getattr(spec, key)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
