"""The error root shared by every part of bubblescope.

    BubblescopeError            (code "bubblescope")
    ├── ConfigError             a file or key a user wrote is wrong; the CLI exits 2
    ├── StorageError            the job store is unreadable, inconsistent or unwritable
    └── <part>.errors.*         each part subclasses these in its own errors module

Every error carries a stable ``code`` and pickles with its message, so it survives Ray's
actor boundary and can be matched on after it has crossed it.
"""

from __future__ import annotations


class BubblescopeError(Exception):
    code = "bubblescope"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self):  # keep subclasses picklable whatever their __init__ takes
        return (_rebuild, (type(self), self.message))


def _rebuild(cls: type[BubblescopeError], message: str) -> BubblescopeError:
    error = cls.__new__(cls)
    BubblescopeError.__init__(error, message)
    return error


class ConfigError(BubblescopeError):
    """Something the user wrote (a job file, a persona file, a flag) is invalid.

    The message is one line naming the file, the key and what to do.
    """

    code = "config"

    def __init__(self, message: str, *, source: str = "", key: str = "") -> None:
        where = ": ".join(part for part in (source, key) if part)
        super().__init__(f"{where}: {message}" if where else message)


class StorageError(BubblescopeError):
    code = "storage"
