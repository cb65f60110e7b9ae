"""Quantile reversal: the counterfactual persona's watch durations."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bubblescope.metrics.reversal import QuantileReversal

duration = st.floats(min_value=0.0, max_value=600.0, allow_nan=False)
samples = st.lists(duration, min_size=1, max_size=50)


def test_from_sample_sorts_and_validates() -> None:
    rev = QuantileReversal.from_sample([3, 1, 2])
    assert rev.sorted_sample == (1.0, 2.0, 3.0)
    with pytest.raises(ValueError):
        QuantileReversal.from_sample([])
    with pytest.raises(ValueError):
        QuantileReversal.from_sample([1.0, -0.5])


def test_quantile_is_mid_rank() -> None:
    rev = QuantileReversal.from_sample([1, 2, 2, 3])
    assert rev.quantile(0) == 0.0
    assert rev.quantile(1) == pytest.approx(0.125)
    assert rev.quantile(2) == pytest.approx(0.5)
    assert rev.quantile(2.5) == pytest.approx(0.75)
    assert rev.quantile(10) == 1.0


def test_inverse_interpolates_like_numpy() -> None:
    rev = QuantileReversal.from_sample([0, 10, 20, 30])
    assert rev.inverse(0.0) == 0.0
    assert rev.inverse(1.0) == 30.0
    assert rev.inverse(0.5) == pytest.approx(15.0)
    assert rev.inverse(1.5) == 30.0


def test_median_min_and_max() -> None:
    rev = QuantileReversal.from_sample(range(1, 102))  # 1..101, median 51
    assert rev.reverse(51) == pytest.approx(51.0)
    assert rev.reverse(1) == pytest.approx(101.0, abs=1.0)
    assert rev.reverse(101) == pytest.approx(1.0, abs=1.0)
    assert rev.reverse(0) == 101.0
    assert rev.reverse(1000) == 1.0


@given(samples, duration, duration)
def test_reverse_is_non_increasing(sample: list[float], d1: float, d2: float) -> None:
    rev = QuantileReversal.from_sample(sample)
    lo, hi = sorted((d1, d2))
    assert rev.reverse(lo) >= rev.reverse(hi) - 1e-9


@given(samples, duration)
def test_reverse_stays_in_sample_range(sample: list[float], d: float) -> None:
    rev = QuantileReversal.from_sample(sample)
    lo, hi = min(sample), max(sample)
    once = rev.reverse(d)
    assert lo - 1e-9 <= once <= hi + 1e-9
    assert lo - 1e-9 <= rev.reverse(once) <= hi + 1e-9
    assert 0.0 <= rev.quantile(d) <= 1.0


def test_pickle_round_trip() -> None:
    rev = QuantileReversal.from_sample([5.0, 1.0, 9.0])
    clone = pickle.loads(pickle.dumps(rev))
    assert clone == rev
    assert clone.reverse(1.0) == rev.reverse(1.0)


def test_is_frozen() -> None:
    rev = QuantileReversal.from_sample([1.0])
    with pytest.raises(AttributeError):
        rev.sorted_sample = (2.0,)  # type: ignore[misc]
