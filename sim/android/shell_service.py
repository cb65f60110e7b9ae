"""The `shell:`, `shell,v2,...:` and `exec:` services (docs/architecture.md#adb-services).

- v1 (`shell:cmd`, `exec:cmd`): stdout and stderr merged, raw bytes, then CLSE; no status.
- v2 (`shell,v2[,raw|,pty][,TERM=x]:cmd`): packets `u8 id, u32 LE length, data`; the host
  sends stdin (0), close-stdin (4), window-size (5); we send stdout (1), stderr (2), then
  exit (3, one status byte) and CLSE.
- An empty command is an interactive shell: lines read from stdin run one by one until
  `exit` or end of input; with a PTY (`adb shell` on a terminal) it also prints a prompt,
  echoes what is typed and turns LF into CRLF, like a terminal line discipline would.

When the host closes the stream while a program still runs, the program's `ctx.cancelled` is
set, its stdin ends, and after a short grace its task is cancelled: streaming programs such
as `getevent` or the scrcpy server end that way (see run_until_closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bubblescope.sim.android.adb_stream import AdbStream
from bubblescope.sim.android.commands import OutputStream
from bubblescope.sim.android.shell_io import ShellIO
from bubblescope.sim.android.shell_lang import Shell

logger = logging.getLogger(__name__)

ID_STDIN, ID_STDOUT, ID_STDERR, ID_EXIT, ID_CLOSE_STDIN, ID_WINDOW_SIZE = range(6)
MAX_PACKET = 1024 * 1024
STOP_GRACE_S = 0.5  # after the host closes: time to finish before the task is cancelled
CANCEL_GRACE_S = 2.0  # after cancel(): time to run finally blocks

ServiceFn = Callable[[AdbStream], Awaitable[None]]


@dataclass(frozen=True)
class ShellRequest:
    command: str
    v2: bool = False
    pty: bool = False
    term: str = "dumb"


def parse_shell_request(destination: str) -> ShellRequest | None:
    """`shell[,arg...]:cmd` or `exec:cmd` as a request; None for anything else."""
    if destination.startswith("exec:"):
        return ShellRequest(destination[len("exec:"):])
    head, sep, command = destination.partition(":")
    names = head.split(",")
    if not sep or names[0] != "shell":
        return None
    args = names[1:]
    pty = "pty" in args or (not command and "raw" not in args)  # adbd's defaults
    term = next((arg[5:] for arg in args if arg.startswith("TERM=")), "dumb")
    return ShellRequest(command, v2="v2" in args, pty=pty, term=term)


def encode_packet(packet_id: int, data: bytes = b"") -> bytes:
    return struct.pack("<BI", packet_id, len(data)) + data


def shell_service(request: ShellRequest, new_shell: Callable[[], Shell],
                  prompt: str) -> ServiceFn:
    async def serve(stream: AdbStream) -> None:
        stdin = asyncio.StreamReader()
        pump = _pump_v2 if request.v2 else _pump_raw
        pump_task = asyncio.create_task(pump(stream, stdin))
        try:
            io = _shell_io(stream, request, stdin)
            shell = new_shell()
            shell.vars["TERM"] = request.term
            if request.command:
                work = shell.run(request.command, io)
            else:
                work = _interactive(shell, io, prompt if request.pty else None)
            status = await run_until_closed(work, stream, io.cancelled)
            if status is not None and request.v2:
                await stream.write(encode_packet(ID_EXIT, bytes([status & 0xFF])))
        finally:
            pump_task.cancel()

    return serve


def _shell_io(stream: AdbStream, request: ShellRequest, stdin: asyncio.StreamReader) -> ShellIO:
    def sink(packet_id: int) -> Callable[[bytes], Awaitable[None]]:
        async def write(data: bytes) -> None:
            if request.pty:
                data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            await stream.write(encode_packet(packet_id, data) if request.v2 else data)

        return write

    stdout = OutputStream(sink(ID_STDOUT))
    stderr = stdout if request.pty or not request.v2 else OutputStream(sink(ID_STDERR))
    return ShellIO(stdout=stdout, stderr=stderr, stdin=stdin)


async def run_until_closed(work: Awaitable[int], stream: AdbStream,
                           cancelled: asyncio.Event) -> int | None:
    """The command's status, or None when the stream closed first.

    On close, as adbd hangs up on its subprocess: `cancelled` is set and stdin reaches its
    end (what the host sent is still delivered), the command gets STOP_GRACE_S to finish
    (`adb exec-in 'cat > f'` must still write f), then its task is cancelled."""
    task = asyncio.ensure_future(work)
    closed = asyncio.ensure_future(stream.wait_closed())
    try:
        done, _ = await asyncio.wait({task, closed}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        cancelled.set()
        await asyncio.wait({task}, timeout=STOP_GRACE_S)
        if task.done() and not task.cancelled() and task.exception() is not None:
            logger.debug("%r: command ended after close: %r", stream, task.exception())
        return None
    finally:
        closed.cancel()
        if not task.done():
            cancelled.set()
            task.cancel()
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait({task}, timeout=CANCEL_GRACE_S)


async def _pump_raw(stream: AdbStream, stdin: asyncio.StreamReader) -> None:
    """v1: whatever the host writes is the command's stdin."""
    while chunk := await stream.read():
        stdin.feed_data(chunk)
    stdin.feed_eof()


async def _pump_v2(stream: AdbStream, stdin: asyncio.StreamReader) -> None:
    """v2: demultiplex the host's packets; only stdin and close-stdin matter here."""
    try:
        while True:
            packet_id, length = struct.unpack("<BI", await stream.readexactly(5))
            if length > MAX_PACKET:
                await stream.close()
                return
            data = await stream.readexactly(length) if length else b""
            if packet_id == ID_STDIN:
                stdin.feed_data(data)
            elif packet_id == ID_CLOSE_STDIN:
                break
    except asyncio.IncompleteReadError:
        pass
    finally:
        stdin.feed_eof()


class _LineEditor:
    """Just enough of a terminal line discipline for `adb shell` on a PTY."""

    def __init__(self, io: ShellIO, echo: bool) -> None:
        self.io = io
        self.echo = echo
        self.line = bytearray()

    async def feed(self, chunk: bytes) -> list[str | None]:
        """Complete lines typed so far (None for end-of-input, ^D on an empty line)."""
        lines: list[str | None] = []
        for byte in chunk:
            if byte in (0x0D, 0x0A):
                lines.append(self.line.decode("utf-8", errors="replace"))
                self.line.clear()
                await self._echo(b"\n")
            elif byte in (0x08, 0x7F) and self.echo:
                if self.line:
                    self.line.pop()
                    await self._echo(b"\b \b")
            elif byte == 0x04 and self.echo and not self.line:
                lines.append(None)
            else:
                self.line.append(byte)
                await self._echo(bytes([byte]))
        return lines

    async def _echo(self, data: bytes) -> None:
        if self.echo:
            await self.io.stdout.write(data)


async def _interactive(shell: Shell, io: ShellIO, prompt: str | None) -> int:
    """Run lines from stdin until `exit` or end of input; the status of the last one."""
    editor = _LineEditor(io, echo=prompt is not None)
    reader = io.stdin
    if prompt:
        await io.stdout.write(prompt)
    while reader is not None and (chunk := await reader.read(4096)):
        for line in await editor.feed(chunk):
            if line is None:
                return shell.status
            await shell.run(line, io)
            if shell.exited:
                return shell.status
            if prompt:
                await io.stdout.write(prompt)
    if editor.line:
        await shell.run(editor.line.decode("utf-8", errors="replace"), io)
    return shell.status
