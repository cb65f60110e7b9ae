"""Moving-block bootstrap intervals for BEP and breadth change."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bubblescope.metrics.bep import bep
from bubblescope.metrics.bootstrap import (
    Interval,
    block_indices,
    bootstrap_bep,
    bootstrap_diversity_change,
    bootstrap_paired_difference,
    mean_interval,
)
from bubblescope.metrics.diversity import edge_diversity


def feed(rng: np.random.Generator, labels: list[str], weights: list[float], n: int,
         run: int = 3) -> list[str]:
    """A feed drawn in short runs of one category, so it is autocorrelated."""
    p = np.asarray(weights) / np.sum(weights)
    out: list[str] = []
    while len(out) < n:
        out.extend([str(rng.choice(labels, p=p))] * run)
    return out[:n]


@given(st.integers(0, 200), st.integers(-2, 250), st.integers(0, 2**32 - 1))
def test_block_indices_in_range(n: int, block: int, seed: int) -> None:
    idx = block_indices(n, block, np.random.default_rng(seed))
    assert idx.shape == (n,)
    if n:
        assert idx.min() >= 0 and idx.max() < n


def test_block_indices_are_contiguous_blocks() -> None:
    idx = block_indices(23, 5, np.random.default_rng(0))
    for start in range(0, 23, 5):
        chunk = idx[start : start + 5]
        assert np.all(np.diff(chunk) == 1)


def test_block_indices_rejects_negative_n() -> None:
    with pytest.raises(ValueError):
        block_indices(-1, 3, np.random.default_rng(0))


def test_bep_interval_is_deterministic_and_contains_estimate() -> None:
    rng = np.random.default_rng(7)
    labels = ["Food", "Sports", "Music", "Pets", "News", "Games"]
    a = feed(rng, labels, [8, 4, 2, 1, 1, 1], 400)
    b = feed(rng, labels, [1, 1, 2, 4, 8, 4], 400)
    first = bootstrap_bep(a, b, n_boot=300, seed=3)
    second = bootstrap_bep(a, b, n_boot=300, seed=3)
    assert first == second
    assert np.array_equal(first.samples, second.samples)
    assert first.estimate == pytest.approx(bep(a, b))
    assert first.low <= first.estimate <= first.high
    assert first.samples.shape == (300,)
    assert first.as_list() == [first.low, first.high]
    assert bootstrap_bep(a, b, n_boot=300, seed=4).low != first.low


def test_bep_interval_near_zero_for_same_distribution() -> None:
    rng = np.random.default_rng(11)
    labels = ["Food", "Sports", "Music", "Pets"]
    a = feed(rng, labels, [1, 1, 1, 1], 400, run=1)
    b = feed(rng, labels, [1, 1, 1, 1], 400, run=1)
    iv = bootstrap_bep(a, b, n_boot=300, seed=0)
    assert iv.estimate < 0.01
    assert 0.0 <= iv.low <= iv.estimate <= iv.high < 0.05


def test_diversity_change_interval() -> None:
    rng = np.random.default_rng(5)
    broad = feed(rng, [f"C{i}" for i in range(20)], [1.0] * 20, 100, run=2)
    narrow = feed(rng, [f"C{i}" for i in range(20)], [20, 10, 5] + [0.3] * 17, 100, run=2)
    cats = broad + narrow
    iv = bootstrap_diversity_change(cats, window=50, n_boot=300, seed=1)
    first, last = edge_diversity(cats, 50)
    assert iv.estimate == pytest.approx((last - first) / first)
    assert iv.estimate < 0
    assert iv.low <= iv.estimate <= iv.high
    assert iv.high < 0
    again = bootstrap_diversity_change(cats, window=50, n_boot=300, seed=1)
    assert np.array_equal(iv.samples, again.samples)


def test_diversity_change_rejects_short_feed() -> None:
    with pytest.raises(ValueError):
        bootstrap_diversity_change(["A"] * 10, window=50)


@pytest.mark.parametrize("kwargs", [{"n_boot": 0}, {"block": 0}, {"level": 1.0}])
def test_rejects_bad_settings(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        bootstrap_bep(["A", "B"], ["B"], **kwargs)


def test_bootstrap_bep_rejects_empty_phase() -> None:
    with pytest.raises(ValueError):
        bootstrap_bep([], ["A"])


def test_mean_interval_averages_runs() -> None:
    one = Interval(0.2, 0.1, 0.3, np.array([0.1, 0.2, 0.3]))
    two = Interval(0.4, 0.3, 0.5, np.array([0.3, 0.4, np.nan]))
    three = Interval(math.nan, math.nan, math.nan, np.array([0.5, 0.6, np.nan]))
    iv = mean_interval([one, two, three], level=0.5)
    assert iv.estimate == pytest.approx(0.3)
    assert np.allclose(iv.samples, [0.3, 0.4, 0.3])
    low, median, high = np.percentile([0.3, 0.4, 0.3], [25, 50, 75])
    assert iv.low == pytest.approx(0.3 - (median - low))  # spread centred on the estimate
    assert iv.high == pytest.approx(0.3 + (high - median))


def test_mean_interval_all_nan_column_is_nan() -> None:
    runs = [Interval(math.nan, math.nan, math.nan, np.array([np.nan, 1.0]))] * 2
    iv = mean_interval(runs)
    assert math.isnan(iv.estimate)
    assert math.isnan(iv.samples[0]) and iv.samples[1] == 1.0
    assert math.isnan(iv.low) and math.isnan(iv.high)  # no estimate to centre on


def test_mean_interval_rejects_mixed_lengths_and_empty() -> None:
    with pytest.raises(ValueError):
        mean_interval([])
    with pytest.raises(ValueError):
        mean_interval([Interval(0, 0, 0, np.zeros(3)), Interval(0, 0, 0, np.zeros(4))])


def test_interval_equality_ignores_samples() -> None:
    assert Interval(0.1, 0.0, 0.2, np.zeros(2)) == Interval(0.1, 0.0, 0.2, np.ones(5))
    assert "samples" not in repr(Interval(0.1, 0.0, 0.2, np.zeros(2)))


def test_paired_difference_separates_a_real_gap_from_noise() -> None:
    rng = np.random.default_rng(3)
    errors = rng.uniform(0.2, 1.2, size=80)
    worse = bootstrap_paired_difference(errors + 0.15 + rng.normal(0, 0.1, 80), errors)
    assert 0.1 < worse.estimate < 0.2 and worse.low > 0
    same = bootstrap_paired_difference(errors + rng.normal(0, 0.3, 80), errors)
    assert same.low < 0 < same.high
    nothing = bootstrap_paired_difference(errors, errors)
    assert (nothing.estimate, nothing.low, nothing.high) == (0.0, 0.0, 0.0)


def test_paired_difference_needs_pairs() -> None:
    with pytest.raises(ValueError, match="equally long"):
        bootstrap_paired_difference([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="equally long"):
        bootstrap_paired_difference([], [])
