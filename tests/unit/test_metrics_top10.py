"""Top-k category tables with movement marks (Table 5)."""

from __future__ import annotations

import pytest

from bubblescope.metrics.top10 import TopRow, compare_top, top_categories


def test_top_categories_shares_and_ties() -> None:
    cats = ["B", "A", "C", "A", "B", "D"]
    assert top_categories(cats, k=3) == [("A", 2 / 6), ("B", 2 / 6), ("C", 1 / 6)]
    assert top_categories([], k=3) == []
    with pytest.raises(ValueError):
        top_categories(cats, k=0)


def test_compare_without_previous() -> None:
    rows = compare_top(["A", "A", "B"], k=10)
    assert rows == [TopRow(1, "A", 2 / 3, None, ""), TopRow(2, "B", 1 / 3, None, "")]


def test_compare_marks_movement() -> None:
    previous = ["A"] * 4 + ["B"] * 3 + ["C"] * 2 + ["D"]
    current = ["B"] * 4 + ["A"] * 3 + ["C"] * 2 + ["E"]
    rows = compare_top(current, previous, k=4)
    assert [(r.category, r.rank, r.previous_rank, r.mark) for r in rows] == [
        ("B", 1, 2, "up"),
        ("A", 2, 1, "down"),
        ("C", 3, 3, "same"),
        ("E", 4, None, "NEW"),
    ]


def test_category_outside_previous_top_k_is_new() -> None:
    previous = ["A"] * 3 + ["B"] * 2 + ["C"]
    current = ["C"] * 3 + ["A"]
    rows = compare_top(current, previous, k=2)
    assert rows[0].category == "C" and rows[0].mark == "NEW"
    assert rows[1].mark == "down"


def test_as_dict() -> None:
    row = TopRow(1, "Food", 0.5, 2, "up")
    assert row.as_dict() == {
        "rank": 1, "category": "Food", "share": 0.5, "previous_rank": 2, "mark": "up"}
