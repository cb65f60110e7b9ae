"""One ADB transport: the device end of one TCP connection from an adb server.

It reads messages, answers the host's CNXN, keeps the stream table (our local id <-> the
host's id) and runs one service task per accepted OPEN. Anything malformed (bad magic, an
oversize payload, an unknown command) ends this connection only, with a warning: the device
keeps serving its other connections (docs/architecture.md#adb-wire, docs/architecture.md#adb-streams, docs/architecture.md#adb-server).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable

from bubblescope.sim.android.adb_stream import AdbStream
from bubblescope.sim.android.adb_wire import (
    A_AUTH,
    A_CLSE,
    A_CNXN,
    A_OKAY,
    A_OPEN,
    A_STLS,
    A_SYNC,
    A_VERSION,
    A_VERSION_MIN,
    A_VERSION_SKIP_CHECKSUM,
    A_WRTE,
    HEADER_SIZE,
    MAX_PAYLOAD,
    MAX_PAYLOAD_V1,
    Message,
    command_name,
    decode_header,
    encode_message,
)
from bubblescope.sim.android.errors import AdbProtocolError, StreamClosedError

logger = logging.getLogger(__name__)

ServiceFn = Callable[[AdbStream], Awaitable[None]]
Resolver = Callable[[str, "AdbTransport"], "ServiceFn | None"]
OPEN_TIMEOUT_S = 10.0
TEARDOWN_TIMEOUT_S = 5.0


class AdbTransport:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 hello: Callable[[int], Message], resolve: Resolver, name: str) -> None:
        self._reader = reader
        self._writer = writer
        self._hello = hello  # our CNXN reply for a max payload (props may change meanwhile)
        self._resolve = resolve  # OPEN destination -> service, or None to refuse
        self.name = name
        self.version = A_VERSION_MIN
        self.max_payload = MAX_PAYLOAD
        self.online = False
        self._closing = False
        self._ids = itertools.count(1)
        self._streams: dict[int, AdbStream] = {}
        self._opening: dict[int, asyncio.Future[AdbStream]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._send_lock = asyncio.Lock()
        self._done = asyncio.Event()
        self._handlers: dict[int, Callable[[Message], Awaitable[None]]] = {
            A_OPEN: self._on_open, A_OKAY: self._on_okay, A_WRTE: self._on_write,
            A_CLSE: self._on_close,
        }

    # -- the connection's life -------------------------------------------------------------

    async def run(self) -> None:
        """Serve until the host disconnects, misbehaves, or close() is called."""
        try:
            while (message := await self._read_message()) is not None:
                await self._dispatch(message)
        except AdbProtocolError as error:
            logger.warning("%s: dropping connection: %s", self.name, error)
        except (ConnectionError, StreamClosedError) as error:
            logger.info("%s: connection lost: %s", self.name, error)
        except Exception:  # a bug of ours: lose this connection, never the device
            logger.exception("%s: dropping connection after an internal error", self.name)
        finally:
            await self._teardown()

    async def close(self) -> None:
        """Drop the connection (the adb server then sees the device go away) and wait."""
        self._closing = True
        self._writer.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._done.wait(), TEARDOWN_TIMEOUT_S)

    async def _read_message(self) -> Message | None:
        try:
            raw = await self._reader.readexactly(HEADER_SIZE)
        except asyncio.IncompleteReadError as error:
            if error.partial:
                logger.warning("%s: connection ended inside a header", self.name)
            return None
        header = decode_header(raw, MAX_PAYLOAD)
        try:
            data = await self._reader.readexactly(header.data_length) if header.data_length else b""
        except asyncio.IncompleteReadError:
            logger.warning("%s: connection ended inside a %s payload", self.name,
                           command_name(header.command))
            return None
        return Message(header.command, header.arg0, header.arg1, data)

    async def _teardown(self) -> None:
        self._closing = True
        self.online = False
        self._drop_streams()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=TEARDOWN_TIMEOUT_S)
        self._writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._writer.wait_closed(), TEARDOWN_TIMEOUT_S)
        self._done.set()

    def _drop_streams(self) -> None:
        for stream in list(self._streams.values()):
            stream.on_peer_close()
        self._streams.clear()
        for future in self._opening.values():
            if not future.done():
                future.set_exception(StreamClosedError(f"{self.name}: transport closed"))
        self._opening.clear()

    # -- sending ---------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        if self._closing:
            raise StreamClosedError(f"{self.name}: transport closed")
        with_checksum = message.command == A_CNXN or self.version < A_VERSION_SKIP_CHECKSUM
        data = encode_message(message, with_checksum)
        try:
            async with self._send_lock:
                self._writer.write(data)
                await self._writer.drain()
        except (ConnectionError, RuntimeError) as error:
            raise StreamClosedError(f"{self.name}: {error}") from error

    def forget(self, local_id: int) -> None:
        self._streams.pop(local_id, None)

    # -- receiving -------------------------------------------------------------------------

    async def _dispatch(self, message: Message) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s <- %s %#x %#x %d bytes", self.name, command_name(message.command),
                         message.arg0, message.arg1, len(message.data))
        if message.command == A_CNXN:
            await self._on_connect(message)
        elif not self.online or message.command in (A_AUTH, A_STLS, A_SYNC):
            return  # nothing counts before the host's CNXN; we never asked for AUTH or TLS
        else:
            await self._handlers[message.command](message)

    async def _on_connect(self, message: Message) -> None:
        if self.online:  # the host restarted the session: the old streams are gone
            self._drop_streams()
        self.version = max(A_VERSION_MIN, min(message.arg0, A_VERSION))
        self.max_payload = min(message.arg1, MAX_PAYLOAD) if message.arg1 else MAX_PAYLOAD_V1
        self.online = True
        await self.send(self._hello(self.max_payload))  # adbd answers the negotiated max
        logger.info("%s: online (version %#x, max payload %d)", self.name, self.version,
                    self.max_payload)

    async def _on_open(self, message: Message) -> None:
        host_id = message.arg0
        if host_id == 0:
            return
        destination = message.data.rstrip(b"\0").decode("utf-8", errors="replace")
        service = self._find_service(destination) if message.arg1 == 0 else None
        if service is None:
            await self.send(Message(A_CLSE, 0, host_id))
            return
        stream = AdbStream(self, next(self._ids), host_id, destination)
        self._streams[stream.local_id] = stream
        await self.send(Message(A_OKAY, stream.local_id, host_id))
        task = asyncio.create_task(self._serve(service, stream), name=repr(stream))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _find_service(self, destination: str) -> ServiceFn | None:
        try:
            service = self._resolve(destination, self)
        except Exception:
            logger.exception("%s: resolving %r failed", self.name, destination)
            return None
        if service is None:
            logger.info("%s: refusing OPEN %r", self.name, destination)
        return service

    async def _serve(self, service: ServiceFn, stream: AdbStream) -> None:
        try:
            await service(stream)
        except StreamClosedError as error:
            logger.debug("%r ended: %s", stream, error)
        except Exception:
            logger.exception("%r: service failed", stream)
        finally:
            await stream.close()

    async def _on_okay(self, message: Message) -> None:
        stream = self._streams.get(message.arg1)
        opening = self._opening.pop(message.arg1, None)
        if stream is None:
            return
        if opening is not None:
            stream.remote_id = message.arg0
            if not opening.done():
                opening.set_result(stream)
        elif message.arg0 == stream.remote_id:
            stream.on_okay()

    async def _on_write(self, message: Message) -> None:
        stream = self._streams.get(message.arg1)
        if stream is None or message.arg0 != stream.remote_id:
            return
        if message.data:
            stream.on_write(message.data)
        else:
            await self.send(Message(A_OKAY, stream.local_id, stream.remote_id))

    async def _on_close(self, message: Message) -> None:
        stream = self._streams.get(message.arg1)
        if stream is None or message.arg0 not in (0, stream.remote_id):
            return
        del self._streams[message.arg1]
        opening = self._opening.pop(message.arg1, None)
        if opening is not None and not opening.done():
            opening.set_exception(StreamClosedError(
                f"{self.name}: host refused OPEN {stream.destination!r}"))
        stream.on_peer_close()

    # -- device-initiated streams (reverse tunnels) ---------------------------------------

    async def open_stream(self, destination: str,
                          timeout_s: float = OPEN_TIMEOUT_S) -> AdbStream:
        """Send OPEN(new_id, 0, "destination\\0") and wait for the host's OKAY.

        Only for destinations the host configured with reverse:forward (the host rejects,
        or even aborts on, any other device-initiated OPEN)."""
        if not self.online or self._closing:
            raise StreamClosedError(f"{self.name}: transport is not online")
        stream = AdbStream(self, next(self._ids), 0, destination)
        future: asyncio.Future[AdbStream] = asyncio.get_running_loop().create_future()
        self._streams[stream.local_id] = stream
        self._opening[stream.local_id] = future
        await self.send(Message(A_OPEN, stream.local_id, 0, destination.encode() + b"\0"))
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError as error:
            self._opening.pop(stream.local_id, None)
            self.forget(stream.local_id)
            stream.on_peer_close()  # no CLSE: the host never gave us its id
            raise StreamClosedError(f"{self.name}: no answer to OPEN {destination!r}") from error
