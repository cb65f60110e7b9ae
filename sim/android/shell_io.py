"""A shell command's standard streams, and the redirections that change them: `> file`,
`>> file`, `< file`, `N>&M`, `/dev/null`.

Output to a file is collected while the command runs and written to the virtual file system
when it ends (the file is created, empty, up front, as `>` truncates at once). That keeps the
file system's whole-file API and is exact for everything but a concurrent reader of the same
file, which no adb client does.
"""

from __future__ import annotations

import asyncio
import posixpath
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bubblescope.sim.android.commands import OutputStream
from bubblescope.sim.android.filesystem import VirtualFileSystem

SH = "/system/bin/sh"
DEV_NULL = "/dev/null"


@dataclass
class ShellIO:
    """Where a command's standard streams go, and the flag its stream's closing sets."""

    stdout: OutputStream
    stderr: OutputStream
    stdin: asyncio.StreamReader | None = None
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)


class _FileSink:
    """Collects a command's output for one file; `flush` writes it."""

    def __init__(self, path: str, append: bool) -> None:
        self.path = path
        self.append = append
        self.chunks: list[bytes] = []
        self.stream = OutputStream(self._collect)

    async def _collect(self, data: bytes) -> None:
        self.chunks.append(data)

    def flush(self, fs: VirtualFileSystem) -> None:
        body = b"".join(self.chunks)
        found = fs.stat(self.path)
        if self.append and found is not None and stat.S_ISREG(found[0]):
            body = fs.read(self.path) + body
        fs.write(self.path, body)


async def _discard(data: bytes) -> None:
    return None


class _Redirector:
    def __init__(self, io: ShellIO, fs: VirtualFileSystem | None, cwd: str) -> None:
        self.fds: dict[int, object] = {0: io.stdin, 1: io.stdout, 2: io.stderr}
        self.fs = fs
        self.cwd = cwd
        self.sinks: list[_FileSink] = []

    def apply(self, fd: int, op: str, target: str) -> str | None:
        """Perform one redirection; an error text (mksh's wording) when it cannot."""
        if op == ">&":
            return self._duplicate(fd, target)
        if op == "<":
            return self._read_from(fd, target)
        return self._write_to(fd, target, append=op == ">>")

    def _duplicate(self, fd: int, target: str) -> str | None:
        if target == "-":
            self.fds[fd] = OutputStream(_discard)
            return None
        if not target.isdigit() or int(target) not in self.fds:
            return f"{target}: bad file descriptor"
        self.fds[fd] = self.fds[int(target)]
        return None

    def _read_from(self, fd: int, target: str) -> str | None:
        reader = asyncio.StreamReader()
        if target != DEV_NULL:
            path = posixpath.join(self.cwd, target)
            try:
                reader.feed_data(self.fs.read(path) if self.fs else b"")
            except OSError as error:
                return f"can't open {target}: {_reason(error)}"
        reader.feed_eof()
        self.fds[fd] = reader
        return None

    def _write_to(self, fd: int, target: str, append: bool) -> str | None:
        if target == DEV_NULL:
            self.fds[fd] = OutputStream(_discard)
            return None
        path = posixpath.normpath(posixpath.join(self.cwd, target))
        if self.fs is None:
            return f"can't create {target}: Read-only file system"
        parent = self.fs.stat(posixpath.dirname(path))
        found = self.fs.stat(path)
        if parent is None or not stat.S_ISDIR(parent[0]):
            return f"can't create {target}: No such file or directory"
        if found is not None and stat.S_ISDIR(found[0]):
            return f"can't create {target}: Is a directory"
        if not append or found is None:
            self.fs.write(path, b"")
        sink = _FileSink(path, append)
        self.sinks.append(sink)
        self.fds[fd] = sink.stream
        return None


def _reason(error: OSError) -> str:
    if isinstance(error, IsADirectoryError):
        return "Is a directory"
    return "No such file or directory"


@asynccontextmanager
async def redirected(targets: list[tuple[int, str, str]], io: ShellIO,
                     fs: VirtualFileSystem | None, cwd: str) -> AsyncIterator[ShellIO | None]:
    """The command's ShellIO after its redirections, or None (error already printed)."""
    if not targets:
        yield io
        return
    redirector = _Redirector(io, fs, cwd)
    for fd, op, target in targets:
        error = redirector.apply(fd, op, target)
        if error is not None:
            await io.stderr.write(f"{SH}: {error}\n")
            yield None
            return
    fds = redirector.fds
    try:
        yield ShellIO(stdout=fds[1], stderr=fds[2], stdin=fds[0],  # type: ignore[arg-type]
                      cancelled=io.cancelled)
    finally:
        if fs is not None:
            for sink in redirector.sinks:
                sink.flush(fs)
