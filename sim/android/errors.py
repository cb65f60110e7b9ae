"""Errors of the virtual Android device and its farm.

    BubblescopeError
    └── AndroidSimError            (code "sim-android")
        ├── AdbProtocolError       a peer sent bytes that break the ADB wire format
        ├── StreamClosedError      the ADB stream (or its transport) is gone; also a
        │                          ConnectionError, so relay code can treat it as a broken pipe
        ├── ReverseError           open_reverse on a spec with no reverse, or the host refused
        ├── SyncFailure            the sync service answers FAIL with it and ends the session
        ├── ShellSyntaxError       a command line the shell cannot parse (a ValueError; mksh
        │                          prints it and exits 1)
        ├── UsageError             a phone program's bad arguments (a ValueError; the program
        │                          prints it and exits non-zero)
        ├── SpeechUnavailable      espeak-ng cannot speak a transcript
        └── FarmError              the virtual farm cannot start, is already up, or is absent

Malformed input from the host never surfaces as an exception to the caller of the device: the
transport catches AdbProtocolError, logs it and drops that one connection.
"""

from __future__ import annotations

from bubblescope.errors import BubblescopeError


class AndroidSimError(BubblescopeError):
    code = "sim-android"


class AdbProtocolError(AndroidSimError):
    code = "sim-android.adb-protocol"


class StreamClosedError(AndroidSimError, ConnectionError):
    code = "sim-android.adb-stream-closed"


class ReverseError(AndroidSimError):
    code = "sim-android.adb-reverse"


class SyncFailure(AndroidSimError):
    """Answer FAIL with this message, then end the sync session."""

    code = "sim-android.sync"


class ShellSyntaxError(AndroidSimError, ValueError):
    """A command line the shell cannot parse (mksh prints it and exits with 1)."""

    code = "sim-android.shell-syntax"


class UsageError(AndroidSimError, ValueError):
    """Bad arguments: the program prints the message and exits non-zero."""

    code = "sim-android.usage"


class SpeechUnavailable(AndroidSimError):
    code = "sim-android.speech"


class FarmError(AndroidSimError):
    code = "sim-android.farm"
