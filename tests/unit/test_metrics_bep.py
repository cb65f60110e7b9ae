"""Bubble Escape Potential and the Jensen-Shannon divergence beneath it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon

from bubblescope.metrics.bep import bep, js_divergence

weight = st.floats(min_value=0.0, max_value=1e3, allow_nan=False, allow_infinity=False)


@st.composite
def weight_pairs(draw: st.DrawFn) -> tuple[list[float], list[float]]:
    n = draw(st.integers(min_value=1, max_value=12))
    p = draw(st.lists(weight, min_size=n, max_size=n))
    q = draw(st.lists(weight, min_size=n, max_size=n))
    assume(sum(p) > 1e-6 and sum(q) > 1e-6)
    return p, q


@given(weight_pairs())
def test_symmetric_and_bounded(pair: tuple[list[float], list[float]]) -> None:
    p, q = pair
    value = js_divergence(p, q)
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(js_divergence(q, p), abs=1e-12)


@given(weight_pairs())
def test_matches_scipy(pair: tuple[list[float], list[float]]) -> None:
    p, q = pair
    # scipy takes the sqrt of a tiny negative for near-identical inputs and returns nan.
    with np.errstate(invalid="ignore"):
        expected = float(np.nan_to_num(jensenshannon(p, q, base=2), nan=0.0)) ** 2
    assert js_divergence(p, q) == pytest.approx(expected, abs=1e-9)


@given(weight_pairs(), st.floats(min_value=0.01, max_value=100))
def test_zero_for_identical_distributions(pair: tuple[list[float], list[float]],
                                          scale: float) -> None:
    p, _ = pair
    assert js_divergence(p, [scale * w for w in p]) == pytest.approx(0.0, abs=1e-9)


@given(st.lists(st.booleans(), min_size=2, max_size=12))
def test_one_for_disjoint_supports(split: list[bool]) -> None:
    assume(any(split) and not all(split))
    p = [1.0 if s else 0.0 for s in split]
    q = [0.0 if s else 2.0 for s in split]
    assert js_divergence(p, q) == 1.0


def test_by_hand() -> None:
    # p = (1, 0), q = (1/2, 1/2): m = (3/4, 1/4).
    expected = 0.5 * np.log2(4 / 3) + 0.5 * (0.5 * np.log2(2 / 3) + 0.5 * np.log2(2))
    assert js_divergence([1, 0], [1, 1]) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("p", "q"),
    [([1, 2], [1, 2, 3]), ([0, 0], [1, 1]), ([-1, 2], [1, 1]), ([np.nan, 1], [1, 1]),
     ([[1, 2]], [[1, 2]])],
)
def test_rejects_bad_weights(p: list[float], q: list[float]) -> None:
    with pytest.raises(ValueError):
        js_divergence(p, q)


def test_bep_on_phases() -> None:
    assert bep(["Food", "Pets"], ["Pets", "Food"]) == pytest.approx(0.0, abs=1e-12)
    assert bep(["Food", "Food"], ["Sports"]) == 1.0
    expected = js_divergence([1, 1, 0], [0, 1, 1])  # labels Food, Music, Pets
    assert bep(["Food", "Music"], ["Music", "Pets"]) == pytest.approx(expected)
    assert 0.0 < bep(["A", "A", "B"], ["A", "B", "B"]) < 1.0


def test_bep_rejects_empty_phase() -> None:
    with pytest.raises(ValueError):
        bep([], ["A"])
    with pytest.raises(ValueError):
        bep(["A"], [])
