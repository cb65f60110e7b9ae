"""Synthetic humans look like the real traces; personas are derived from traces only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import ks_2samp

from bubblescope.personas.loader import load_persona, persona_to_yaml
from bubblescope.sim.calibrate import TraceTargets, real_trace, synthetic_trace
from bubblescope.sim.human import human_spec
from bubblescope.sim.recruit import persona_from_human

PERSONAS = Path(__file__).resolve().parents[2] / "examples" / "personas"


@pytest.mark.parametrize("human", ["concentrated", "dispersed"])
def test_synthetic_trace_matches_the_real_collector(human: str) -> None:
    spec = human_spec(human)
    durations, likes = synthetic_trace(spec)
    real_durations, real_likes = real_trace(spec.calibrated_on)
    got, want = TraceTargets.of(durations, likes), TraceTargets.of(real_durations, real_likes)
    assert got.median == pytest.approx(want.median, rel=0.2)
    assert got.mean == pytest.approx(want.mean, rel=0.25)
    assert got.quick_skip == pytest.approx(want.quick_skip, abs=0.05)
    assert got.like == pytest.approx(want.like, abs=0.025)
    assert ks_2samp(durations, real_durations).statistic < 0.15


def test_real_traces_are_the_papers_table_1() -> None:
    a, _ = real_trace("a")
    b, _ = real_trace("b")
    assert (len(a), len(b)) == (939, 780)
    assert round(float(a.mean()), 1) == 7.8 and round(float(b.mean()), 1) == 21.9


def test_concentrated_is_concentrated_and_dispersed_is_not() -> None:
    def top3_share(persona) -> float:
        shares = sorted((c.share for c in persona.stats.categories.values()), reverse=True)
        return sum(shares[:3])

    concentrated = load_persona(PERSONAS / "concentrated.yaml")
    dispersed = load_persona(PERSONAS / "dispersed.yaml")
    assert top3_share(concentrated) > top3_share(dispersed) + 0.1
    b_durations = np.array(dispersed.stats.duration_sample)
    assert np.mean(b_durations) > 2.5 * np.median(b_durations)  # bimodal, long-tailed


@pytest.mark.parametrize("human", ["concentrated", "dispersed"])
def test_example_persona_files_are_what_the_world_generates(human: str) -> None:
    """The committed files must not drift from the simulated world that made them; to
    regenerate: bubblescope persona from-sim NAME --out examples/personas/NAME.yaml"""
    committed = (PERSONAS / f"{human}.yaml").read_text("utf-8")
    assert persona_to_yaml(persona_from_human(human)) == committed


def test_persona_stats_are_consistent() -> None:
    persona = load_persona(PERSONAS / "concentrated.yaml")
    stats = persona.stats
    assert len(stats.duration_sample) == stats.n_records
    assert sum(c.n for c in stats.categories.values()) == stats.n_records
    assert sum(stats.hour_histogram) == stats.n_records
    assert stats.duration.median == pytest.approx(float(np.median(stats.duration_sample)), abs=0.01)
