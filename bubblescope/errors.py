"""The error root shared by every part of bubblescope, and the top of the error tree.

    BubblescopeError              (code "bubblescope")          the CLI exits 1
    ├── ConfigError               a file, key or flag a user wrote is wrong; the CLI exits 2
    ├── UnreachableError          a Ray cluster, Ray address, adb server or device does not
    │                             answer; the CLI exits 3
    ├── StorageError              the job store is unreadable, inconsistent or unwritable
    └── one root per part, each in its part's errors.py:
        ActorsError       actors/errors.py        AgentError        agent/errors.py
        ClusterError      cluster/errors.py       DevicesError      devices/errors.py
        MetricsError      metrics/errors.py       PerceptionError   perception/errors.py
        PersonasError     personas/errors.py      RecorderError     recorder/errors.py
        ReportError       report/errors.py        ServeError        serve/errors.py
        SimError          sim/errors.py           AndroidSimError   sim/android/errors.py
        TrainError        trainer/errors.py

A part's error that is the user's fault also subclasses ConfigError, one that is an unreachable
peer also UnreachableError, so the CLI's exit code says whose fault it is.

Codes follow one style: a part's root is "<part>", its errors "<part>.<kind>", kebab-case
(e.g. "devices.offline", "cluster.job-file"); the core's are "bubblescope.<kind>". Every error
pickles with its message, so it survives Ray's actor boundary and can be matched on by type
after it has crossed it.
"""

from __future__ import annotations


class BubblescopeError(Exception):
    """The root of every error bubblescope raises; ``code`` names its kind."""

    code = "bubblescope"

    def __init_subclass__(cls, code: str = "", **kwargs: object) -> None:
        # A subclass names its code in its class line; one that names none keeps its parent's.
        super().__init_subclass__(**kwargs)
        if code:
            cls.code = code

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self):  # keep subclasses picklable whatever their __init__ takes
        return (_rebuild, (type(self), self.message))


def _rebuild(cls: type[BubblescopeError], message: str) -> BubblescopeError:
    error = cls.__new__(cls)
    BubblescopeError.__init__(error, message)
    return error


class ConfigError(BubblescopeError, code="bubblescope.config"):
    """Something the user wrote (a job file, a persona file, a flag) is invalid.

    The message is one line naming the file, the key and what to do.
    """

    def __init__(self, message: str, *, source: str = "", key: str = "") -> None:
        where = ": ".join(part for part in (source, key) if part)
        super().__init__(f"{where}: {message}" if where else message)


class UnreachableError(BubblescopeError, code="bubblescope.unreachable"):
    """A Ray cluster, a Ray address, an adb server or a device does not answer.

    Not the user's file: the same command works once the peer is up. The message names the
    address and how to bring it up.
    """


class StorageError(BubblescopeError, code="bubblescope.storage"):
    """The job store is unreadable, inconsistent or unwritable."""
