"""Depth of a bubble: Bubble Escape Potential (BEP).

After a cultivation phase under persona p and an equally long counterfactual phase under the
reversed persona p', BEP(p) is the Jensen-Shannon divergence, base-2 logs, between the two
phases' category distributions. It lies in [0, 1]: 0 means the feed did not move at all,
1 means the two phases share no category.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike


def _as_distribution(weights: ArrayLike, name: str) -> np.ndarray:
    """Normalise non-negative weights to a probability vector."""
    arr = np.asarray(weights, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must hold finite non-negative weights")
    total = arr.sum()
    if total <= 0:
        raise ValueError(f"{name} has no mass; give at least one positive weight")
    return arr / total


def _kl_to_mixture(p: np.ndarray, m: np.ndarray) -> float:
    """KL(p || m) in bits, with 0 log 0 = 0; m > 0 wherever p > 0.

    Dividing by p's own sum (1 up to rounding) makes disjoint supports give exactly 1.
    """
    mask = p > 0
    weights = p[mask]
    return float(np.sum(weights * np.log2(weights / m[mask])) / weights.sum())


def js_divergence(p: ArrayLike, q: ArrayLike) -> float:
    """Jensen-Shannon divergence with base-2 logs, in [0, 1].

    Inputs are non-negative weights of equal length, normalised here. Small negative or
    above-one results from float error are clipped.
    """
    pn = _as_distribution(p, "p")
    qn = _as_distribution(q, "q")
    if pn.shape != qn.shape:
        raise ValueError(f"p and q differ in length: {pn.size} != {qn.size}")
    m = 0.5 * (pn + qn)
    value = 0.5 * _kl_to_mixture(pn, m) + 0.5 * _kl_to_mixture(qn, m)
    return float(min(1.0, max(0.0, value)))


def bep(phase_a: Sequence[str], phase_b: Sequence[str]) -> float:
    """Bubble Escape Potential between two phases' category sequences.

    The empirical distributions are taken over the union of the labels seen in either phase.
    """
    if len(phase_a) == 0 or len(phase_b) == 0:
        raise ValueError("both phases need at least one video")
    counts_a = Counter(phase_a)
    counts_b = Counter(phase_b)
    labels = sorted(set(counts_a) | set(counts_b))
    p = [counts_a[label] for label in labels]
    q = [counts_b[label] for label in labels]
    return js_divergence(p, q)
