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


class DevicesError(BubblescopeError, code="devices"):
    """The root of every error the devices part raises."""


class DeviceError(DevicesError, code="devices.failed"):
    """A device failed in a way a restart may cure."""


class DeviceOffline(DeviceError, UnreachableError, code="devices.offline"):
    """The device dropped off adb, or its streams ended: wait for it, then resume."""


class ScrcpyError(DeviceError, code="devices.scrcpy"):
    """The scrcpy server could not start, or its streams broke."""


class UiTreeError(DeviceError, code="devices.ui-tree"):
    """The UI dump is empty or not the uiautomator format."""


class AdbServerUnreachable(DevicesError, UnreachableError, code="devices.adb-unreachable"):
    """No adb server answers where the job or the flag says one runs."""


class ScrcpyServerJarError(DevicesError, ConfigError, code="devices.scrcpy-jar"):
    """The scrcpy server jar is missing or of a version the client does not speak."""


class ProtocolError(DevicesError, ValueError, code="devices.scrcpy-protocol"):
    """Bytes that do not follow the scrcpy protocol."""


class VersionMismatch(ProtocolError, code="devices.scrcpy-version"):
    """Client and server versions differ; the real server exits 1 with this message."""
