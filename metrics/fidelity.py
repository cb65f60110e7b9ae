"""Behavioural fidelity of a simulated user on watch duration: SMAPE and MAE."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _pair(y: ArrayLike, y_hat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as 1-D float arrays of the same, non-zero length."""
    a = np.asarray(y, dtype=np.float64).ravel()
    b = np.asarray(y_hat, dtype=np.float64).ravel()
    if a.size != b.size:
        raise ValueError(f"y and y_hat differ in length: {a.size} != {b.size}")
    if a.size == 0:
        raise ValueError("y and y_hat are empty; give at least one value")
    return a, b


def smape_terms(y: ArrayLike, y_hat: ArrayLike) -> np.ndarray:
    """Each pair's |y - y_hat| / ((|y| + |y_hat|) / 2), in [0, 2]; 0 where both are 0."""
    a, b = _pair(y, y_hat)
    num = np.abs(a - b)
    den = (np.abs(a) + np.abs(b)) / 2.0
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def smape(y: ArrayLike, y_hat: ArrayLike) -> float:
    """Symmetric mean absolute percentage error, in [0, 2]: the mean of `smape_terms`."""
    return float(smape_terms(y, y_hat).mean())


def mae(y: ArrayLike, y_hat: ArrayLike) -> float:
    """Mean absolute error, in the inputs' unit (seconds for watch duration)."""
    a, b = _pair(y, y_hat)
    return float(np.abs(a - b).mean())
