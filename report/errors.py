"""Errors of the report (the HTML report of a job).

    BubblescopeError
    └── ReportError                   (code "report")

The part raises builtin errors for programming mistakes; a failure of its own subclasses
ReportError here. Each keeps bubblescope's picklable shape, so it survives Ray's actor boundary.
"""

from __future__ import annotations

from bubblescope.errors import BubblescopeError


class ReportError(BubblescopeError, code="report"):
    """The root of every error the report part raises."""
