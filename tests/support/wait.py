"""The one way a test waits: poll a condition until it holds or a deadline passes.

A fixed `time.sleep` as synchronisation passes on a fast machine and fails on a loaded one;
polling the condition itself does neither. This module holds the only sleep that tests use to
wait (tests/unit/test_tiers.py enforces it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition a test waited for did not hold in time (a test failure, not an error)."""


def wait_for(predicate: Callable[[], T], timeout_s: float, *, every_s: float = 0.05,
             what: str = "the condition", detail: Callable[[], str] | None = None) -> T:
    """Call `predicate` every `every_s` seconds until it returns something truthy, and return
    that; after `timeout_s` seconds, fail naming `what`, the last value seen and `detail()`
    (a log tail, say)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(_message(what, timeout_s, value, detail))
        time.sleep(every_s)


def _message(what: str, timeout_s: float, value: object, detail: Callable[[], str] | None) -> str:
    text = f"timed out after {timeout_s:g} s waiting for {what} (last seen: {value!r})"
    return f"{text}\n{detail()}" if detail is not None else text
