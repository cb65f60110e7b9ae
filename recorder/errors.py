"""Errors of the recorder part: recording a person browsing on a phone into a dataset.

    BubblescopeError
    └── RecorderError                 (code "recorder") the recording could not start, or
        │                             one of its streams broke
        └── MediaError                a recording's media could not be written

A phone that drops off while recording raises the devices part's DeviceOffline. Each keeps
bubblescope's picklable shape, so it survives Ray's actor boundary.
"""

from __future__ import annotations

from bubblescope.errors import BubblescopeError


class RecorderError(BubblescopeError, code="recorder"):
    """The recording could not start, or one of its streams broke."""


class MediaError(RecorderError, code="recorder.media"):
    """A recording's media could not be written."""
