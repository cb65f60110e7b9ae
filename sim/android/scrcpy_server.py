"""The scrcpy server, emulated on the virtual device: what `app_process ... Server` runs.

It behaves as the real server of the pushed jar's version does on the wire (docs/architecture.md#scrcpy-server-start):
options parsed and the version compared first; sockets connected by reverse tunnel (the
device opens them) or accepted on the abstract socket (forward tunnel, dummy byte first);
the device name, codec headers, then 12-byte-framed H.264 and Opus/raw packets; control
messages injected into the phone. Closing the video or control socket ends the session, as
does the client closing the shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bubblescope.devices.errors import ProtocolError, VersionMismatch
from bubblescope.devices.scrcpy.options import SERVER_CLASS, ServerOptions, parse_server_args
from bubblescope.devices.scrcpy.protocol import Dialect, encode_device_name
from bubblescope.sim.android.commands import CommandContext
from bubblescope.sim.android.scrcpy_streams import StreamSession
from bubblescope.sim.android.server_jar import server_jar_version

log = logging.getLogger(__name__)
ACCEPT_TIMEOUT_S = 10.0  # how long the forward-tunnel server waits for the client's sockets


class ScrcpyServerProgram:
    """Registered as `app_process` on a virtual device that runs a VirtualPhone."""

    def __init__(self, device, phone) -> None:
        self.device, self.phone = device, phone

    async def __call__(self, ctx: CommandContext) -> int:
        argv = ctx.argv[1:]
        if len(argv) < 2 or argv[1] != SERVER_CLASS:
            await ctx.stderr.write("Usage: app_process [java-options] cmd-dir start-class-name "
                                   "[options]\n")
            return 1
        version = await self._jar_version(ctx)
        if version is None:
            return 1
        try:
            options, unknown = parse_server_args(argv[2:], version)
            dialect = Dialect.for_version(version)
        except VersionMismatch as exc:
            await ctx.stderr.write(f"[server] ERROR: {exc}\n")
            return 1
        except ProtocolError as exc:
            await ctx.stderr.write(f"[server] ERROR: {exc}\n")
            return 1
        for key in unknown:
            await ctx.stdout.write(f"[server] WARN: Unknown server option: {key}\n")
        props = self.phone.props
        await ctx.stdout.write(
            f"[server] INFO: Device: [{props['ro.product.manufacturer']}] "
            f"{props['ro.product.brand']} {props['ro.product.model']} "
            f"(Android {props['ro.build.version.release']})\n")
        return await self._serve(ctx, options, dialect)

    async def _jar_version(self, ctx: CommandContext) -> str | None:
        classpath = ctx.env.get("CLASSPATH", "")
        try:
            data = self.device.fs.read(classpath) if classpath else None
        except (FileNotFoundError, IsADirectoryError, ValueError):
            data = None
        version = server_jar_version(data) if data else None
        if version is None:
            await ctx.stderr.write(f"Error: Could not find class '{SERVER_CLASS}' in "
                                   f"CLASSPATH={classpath}: push scrcpy-server.jar first\n")
        return version

    async def _serve(self, ctx: CommandContext, options: ServerOptions, dialect: Dialect) -> int:
        released = asyncio.Event()  # forward tunnel: lets the accepted connections go
        try:
            streams = await self._connect(options, released)
        except (TimeoutError, ConnectionError, OSError) as exc:
            released.set()
            await ctx.stderr.write(f"[server] ERROR: could not connect the sockets: {exc}\n")
            return 1
        session = StreamSession(self.phone, options, dialect, streams)
        try:
            if options.send_device_meta:
                await streams[options.streams[0]].write(
                    encode_device_name(self.phone.props["ro.product.model"]))
            await session.run(ctx.cancelled)
        except ProtocolError as exc:
            await ctx.stderr.write(f"[server] ERROR: {exc}\n")
        finally:
            for stream in streams.values():
                with contextlib.suppress(Exception):
                    await stream.close()
            released.set()
        return 0

    async def _connect(self, options: ServerOptions, released: asyncio.Event) -> dict:
        spec = f"localabstract:{options.socket_name}"
        if not options.tunnel_forward:  # the client listens: the device opens each socket
            return {name: await self.device.open_reverse(spec) for name in options.streams}
        return await self._accept(spec, options, released)

    async def _accept(self, spec: str, options: ServerOptions, released: asyncio.Event) -> dict:
        """Forward tunnel: listen on the abstract socket until every stream is connected.
        Until then the device refuses the socket, which the client sees as a failed connect."""
        accepted: asyncio.Queue = asyncio.Queue()
        count = 0

        async def handler(stream) -> None:
            nonlocal count
            count += 1
            if count == 1 and options.send_dummy_byte:
                await stream.write(b"\x00")
            await accepted.put(stream)
            await released.wait()  # the session owns the stream until it ends

        streams: dict = {}
        self.device.register_local(spec, handler)
        try:
            for name in options.streams:
                streams[name] = await asyncio.wait_for(accepted.get(), ACCEPT_TIMEOUT_S)
        finally:
            self.device.unregister_local(spec)
        return streams
