"""Errors of the virtual Android device and its farm.

    BubblescopeError
    └── AndroidSimError            (code "sim-android")
        ├── ShellSyntaxError       a command line the shell cannot parse (a ValueError; mksh
        │                          prints it and exits 1)
        ├── UsageError             a phone program's bad arguments (a ValueError; the program
        │                          prints it and exits non-zero)
        ├── AdbProtocolError       a peer sent bytes that break the ADB wire format
        ├── StreamClosedError      the ADB stream (or its transport) is gone; also a
        │                          ConnectionError, so relay code can treat it as a broken pipe
        ├── ReverseError           open_reverse on a spec with no reverse, or the host refused
        ├── SyncFailure            the sync service answers FAIL with it and ends the session
        ├── SpeechUnavailable      espeak-ng cannot speak a transcript
        └── FarmError              the virtual farm cannot start, is already up, or is absent

Malformed input from the host never surfaces as an exception to the caller of the device: the
transport catches AdbProtocolError, logs it and drops that one connection.
"""

from __future__ import annotations

from bubblescope.errors import BubblescopeError


class AndroidSimError(BubblescopeError, code="sim-android"):
    """The root of every error the sim-android part raises."""


class ShellSyntaxError(AndroidSimError, ValueError, code="sim-android.shell-syntax"):
    """A command line the shell cannot parse (mksh prints it and exits with 1)."""


class UsageError(AndroidSimError, ValueError, code="sim-android.usage"):
    """Bad arguments: the program prints the message and exits non-zero."""


class AdbProtocolError(AndroidSimError, code="sim-android.adb-protocol"):
    """A peer sent bytes that break the ADB wire format."""


class StreamClosedError(AndroidSimError, ConnectionError, code="sim-android.adb-stream-closed"):
    """The ADB stream, or its transport, is gone; relay code treats it as a broken pipe."""


class ReverseError(AndroidSimError, code="sim-android.adb-reverse"):
    """open_reverse on a spec with no reverse, or the host refused it."""


class SyncFailure(AndroidSimError, code="sim-android.sync"):
    """Answer FAIL with this message, then end the sync session."""


class SpeechUnavailable(AndroidSimError, code="sim-android.speech"):
    """espeak-ng cannot speak a transcript."""


class FarmError(AndroidSimError, code="sim-android.farm"):
    """The virtual farm cannot start, is already up, or is absent."""
