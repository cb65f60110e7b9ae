"""The `sync:` service, protocol v1 (docs/architecture.md#adb-services), over the virtual file system.

Requests are `id(4) u32-LE length, payload`, and may arrive split across WRTEs (we read
exact byte counts from the stream). Every response record goes out in one `write()`, hence
one WRTE: adbutils reads some fields with a single recv. STAT/LIST/SEND/RECV/QUIT only; the
v2 requests (STA2, LST2, SND2...) are not advertised, and get FAIL like any unknown id.
"""

from __future__ import annotations

import asyncio
import logging
import stat
import struct
from collections.abc import Awaitable, Callable

from bubblescope.sim.android.adb_stream import AdbStream
from bubblescope.sim.android.errors import SyncFailure
from bubblescope.sim.android.filesystem import VirtualFileSystem

logger = logging.getLogger(__name__)

SYNC_DATA_MAX = 64 * 1024
MAX_PATH = 1024
_U32 = struct.Struct("<I")
_REQUEST = struct.Struct("<4sI")


def fail_record(message: str) -> bytes:
    raw = message.encode("utf-8")
    return b"FAIL" + _U32.pack(len(raw)) + raw


class SyncSession:
    def __init__(self, stream: AdbStream, fs: VirtualFileSystem, clock: Callable[[], float]):
        self.stream = stream
        self.fs = fs
        self.clock = clock

    async def run(self) -> None:
        try:
            while await self._one_request():
                pass
        except asyncio.IncompleteReadError:
            logger.debug("%r: sync stream ended mid-request", self.stream)
        except SyncFailure as failure:
            await self.stream.write(fail_record(str(failure)))

    async def _one_request(self) -> bool:
        """Serve one request; False after QUIT."""
        request, length = _REQUEST.unpack(await self.stream.readexactly(8))
        if request == b"QUIT":
            return False
        if request not in (b"STAT", b"LIST", b"SEND", b"RECV"):
            raise SyncFailure(f"unknown command {request!r}")
        if length > MAX_PATH:
            raise SyncFailure("path too long")
        path = (await self.stream.readexactly(length)).decode("utf-8", errors="replace")
        handler = {b"STAT": self._stat, b"LIST": self._list, b"SEND": self._send,
                   b"RECV": self._recv}[request]
        await handler(path)
        return True

    def _lstat(self, path: str) -> tuple[int, int, int]:
        try:
            return self.fs.stat(path) or (0, 0, 0)
        except ValueError:  # not absolute: nothing there
            return 0, 0, 0

    async def _stat(self, path: str) -> None:
        mode, size, mtime = self._lstat(path)
        await self.stream.write(b"STAT" + struct.pack("<III", mode, size, mtime))

    async def _list(self, path: str) -> None:
        mode, _, _ = self._lstat(path)
        if stat.S_ISDIR(mode):
            parent = path.rstrip("/").rsplit("/", 1)[0] or "/"
            entries = [(".", path), ("..", parent)]
            entries += [(name, path.rstrip("/") + "/" + name) for name in self.fs.listdir(path)]
            for name, full in entries:
                await self.stream.write(self._dent(name, full))
        await self.stream.write(b"DONE" + bytes(16))

    def _dent(self, name: str, path: str) -> bytes:
        mode, size, mtime = self._lstat(path)
        raw = name.encode("utf-8")
        return b"DENT" + struct.pack("<IIII", mode, size, mtime, len(raw)) + raw

    async def _send(self, spec: str) -> None:
        """SEND "<path>,<mode>" then DATA... DONE <mtime>; one OKAY or FAIL at the end."""
        path, _, mode_text = spec.rpartition(",")
        if not path:
            path, mode_text = spec, "33188"
        chunks, mtime = await self._receive_file()
        try:
            mode = int(mode_text) if mode_text.isdigit() else 0o644
            self.fs.write(path, b"".join(chunks), mode=mode, mtime=mtime or int(self.clock()))
        except (OSError, ValueError) as error:
            await self.stream.write(fail_record(f"couldn't create file: {_describe(error)}"))
            return
        await self.stream.write(b"OKAY" + _U32.pack(0))

    async def _receive_file(self) -> tuple[list[bytes], int]:
        chunks: list[bytes] = []
        while True:
            request, value = _REQUEST.unpack(await self.stream.readexactly(8))
            if request == b"DONE":
                return chunks, value
            if request != b"DATA" or value > SYNC_DATA_MAX:
                raise SyncFailure("invalid data message" if request != b"DATA"
                                  else "oversize data message")
            chunks.append(await self.stream.readexactly(value))

    async def _recv(self, path: str) -> None:
        try:
            data = self.fs.read(path)
        except (OSError, ValueError) as error:
            await self.stream.write(fail_record(f"open failed: {_describe(error)}"))
            return
        step = max(1, min(SYNC_DATA_MAX, self.stream.max_payload - 8))
        for start in range(0, len(data), step):
            chunk = data[start:start + step]
            await self.stream.write(b"DATA" + _U32.pack(len(chunk)) + chunk)
        await self.stream.write(b"DONE" + _U32.pack(0))


def _describe(error: Exception) -> str:
    if isinstance(error, IsADirectoryError):
        return "Is a directory"
    if isinstance(error, NotADirectoryError):
        return "Not a directory"
    if isinstance(error, FileNotFoundError):
        return "No such file or directory"
    return str(error) or type(error).__name__


def sync_service(fs: VirtualFileSystem,
                 clock: Callable[[], float]) -> Callable[[AdbStream], Awaitable[None]]:
    async def serve(stream: AdbStream) -> None:
        await SyncSession(stream, fs, clock).run()

    return serve
