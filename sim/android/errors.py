"""Errors of the virtual Android device.

    BubblescopeError
    └── AndroidSimError            (code "android_sim")
        ├── AdbProtocolError       a peer sent bytes that break the ADB wire format
        ├── StreamClosedError      the ADB stream (or its transport) is gone; also a
        │                          ConnectionError, so relay code can treat it as a broken pipe
        └── ReverseError           open_reverse on a spec with no reverse, or the host refused

Malformed input from the host never surfaces as an exception to the caller of the device: the
transport catches AdbProtocolError, logs it and drops that one connection.
"""

from __future__ import annotations

from bubblescope.errors import BubblescopeError


class AndroidSimError(BubblescopeError):
    code = "android_sim"


class AdbProtocolError(AndroidSimError):
    code = "adb_protocol"


class StreamClosedError(AndroidSimError, ConnectionError):
    code = "adb_stream_closed"


class ReverseError(AndroidSimError):
    code = "adb_reverse"
