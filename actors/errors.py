"""Errors of the actors part (see bubblescope.errors for the tree)."""

from bubblescope.errors import BubblescopeError


class DeviceError(BubblescopeError):
    """A device failed in a way a restart may cure."""

    code = "device"


class RunFailedError(BubblescopeError):
    """A run exhausted its device restarts."""

    code = "run-failed"
