"""The virtual device's files: an in-memory tree that sync (push/pull), the shell and the
programs share. Paths are absolute POSIX paths; directories are implied by their files and
by explicit mkdir."""

from __future__ import annotations

import stat
import time
from dataclasses import dataclass
from posixpath import dirname, normpath

FILE_MODE = stat.S_IFREG | 0o644
DIR_MODE = stat.S_IFDIR | 0o755


@dataclass
class Entry:
    mode: int
    data: bytes
    mtime: int


class VirtualFileSystem:
    def __init__(self, directories: tuple[str, ...] = ("/", "/data", "/data/local",
                                                      "/data/local/tmp", "/sdcard")) -> None:
        self._files: dict[str, Entry] = {}
        self._dirs: dict[str, int] = {}
        for directory in directories:
            self.mkdir(directory)

    @staticmethod
    def _norm(path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"not an absolute path: {path!r}")
        return normpath(path) if path != "/" else "/"

    def mkdir(self, path: str, mtime: int | None = None) -> None:
        """Create `path` and its missing parents; NotADirectoryError (and no change) when a
        file sits at any of those places."""
        path = self._norm(path)
        chain = [path]
        while chain[-1] != "/":
            chain.append(dirname(chain[-1]))
        blocked = next((p for p in chain if p in self._files), None)
        if blocked is not None:
            raise NotADirectoryError(blocked)
        for directory in chain:
            self._dirs.setdefault(directory, int(mtime or time.time()))

    def write(self, path: str, data: bytes, mode: int = FILE_MODE,
              mtime: int | None = None) -> None:
        path = self._norm(path)
        if path in self._dirs:
            raise IsADirectoryError(path)
        self.mkdir(dirname(path))
        self._files[path] = Entry(stat.S_IFREG | stat.S_IMODE(mode) if mode else FILE_MODE,
                                  bytes(data), int(mtime or time.time()))

    def read(self, path: str) -> bytes:
        path = self._norm(path)
        if path in self._dirs:
            raise IsADirectoryError(path)
        if path not in self._files:
            raise FileNotFoundError(path)
        return self._files[path].data

    def stat(self, path: str) -> tuple[int, int, int] | None:
        """(mode, size, mtime), or None when nothing is there."""
        path = self._norm(path)
        if path in self._files:
            entry = self._files[path]
            return entry.mode, len(entry.data), entry.mtime
        if path in self._dirs:
            return DIR_MODE, 4096, self._dirs[path]
        return None

    def listdir(self, path: str) -> list[str]:
        path = self._norm(path)
        if path not in self._dirs:
            raise FileNotFoundError(path)
        prefix = path.rstrip("/") + "/"
        names = {p[len(prefix):].split("/", 1)[0]
                 for p in (*self._files, *self._dirs) if p.startswith(prefix) and p != path}
        return sorted(names)

    def remove(self, path: str) -> None:
        path = self._norm(path)
        if path in self._files:
            del self._files[path]
        elif path in self._dirs:
            prefix = path.rstrip("/") + "/"
            if any(p.startswith(prefix) for p in (*self._files, *self._dirs)):
                raise OSError(f"directory not empty: {path}")
            del self._dirs[path]
        else:
            raise FileNotFoundError(path)
