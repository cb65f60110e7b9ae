"""Behaviour analysis: from a person's browsing sessions to the statistics a persona carries."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bubblescope.personas.schema import (
    BehaviourStats,
    CategoryStats,
    DurationStats,
    Session,
    TraceRecord,
)
from bubblescope.taxonomy import load_taxonomy

QUICK_SKIP_S = 3.0  # a view shorter than this counts as a quick skip


def duration_stats(durations: Sequence[float]) -> DurationStats:
    values = np.asarray(durations, dtype=float)
    p10, p25, median, p75, p90 = np.quantile(values, [0.1, 0.25, 0.5, 0.75, 0.9])
    return DurationStats(
        mean=round(float(values.mean()), 3), median=round(float(median), 3),
        p10=round(float(p10), 3), p25=round(float(p25), 3), p75=round(float(p75), 3),
        p90=round(float(p90), 3), quick_skip_rate=round(float((values < QUICK_SKIP_S).mean()), 4),
    )


def _rate(records: Sequence[TraceRecord], kind: str) -> float:
    return round(sum(r.did(kind) for r in records) / len(records), 4)


def _category_stats(records: list[TraceRecord], total: int) -> CategoryStats:
    return CategoryStats(
        n=len(records), share=round(len(records) / total, 4),
        like_rate=_rate(records, "like"), comment_rate=_rate(records, "comment"),
        share_rate=_rate(records, "share"),
        durations=tuple(round(r.viewing_duration, 2) for r in records),
    )


def analyse(sessions: Sequence[Session]) -> BehaviourStats:
    """Statistics over every record of `sessions`; categories are aggregated to main level."""
    records = [record for session in sessions for record in session.records]
    if not records:
        raise ValueError("no records to analyse: the sessions are empty")
    taxonomy = load_taxonomy()
    by_main: dict[str, list[TraceRecord]] = {}
    for record in records:
        if record.category is not None:
            by_main.setdefault(taxonomy.main_of(record.category), []).append(record)
    hours = np.bincount([r.timestamp.hour for r in records], minlength=24)
    durations = [round(r.viewing_duration, 2) for r in records]
    return BehaviourStats(
        n_records=len(records),
        n_sessions=len(sessions),
        categories={main: _category_stats(rs, len(records)) for main, rs in sorted(by_main.items())},
        like_rate=_rate(records, "like"),
        comment_rate=_rate(records, "comment"),
        share_rate=_rate(records, "share"),
        duration=duration_stats(durations),
        duration_sample=tuple(durations),
        hour_histogram=tuple(int(h) for h in hours),
    )
