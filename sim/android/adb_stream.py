"""One ADB stream as the device's services see it: a bidirectional byte pipe with back-pressure.

Flow control follows the transport rules both ways (docs/architecture.md#adb-streams):
- outbound, at most one WRTE is unacknowledged: `write()` waits for the host's OKAY before it
  sends the next chunk, so a program writing faster than the host reads is slowed down;
- inbound, the OKAY for a host WRTE is sent when a reader has taken that chunk, so a handler
  that stops reading stops the host from sending more.

Handlers registered with `VirtualDevice.register_local` and the streams returned by
`VirtualDevice.open_reverse` are instances of this class: `read()`, `readexactly()`,
`write()`, `close()`, `closed`, `wait_closed()`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol

from bubblescope.sim.android.adb_wire import A_CLSE, A_OKAY, A_WRTE, Message
from bubblescope.sim.android.errors import StreamClosedError

logger = logging.getLogger(__name__)


class Link(Protocol):
    """What a stream needs from its transport."""

    max_payload: int

    async def send(self, message: Message) -> None: ...

    def forget(self, local_id: int) -> None: ...


class AdbStream:
    def __init__(self, link: Link, local_id: int, remote_id: int, destination: str) -> None:
        self._link = link
        self.local_id = local_id
        self.remote_id = remote_id
        self.destination = destination  # the OPEN payload, e.g. "localabstract:scrcpy_1234"
        self._inbox: deque[bytes] = deque()
        self._data = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()  # an OPEN (or the OKAY answering ours) implies the peer is ready
        self._write_lock = asyncio.Lock()
        self._closed = asyncio.Event()
        self.closed_by_peer = False

    def __repr__(self) -> str:
        return f"AdbStream({self.local_id}<->{self.remote_id} {self.destination!r})"

    @property
    def max_payload(self) -> int:
        """The most one WRTE carries on this transport (a record this size stays whole)."""
        return self._link.max_payload

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # -- reading ---------------------------------------------------------------------------

    async def read(self, n: int = -1) -> bytes:
        """Up to `n` bytes (a whole received chunk when n < 0); b"" once the stream is closed
        and everything received has been read."""
        if n == 0:
            return b""
        while not self._inbox:
            if self.closed:
                return b""
            self._data.clear()
            await self._data.wait()
        chunk = self._inbox[0]
        if 0 <= n < len(chunk):
            self._inbox[0] = chunk[n:]
            return chunk[:n]
        self._inbox.popleft()
        await self._acknowledge()
        return chunk

    async def readexactly(self, n: int) -> bytes:
        """Exactly `n` bytes, or asyncio.IncompleteReadError when the stream ends first."""
        parts: list[bytes] = []
        need = n
        while need > 0:
            chunk = await self.read(need)
            if not chunk:
                raise asyncio.IncompleteReadError(b"".join(parts), n)
            parts.append(chunk)
            need -= len(chunk)
        return b"".join(parts)

    async def _acknowledge(self) -> None:
        """The consumed chunk's OKAY: only now may the host send the next WRTE."""
        if not self.closed:
            await self._send_quietly(Message(A_OKAY, self.local_id, self.remote_id))

    # -- writing ---------------------------------------------------------------------------

    async def write(self, data: bytes) -> None:
        """Send `data` as WRTEs of at most the negotiated payload, one unacknowledged at a time.

        Raises StreamClosedError when the stream is (or becomes) closed; whole calls never
        interleave, so a framed record written in one call stays contiguous."""
        if not data:
            return
        view = memoryview(bytes(data))
        async with self._write_lock:
            for start in range(0, len(view), self._link.max_payload):
                await self._writable.wait()
                if self.closed:
                    raise StreamClosedError(f"{self!r} is closed")
                self._writable.clear()
                chunk = view[start:start + self._link.max_payload].tobytes()
                await self._link.send(Message(A_WRTE, self.local_id, self.remote_id, chunk))

    # -- closing ---------------------------------------------------------------------------

    async def close(self) -> None:
        """Send CLSE (once) and drop the stream; pending readers see EOF, writers an error."""
        if self.closed:
            return
        self._mark_closed()
        self._link.forget(self.local_id)
        await self._send_quietly(Message(A_CLSE, self.local_id, self.remote_id))

    async def _send_quietly(self, message: Message) -> None:
        try:
            await self._link.send(message)
        except (StreamClosedError, ConnectionError) as error:
            logger.debug("%r: %s not sent: %s", self, message.command, error)

    def _mark_closed(self) -> None:
        self._closed.set()
        self._data.set()
        self._writable.set()

    # -- events from the transport (not for services) --------------------------------------

    def on_write(self, data: bytes) -> None:
        if not self.closed:
            self._inbox.append(data)
            self._data.set()

    def on_okay(self) -> None:
        self._writable.set()

    def on_peer_close(self) -> None:
        """The host sent CLSE or the connection went away: no CLSE is owed back."""
        if not self.closed:
            self.closed_by_peer = True
            self._mark_closed()
