"""Errors of the simulated world (catalogue, platforms, synthetic humans).

    BubblescopeError
    └── SimError                      (code "sim")

The part raises builtin errors for programming mistakes; a failure of its own subclasses
SimError here. Each keeps bubblescope's picklable shape, so it survives Ray's actor boundary.
"""

from __future__ import annotations

from bubblescope.errors import BubblescopeError


class SimError(BubblescopeError, code="sim"):
    """The root of every error the sim part raises."""
