"""Errors of the actors part (see bubblescope.errors for the tree)."""

from bubblescope.errors import BubblescopeError, ConfigError


class DeviceError(BubblescopeError):
    """A device failed in a way a restart may cure."""

    code = "device"


class DeviceOffline(DeviceError):
    """The device dropped off adb, or its streams ended: wait for it, then resume."""

    code = "device-offline"


class ScrcpyError(DeviceError):
    """The scrcpy server could not start, or its streams broke."""

    code = "scrcpy"


class ScrcpyServerJarError(ConfigError):
    """The scrcpy server jar is missing or of a version the client does not speak."""

    code = "scrcpy-jar"


class RunFailedError(BubblescopeError):
    """A run exhausted its device restarts."""

    code = "run-failed"
