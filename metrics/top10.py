"""Top categories of a feed and how they moved (the paper's Table 5)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TopRow:
    """One row of a top-k table."""

    rank: int  # 1-based rank in the current feed
    category: str  # category label
    share: float  # share of the current feed's videos
    previous_rank: int | None  # rank in the previous top-k, None if absent or no previous table
    mark: str  # "NEW", "up", "down", "same", or "" without a previous table

    def as_dict(self) -> dict[str, object]:
        """Plain dict for JSON or table output."""
        return asdict(self)


def top_categories(categories: Sequence[str], k: int = 10) -> list[tuple[str, float]]:
    """The k most frequent categories with their share; ties broken by name."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    counts = Counter(categories)
    total = len(categories)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [(label, count / total) for label, count in ranked[:k]]


def _mark(rank: int, previous_rank: int | None) -> str:
    """Movement of a category between two top-k tables (a smaller rank is higher)."""
    if previous_rank is None:
        return "NEW"
    if rank < previous_rank:
        return "up"
    if rank > previous_rank:
        return "down"
    return "same"


def compare_top(current: Sequence[str], previous: Sequence[str] | None = None,
                k: int = 10) -> list[TopRow]:
    """Top-k of ``current``, each row marked against the top-k of ``previous``."""
    rows = top_categories(current, k)
    if previous is None:
        return [TopRow(i, label, share, None, "") for i, (label, share) in enumerate(rows, 1)]
    before = {label: i for i, (label, _) in enumerate(top_categories(previous, k), 1)}
    return [
        TopRow(i, label, share, before.get(label), _mark(i, before.get(label)))
        for i, (label, share) in enumerate(rows, 1)
    ]
