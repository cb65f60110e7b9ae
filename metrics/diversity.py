"""Breadth of a feed: how many categories it shows, and how evenly.

The paper measures filter-bubble breadth on a fresh account as the number of distinct
categories in a sliding window of 50 videos; category entropy is a second view of the same
feed. Categories are plain strings in viewing order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence

import numpy as np


def _check_window(window: int) -> None:
    """Reject window sizes that cannot hold a video."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")


# A feed's categories, as recorded (a list) or as the bootstrap resamples them (an array).
Categories = Sequence[str] | np.ndarray


def _window_counters(categories: Categories, window: int) -> Iterator[Counter[str]]:
    """Yield the category counter of each full window, sliding one step at a time.

    The same counter object is updated in place and yielded each time, so callers must read
    it before advancing. Each step costs O(1).
    """
    _check_window(window)
    if len(categories) < window:
        return
    counts: Counter[str] = Counter(categories[:window])
    yield counts
    for i in range(window, len(categories)):
        leaving = categories[i - window]
        counts[leaving] -= 1
        if counts[leaving] == 0:
            del counts[leaving]
        counts[categories[i]] += 1
        yield counts


def distinct_in_windows(categories: Categories, window: int = 50) -> np.ndarray:
    """Number of distinct categories in each full window.

    Element i covers ``categories[i : i + window]``; the result has length
    ``max(0, n - window + 1)``.
    """
    values = [len(counts) for counts in _window_counters(categories, window)]
    return np.asarray(values, dtype=np.int64)


def _entropy_of_counts(counts: np.ndarray) -> float:
    """Shannon entropy in bits of the distribution given by non-negative counts."""
    total = counts.sum()
    if total <= 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(max(0.0, -(p * np.log2(p)).sum()))


def entropy_bits(categories: Categories) -> float:
    """Shannon entropy (base 2) of the empirical category distribution; 0.0 when empty."""
    counts = np.fromiter(Counter(categories).values(), dtype=np.float64)
    return _entropy_of_counts(counts)


def entropy_in_windows(categories: Categories, window: int = 50) -> np.ndarray:
    """Entropy in bits of each full window, indexed like :func:`distinct_in_windows`."""
    values = [
        _entropy_of_counts(np.fromiter(counts.values(), dtype=np.float64))
        for counts in _window_counters(categories, window)
    ]
    return np.asarray(values, dtype=np.float64)


def distribution(
    categories: Sequence[str], labels: Sequence[str] | None = None
) -> dict[str, float]:
    """Share of each category, summing to 1.

    With ``labels`` the result has exactly those keys (absent ones get 0) and a category
    outside them is an error, so distributions from different feeds line up. Empty input
    gives all zeros (or ``{}`` without labels).
    """
    counts = Counter(categories)
    keys = list(labels) if labels is not None else sorted(counts)
    unknown = set(counts) - set(keys)
    if unknown:
        raise ValueError(f"categories not among the labels: {sorted(unknown)}")
    total = len(categories)
    return {key: (counts[key] / total if total else 0.0) for key in keys}


def diversity_change(start: float, end: float) -> float:
    """Relative change ``(end - start) / start``; nan when ``start`` is 0 (undefined)."""
    if start == 0:
        return float("nan")
    return (end - start) / start


def edge_diversity(categories: Sequence[str], window: int = 50) -> tuple[float, float]:
    """Mean distinct categories over the first and over the last `window` sliding windows.

    Averaging a window's worth of overlapping windows at each edge keeps the comparison from
    hanging on one window's luck; a run shorter than ``2 * window - 1`` uses the windows it has.
    """
    series = distinct_in_windows(categories, window)
    if series.size == 0:
        raise ValueError(f"need at least {window} videos, got {len(categories)}")
    k = min(window, series.size)
    return float(series[:k].mean()), float(series[-k:].mean())
