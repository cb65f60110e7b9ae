"""Breadth metrics: distinct categories and entropy in sliding windows."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bubblescope.metrics.diversity import (
    distinct_in_windows,
    distribution,
    diversity_change,
    edge_diversity,
    entropy_bits,
    entropy_in_windows,
)

feeds = st.lists(st.sampled_from(["Food", "Sports", "Music", "Pets", "News"]), max_size=60)


def test_distinct_in_windows_by_hand() -> None:
    cats = ["A", "A", "B", "C", "A", "A"]
    assert distinct_in_windows(cats, window=3).tolist() == [2, 3, 3, 2]


def test_distinct_window_longer_than_feed_is_empty() -> None:
    assert distinct_in_windows(["A", "B"], window=3).shape == (0,)
    assert entropy_in_windows(["A", "B"], window=3).shape == (0,)


@pytest.mark.parametrize("window", [0, -1])
def test_window_must_be_positive(window: int) -> None:
    with pytest.raises(ValueError):
        distinct_in_windows(["A"], window=window)
    with pytest.raises(ValueError):
        entropy_in_windows(["A"], window=window)


@given(feeds, st.integers(min_value=1, max_value=10))
def test_windows_match_brute_force(cats: list[str], window: int) -> None:
    distinct = distinct_in_windows(cats, window)
    entropy = entropy_in_windows(cats, window)
    expected = max(0, len(cats) - window + 1)
    assert distinct.shape == (expected,) and entropy.shape == (expected,)
    for i in range(expected):
        chunk = cats[i : i + window]
        assert distinct[i] == len(set(chunk))
        assert entropy[i] == pytest.approx(entropy_bits(chunk), abs=1e-12)


def test_entropy_by_hand() -> None:
    assert entropy_bits([]) == 0.0
    assert entropy_bits(["A", "A", "A"]) == 0.0
    assert entropy_bits(["A", "B"]) == pytest.approx(1.0)
    assert entropy_bits(["A", "B", "C", "D"]) == pytest.approx(2.0)
    assert entropy_bits(["A", "A", "B", "C"]) == pytest.approx(1.5)


@given(feeds)
def test_entropy_bounds(cats: list[str]) -> None:
    h = entropy_bits(cats)
    assert 0.0 <= h <= math.log2(max(1, len(set(cats)))) + 1e-12


def test_distribution_without_labels() -> None:
    assert distribution(["A", "B", "A", "C"]) == {"A": 0.5, "B": 0.25, "C": 0.25}
    assert distribution([]) == {}


def test_distribution_with_labels() -> None:
    dist = distribution(["A", "A", "B", "A"], labels=["A", "B", "Z"])
    assert dist == {"A": 0.75, "B": 0.25, "Z": 0.0}
    assert distribution([], labels=["A", "B"]) == {"A": 0.0, "B": 0.0}
    with pytest.raises(ValueError):
        distribution(["A", "Q"], labels=["A"])


@given(feeds)
def test_distribution_sums_to_one(cats: list[str]) -> None:
    total = sum(distribution(cats).values())
    assert total == pytest.approx(1.0 if cats else 0.0)


def test_diversity_change() -> None:
    assert diversity_change(10, 8) == pytest.approx(-0.2)
    assert diversity_change(10, 6) == pytest.approx(-0.4)
    assert diversity_change(4, 4) == 0.0
    assert math.isnan(diversity_change(0, 0))
    assert math.isnan(diversity_change(0, 3))


def test_narrowing_feed_loses_distinct_categories() -> None:
    rng = np.random.default_rng(1)
    broad = list(rng.choice([f"C{i}" for i in range(15)], size=50))
    narrow = list(rng.choice(["C0", "C1", "C2"], size=50))
    distinct = distinct_in_windows(broad + narrow, window=50)
    assert distinct[0] > distinct[-1]
    assert diversity_change(distinct[0], distinct[-1]) < 0


def test_edge_diversity_averages_a_window_of_windows_at_each_edge() -> None:
    cats = [f"C{i % 10}" for i in range(100)] + ["A", "B"] * 50
    start, end = edge_diversity(cats, window=10)
    assert start == 10.0
    assert end == 2.0


def test_edge_diversity_on_a_short_run_uses_the_windows_it_has() -> None:
    cats = ["A", "B", "C", "A", "A", "A"]
    start, end = edge_diversity(cats, window=4)
    assert (start, end) == (pytest.approx((3 + 3 + 2) / 3), pytest.approx((3 + 3 + 2) / 3))
    with pytest.raises(ValueError):
        edge_diversity(cats, window=7)
