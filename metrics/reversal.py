"""Counterfactual persona by quantile reversal.

If a persona's predicted watch duration d sits at quantile q of its training duration
distribution F, the reversed persona plays F^-1(1 - q): what the persona would skip, it now
watches, and the other way round.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class QuantileReversal:
    """Reverses watch durations against one persona's training duration sample.

    Immutable and picklable so it can travel to remote actors.
    """

    sorted_sample: tuple[float, ...]  # training watch durations in seconds, ascending

    @classmethod
    def from_sample(cls, durations: Sequence[float]) -> QuantileReversal:
        """Build from a persona's training watch durations (seconds, non-negative)."""
        values = [float(d) for d in durations]
        if not values:
            raise ValueError("the duration sample is empty; give at least one duration")
        if any(not math.isfinite(v) or v < 0 for v in values):
            raise ValueError("durations must be finite and non-negative")
        return cls(tuple(sorted(values)))

    def quantile(self, d: float) -> float:
        """Mid-rank empirical CDF at d: (#{x < d} + #{x == d} / 2) / n, in [0, 1]."""
        sample = np.asarray(self.sorted_sample)
        below = np.searchsorted(sample, d, side="left")
        at_or_below = np.searchsorted(sample, d, side="right")
        q = (below + 0.5 * (at_or_below - below)) / sample.size
        return float(min(1.0, max(0.0, q)))

    def inverse(self, q: float) -> float:
        """Empirical quantile at q (clipped to [0, 1]) with linear interpolation."""
        q = min(1.0, max(0.0, float(q)))
        return float(np.quantile(np.asarray(self.sorted_sample), q))

    def reverse(self, d: float) -> float:
        """Duration the reversed persona plays where this persona would play d."""
        return self.inverse(1.0 - self.quantile(d))
