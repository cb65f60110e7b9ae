"""Errors of the devices part: the adb + scrcpy phone, its drivers and the scrcpy wire.

    BubblescopeError
    └── DevicesError                  (code "devices")
        ├── DeviceError               a device failed in a way a restart may cure
        │   ├── DeviceOffline         it dropped off adb or its streams ended: wait, then
        │   │                         resume (also UnreachableError, exit 3)
        │   ├── ScrcpyError           the scrcpy server could not start, or its streams broke
        │   └── UiTreeError           the UI dump is empty or not the uiautomator format
        ├── AdbServerUnreachable      no adb server answers at host:port (UnreachableError)
        ├── ScrcpyServerJarError      the scrcpy server jar is missing or of a version the
        │                             client does not speak (ConfigError, exit 2)
        └── ProtocolError             bytes that do not follow the scrcpy protocol (ValueError)
            └── VersionMismatch       client and server versions differ

Only a DeviceError is retried (AdbPhone.wait_online, the coordinator's restarts); the
others end the run at once. Each keeps bubblescope's picklable shape, so it survives Ray's
actor boundary: the coordinator matches DeviceOffline on the RayTaskError's cause.
"""

from __future__ import annotations

from bubblescope.errors import BubblescopeError, ConfigError, UnreachableError


class DevicesError(BubblescopeError):
    code = "devices"


class DeviceError(DevicesError):
    """A device failed in a way a restart may cure."""

    code = "devices.failed"


class DeviceOffline(DeviceError, UnreachableError):
    """The device dropped off adb, or its streams ended: wait for it, then resume."""

    code = "devices.offline"


class ScrcpyError(DeviceError):
    """The scrcpy server could not start, or its streams broke."""

    code = "devices.scrcpy"


class UiTreeError(DeviceError):
    """The UI dump is empty or not the uiautomator format."""

    code = "devices.ui-tree"


class AdbServerUnreachable(DevicesError, UnreachableError):
    """No adb server answers where the job or the flag says one runs."""

    code = "devices.adb-unreachable"


class ScrcpyServerJarError(DevicesError, ConfigError):
    """The scrcpy server jar is missing or of a version the client does not speak."""

    code = "devices.scrcpy-jar"


class ProtocolError(DevicesError, ValueError):
    """Bytes that do not follow the scrcpy protocol."""

    code = "devices.scrcpy-protocol"


class VersionMismatch(ProtocolError):
    """Client and server versions differ; the real server exits 1 with this message."""

    code = "devices.scrcpy-version"
