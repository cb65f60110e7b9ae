"""A job's results: per-run metrics with bootstrap CIs, aggregates, and ground-truth checks.

Input is the job's StepRecords (a pyarrow Table) and what the job planned; output is the
plain dict written to summary.json. Partial jobs summarise too: runs are marked incomplete.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby

import numpy as np
import pyarrow as pa

from bubblescope.metrics.bootstrap import (
    Interval,
    bootstrap_bep,
    bootstrap_diversity_change,
    mean_interval,
)
from bubblescope.metrics.diversity import edge_diversity, entropy_bits
from bubblescope.metrics.top10 import compare_top


@dataclass(frozen=True)
class SummaryConfig:
    level: str = "main"  # category granularity of BEP and diversity
    window: int = 50  # sliding window, videos
    n_boot: int = 1000  # bootstrap resamples
    block: int = 10  # bootstrap block length
    confidence: float = 0.95  # CI level
    seed: int = 0  # bootstrap seed base


@dataclass
class RunResult:
    record: dict
    bep: Interval | None = None
    diversity: Interval | None = None
    categories: dict[str, list[str]] = field(default_factory=dict)  # phase -> Main/Sub


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 6)


def _ci(interval: Interval | None) -> list[float | None] | None:
    return None if interval is None else [_num(interval.low), _num(interval.high)]


def _level(categories: Sequence[str], level: str) -> list[str]:
    return list(categories) if level == "sub" else [c.split("/", 1)[0] for c in categories]


def _top10(phases: dict[str, list[str]]) -> dict[str, list[dict]]:
    tables = {}
    previous = None
    for phase, categories in phases.items():
        tables[phase] = [row.as_dict() for row in compare_top(categories, previous)]
        previous = categories
    return tables


def _diversity(categories: list[str], config: SummaryConfig,
               seed: int) -> tuple[dict, Interval | None]:
    window = config.window
    if len(categories) < window:
        return {"diversity_start": None, "diversity_end": None, "diversity_change": None,
                "diversity_change_ci": None, "entropy_start": None, "entropy_end": None}, None
    start, end = edge_diversity(categories, window)
    interval = bootstrap_diversity_change(categories, window=window, n_boot=config.n_boot,
                                          block=config.block, level=config.confidence, seed=seed)
    return {"diversity_start": _num(start), "diversity_end": _num(end),
            "diversity_change": _num(interval.estimate), "diversity_change_ci": _ci(interval),
            "entropy_start": _num(entropy_bits(categories[:window])),
            "entropy_end": _num(entropy_bits(categories[-window:]))}, interval


def summarize_run(rows: list[dict], planned_steps: int, config: SummaryConfig,
                  seed: int) -> RunResult:
    first = rows[0]
    phases: dict[str, list[str]] = {}
    for row in rows:
        if row["category"] is not None:
            phases.setdefault(row["phase"], []).append(row["category"])
    levelled = {phase: _level(cats, config.level) for phase, cats in phases.items()}
    record = {
        "run_id": first["run_id"], "persona": first["persona"], "platform": first["platform"],
        "experiment": first["experiment"], "replicate": first["replicate"],
        "steps": len(rows), "steps_planned": planned_steps, "complete": len(rows) >= planned_steps,
        "like_rate": _num(np.mean([r["action_like"] for r in rows])),
        "mean_watch_s": _num(np.mean([r["action_watch_s"] for r in rows])),
        "format_failures": int(sum(not r["action_format_ok"] for r in rows)),
        "unclassified": int(sum(r["category"] is None for r in rows)),
        "bep": None, "bep_ci": None,
    }
    result = RunResult(record, categories=phases)
    if "cultivation" in levelled and "counterfactual" in levelled:
        result.bep = bootstrap_bep(levelled["cultivation"], levelled["counterfactual"],
                                   n_boot=config.n_boot, block=config.block,
                                   level=config.confidence, seed=seed)
        record.update(bep=_num(result.bep.estimate), bep_ci=_ci(result.bep))
    fresh = levelled.get("breadth") or levelled.get("cultivation") or []
    fields, result.diversity = _diversity(fresh, config, seed + 1)
    record.update(fields)
    record["diversity_phase"] = "breadth" if "breadth" in levelled else "cultivation"
    record["top10"] = _top10(phases)
    return result


def _aggregate(results: list[RunResult], keys: tuple[str, ...], config: SummaryConfig) -> list[dict]:
    ordered = sorted(results, key=lambda r: tuple(str(r.record[k]) for k in keys))
    out = []
    for group_key, group in groupby(ordered, key=lambda r: tuple(str(r.record[k]) for k in keys)):
        members = list(group)
        entry: dict = dict(zip(keys, group_key, strict=True))
        depth = [r.bep for r in members if r.bep is not None]
        breadth = [r for r in members if r.record["experiment"] == "breadth" and r.diversity]
        entry["runs"] = len(members)
        entry["bep_runs"] = len(depth)
        if depth:
            mean = mean_interval(depth, config.confidence)
            entry.update(bep=_num(mean.estimate), bep_ci=_ci(mean))
        if breadth:
            changes = [r.diversity for r in breadth if r.diversity is not None]
            mean = mean_interval(changes, config.confidence)
            entry.update(
                diversity_runs=len(breadth), diversity_change=_num(mean.estimate),
                diversity_change_ci=_ci(mean),
                diversity_start=_num(np.mean([r.record["diversity_start"] for r in breadth])),
                diversity_end=_num(np.mean([r.record["diversity_end"] for r in breadth])))
        entry["top10"] = _pooled_top10(members)
        out.append(entry)
    return out


def _pooled_top10(group: list[RunResult]) -> dict[str, list[dict]]:
    """Table 5 over all replicates: depth runs' phases pooled, else the breadth phase."""
    depth = [r for r in group if r.record["experiment"] == "depth"]
    source = depth or group
    pooled: dict[str, list[str]] = {}
    for result in source:
        for phase, categories in result.categories.items():
            pooled.setdefault(phase, []).extend(categories)
    return _top10(pooled)


_SERVED = ("served_replica", "served_adapter_loads", "served_adapter_evictions", "persona",
           "recorded_at")


def serving_summary(table: pa.Table) -> dict | None:
    """Per policy replica: decisions, adapter loads and evictions, and their rate over the time
    the replica served; None when no step was decided by a served policy."""
    rows = [r for r in table.select(list(_SERVED)).to_pylist() if r["served_replica"]]
    if not rows:
        return None
    replicas = []
    for replica, group in groupby(sorted(rows, key=lambda r: r["served_replica"]),
                                  key=lambda r: r["served_replica"]):
        members = list(group)
        times = [r["recorded_at"] for r in members]
        span_s = max((max(times) - min(times)).total_seconds(), 1e-9)
        loads = sum(r["served_adapter_loads"] or 0 for r in members)
        evictions = sum(r["served_adapter_evictions"] or 0 for r in members)
        replicas.append({
            "replica": replica, "decisions": len(members),
            "personas": len({r["persona"] for r in members}),
            "adapter_loads": loads, "adapter_evictions": evictions,
            "seconds": _num(span_s), "loads_per_s": _num(loads / span_s),
            "evictions_per_s": _num(evictions / span_s)})
    return {"replicas": replicas, "personas": len({r["persona"] for r in rows}),
            "adapter_loads": sum(r["adapter_loads"] for r in replicas),
            "adapter_evictions": sum(r["adapter_evictions"] for r in replicas)}


def summarize(table: pa.Table, *, job_id: str, planned: dict[str, int],
              config: SummaryConfig, platforms: dict[str, dict] | None = None) -> dict:
    """summary.json for a job. `planned` maps every run id to its planned steps."""
    columns = ["run_id", "persona", "platform", "experiment", "replicate", "phase", "step",
               "category", "action_like", "action_watch_s", "action_format_ok"]
    rows = table.select(columns).sort_by([("run_id", "ascending"), ("step", "ascending")])
    results = []
    for index, (run_id, group) in enumerate(groupby(rows.to_pylist(), key=lambda r: r["run_id"])):
        results.append(summarize_run(list(group), planned.get(run_id, 0), config,
                                     seed=config.seed + 2 * index))
    records = [r.record for r in results]
    summary = {
        "job_id": job_id,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "complete": set(planned) <= {r["run_id"] for r in records if r["complete"]},
        "runs_planned": len(planned),
        "config": {"category_level": config.level, "window": config.window,
                   "bootstrap": config.n_boot, "block": config.block,
                   "confidence": config.confidence},
        "runs": records,
        "aggregates": {
            "by_platform": _aggregate(results, ("platform",), config),
            "by_persona": _aggregate(results, ("persona",), config),
            "by_platform_persona": _aggregate(results, ("platform", "persona"), config),
        },
    }
    serving = serving_summary(table)
    if serving:
        summary["serving"] = serving
    if platforms:
        from bubblescope.metrics.ground_truth import ground_truth_checks

        summary["platforms"] = platforms
        summary["ground_truth_checks"] = ground_truth_checks(summary, platforms)
    return summary
