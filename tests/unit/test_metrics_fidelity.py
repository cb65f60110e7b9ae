"""Watch-duration fidelity: SMAPE and MAE."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bubblescope.metrics.fidelity import mae, smape


def test_smape_by_hand() -> None:
    # terms: |10-5|/7.5 = 2/3, |0-0| -> 0, |4-12|/8 = 1, |3-0|/1.5 = 2
    assert smape([10, 0, 4, 3], [5, 0, 12, 0]) == pytest.approx((2 / 3 + 0 + 1 + 2) / 4)
    assert smape([1, 2, 3], [1, 2, 3]) == 0.0
    assert smape([0.0], [0.0]) == 0.0
    assert smape([5.0], [0.0]) == 2.0


def test_mae_by_hand() -> None:
    assert mae([10, 0, 4, 3], [5, 0, 12, 0]) == pytest.approx((5 + 0 + 8 + 3) / 4)
    assert mae(np.array([1.5]), np.array([1.5])) == 0.0


@pytest.mark.parametrize("fn", [smape, mae])
def test_rejects_mismatch_and_empty(fn) -> None:
    with pytest.raises(ValueError):
        fn([1, 2], [1])
    with pytest.raises(ValueError):
        fn([], [])


values = st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), min_size=1,
                  max_size=30)


@given(values, st.data())
def test_smape_bounds_and_symmetry(y: list[float], data: st.DataObject) -> None:
    y_hat = data.draw(st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False),
                               min_size=len(y), max_size=len(y)))
    value = smape(y, y_hat)
    assert 0.0 <= value <= 2.0
    assert value == pytest.approx(smape(y_hat, y))
    assert mae(y, y_hat) >= 0.0
