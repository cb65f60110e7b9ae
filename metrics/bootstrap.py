"""Confidence intervals by moving-block bootstrap.

Consecutive videos in a feed are autocorrelated (the recommender reacts to what was just
watched), so resampling single videos would understate the spread. Resampling contiguous
blocks keeps short-range dependence inside each block.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from bubblescope.metrics.bep import js_divergence
from bubblescope.metrics.diversity import distinct_in_windows, diversity_change


@dataclass(frozen=True)
class Interval:
    """A point estimate with a bootstrap percentile interval."""

    estimate: float  # the statistic on the observed data
    low: float  # lower percentile bound
    high: float  # upper percentile bound
    samples: np.ndarray = field(repr=False, compare=False)  # bootstrap replicates

    def as_list(self) -> list[float]:
        """The bounds as ``[low, high]``, e.g. for JSON reports."""
        return [self.low, self.high]


def block_indices(n: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """n indices into a length-n series, made of random contiguous blocks.

    Block starts are uniform in ``[0, n - block]``; ``block`` is clipped to ``[1, n]`` and the
    last block is truncated so exactly n indices come back.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    size = min(max(1, block), n)
    n_blocks = -(-n // size)
    starts = rng.integers(0, n - size + 1, size=n_blocks)
    return (starts[:, None] + np.arange(size)[None, :]).ravel()[:n]


def _check_params(n_boot: int, block: int, level: float) -> None:
    """Reject bootstrap settings that have no meaning."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")


def _percentile_interval(estimate: float, samples: np.ndarray, level: float,
                         bounds: tuple[float, float] = (-math.inf, math.inf)) -> Interval:
    """The bootstrap spread around the estimate: percentiles taken relative to the median.

    Plug-in divergences and distinct counts are biased under resampling (JS upwards, distinct
    counts downwards), so raw percentiles can sit wholly beside the estimate. Centring the
    spread on the estimate keeps the width the bootstrap measured and the estimate inside.
    The interval is clipped to the statistic's `bounds`; nan when no sample is finite.
    """
    finite = samples[np.isfinite(samples)]
    if finite.size == 0 or not math.isfinite(estimate):
        return Interval(float(estimate), math.nan, math.nan, samples)
    tail = (1.0 - level) / 2.0 * 100.0
    low, median, high = np.percentile(finite, [tail, 50.0, 100.0 - tail])
    low = max(bounds[0], estimate - (median - low))
    high = min(bounds[1], estimate + (high - median))
    return Interval(float(estimate), float(low), float(high), samples)


def _encode(*sequences: Sequence[str]) -> tuple[list[np.ndarray], int]:
    """Integer codes for each sequence over their shared label set, and the label count."""
    labels = sorted(set().union(*sequences))
    code = {label: i for i, label in enumerate(labels)}
    arrays = [np.fromiter((code[c] for c in seq), dtype=np.int64, count=len(seq))
              for seq in sequences]
    return arrays, len(labels)


def _replicate(statistic: Callable[[np.random.Generator], float], n_boot: int,
               seed: int) -> np.ndarray:
    """Run a resampling statistic n_boot times from one seeded generator."""
    rng = np.random.default_rng(seed)
    return np.array([statistic(rng) for _ in range(n_boot)], dtype=np.float64)


def _resample(codes: np.ndarray, block: int, rng: np.random.Generator) -> np.ndarray:
    """One moving-block resample of a coded series."""
    return codes[block_indices(codes.size, block, rng)]


def bootstrap_bep(phase_a: Sequence[str], phase_b: Sequence[str], *, n_boot: int = 1000,
                  block: int = 10, level: float = 0.95, seed: int = 0) -> Interval:
    """BEP of two phases with a block-bootstrap interval; phases are resampled independently.

    JS divergence is biased upwards under resampling, so for phases with (near-)identical
    distributions the interval sits slightly above the estimate.
    """
    _check_params(n_boot, block, level)
    if len(phase_a) == 0 or len(phase_b) == 0:
        raise ValueError("both phases need at least one video")
    (a, b), n_labels = _encode(phase_a, phase_b)

    def bep_of(x: np.ndarray, y: np.ndarray) -> float:
        return js_divergence(np.bincount(x, minlength=n_labels),
                             np.bincount(y, minlength=n_labels))

    samples = _replicate(
        lambda rng: bep_of(_resample(a, block, rng), _resample(b, block, rng)), n_boot, seed)
    return _percentile_interval(bep_of(a, b), samples, level, bounds=(0.0, 1.0))


def bootstrap_diversity_change(categories: Sequence[str], *, window: int = 50,
                               n_boot: int = 1000, block: int = 10, level: float = 0.95,
                               seed: int = 0) -> Interval:
    """Relative change in distinct categories per window, from the run's start to its end.

    Start and end are `edge_diversity`'s: the mean over the first and the last `window` sliding
    windows. Each replicate block-resamples the two edge segments independently. Resampling can
    only lose categories, so replicate counts are biased downwards at both edges alike.
    """
    _check_params(n_boot, block, level)
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if len(categories) < window:
        raise ValueError(f"need at least {window} videos, got {len(categories)}")
    span = window + min(window, len(categories) - window + 1) - 1
    (first, last), _ = _encode(categories[:span], categories[-span:])

    def mean_distinct(x: np.ndarray) -> float:
        return float(distinct_in_windows(x, window).mean())

    def change(x: np.ndarray, y: np.ndarray) -> float:
        return diversity_change(mean_distinct(x), mean_distinct(y))

    samples = _replicate(
        lambda rng: change(_resample(first, block, rng), _resample(last, block, rng)),
        n_boot, seed)
    return _percentile_interval(change(first, last), samples, level, bounds=(-1.0, math.inf))


def _nanmean(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """nanmean that returns nan for all-nan slices without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return np.nanmean(values, axis=axis)


def mean_interval(intervals: Sequence[Interval], level: float = 0.95) -> Interval:
    """Aggregate runs (replicates, personas) into one interval.

    The estimate is the mean of the runs' estimates and the samples the element-wise mean of
    their replicate arrays, which must share one length; nan values are ignored.
    """
    if not intervals:
        raise ValueError("no intervals to aggregate")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    lengths = {np.asarray(iv.samples).shape for iv in intervals}
    if len(lengths) != 1 or len(next(iter(lengths))) != 1:
        raise ValueError(f"all runs need 1-D samples of one length (same n_boot), got {lengths}")
    stacked = np.stack([np.asarray(iv.samples, dtype=np.float64) for iv in intervals])
    estimate = float(_nanmean(np.array([iv.estimate for iv in intervals], dtype=np.float64)))
    samples = np.asarray(_nanmean(stacked, axis=0), dtype=np.float64)
    return _percentile_interval(estimate, samples, level)


def bootstrap_paired_difference(a: Sequence[float], b: Sequence[float], *, block: int = 5,
                                n_boot: int = 2000, level: float = 0.95,
                                seed: int = 0) -> Interval:
    """mean(a - b) over paired per-item scores (two models' errors on the same decisions),
    with a moving-block interval: the items are decisions in time order, and neighbours in
    one session share what the person was in the mood for."""
    _check_params(n_boot, block, level)
    first, second = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if first.ndim != 1 or first.shape != second.shape or first.size == 0:
        raise ValueError(f"a and b must be equally long, non-empty sequences of numbers; got "
                         f"shapes {first.shape} and {second.shape}")
    differences = first - second
    samples = _replicate(lambda rng: float(differences[block_indices(
        differences.size, block, rng)].mean()), n_boot, seed)
    return _percentile_interval(float(differences.mean()), samples, level)
