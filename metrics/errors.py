"""Errors of the metrics (BEP, diversity, fidelity, bootstrap, summary, exporter).

    BubblescopeError
    └── MetricsError                  (code "metrics")

The part raises builtin errors for programming mistakes; a failure of its own subclasses
MetricsError here. Each keeps bubblescope's picklable shape, so it survives Ray's actor boundary.
"""

from __future__ import annotations

from bubblescope.errors import BubblescopeError


class MetricsError(BubblescopeError, code="metrics"):
    """The root of every error the metrics part raises."""
