"""A virtual Android device that the stock adb server attaches with `adb connect`.

It listens on a loopback TCP port and speaks the ADB transport protocol there, as adbd does
for wireless debugging, with auth disabled. Behind the transport sit the shell (our own
interpreter over the phone's programs and the toolbox), sync, socket and reverse services.

    programs = ProgramRegistry()            # the phone registers input, uiautomator, ...
    device = VirtualDevice("sim-1", {"ro.product.model": "Pixel 7"}, programs)
    with device.run_in_thread() as running:  # or: await device.start() inside a loop
        subprocess.run(["adb", "connect", f"127.0.0.1:{running.port}"])

Run a bare device (toolbox only) from a shell:
`python -m bubblescope.sim.android.virtual_device --port 5555 --serial sim-1`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
import time
from collections import ChainMap
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from bubblescope.sim.android.adb_stream import AdbStream
from bubblescope.sim.android.adb_transport import AdbTransport
from bubblescope.sim.android.adb_wire import connect_message
from bubblescope.sim.android.commands import OutputStream, Program, ProgramRegistry
from bubblescope.sim.android.device_thread import DeviceThread
from bubblescope.sim.android.errors import ReverseError, StreamClosedError
from bubblescope.sim.android.filesystem import VirtualFileSystem
from bubblescope.sim.android.services import ServiceFn, resolve_service
from bubblescope.sim.android.shell_io import ShellIO
from bubblescope.sim.android.shell_lang import Shell
from bubblescope.sim.android.socket_services import LocalHandler, ReverseTable, normalize_spec
from bubblescope.sim.android.toolbox import Toolbox

logger = logging.getLogger(__name__)

DEFAULT_PROPS = {
    "ro.product.name": "bubblescope_sim", "ro.product.model": "BubblePhone",
    "ro.product.device": "bubble", "ro.product.brand": "bubblescope",
    "ro.product.manufacturer": "bubblescope", "ro.product.cpu.abi": "arm64-v8a",
    "ro.build.version.release": "14", "ro.build.version.sdk": "34", "ro.build.type": "user",
    "ro.secure": "1", "ro.debuggable": "0", "sys.boot_completed": "1",
    "persist.sys.timezone": "UTC",
}


@dataclass(frozen=True)
class ShellResult:
    status: int
    stdout: bytes
    stderr: bytes


class VirtualDevice:
    def __init__(self, serial_name: str, props: Mapping[str, str], programs: ProgramRegistry,
                 fs: VirtualFileSystem | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.serial_name = serial_name
        # A live view: the phone's own table first (setprop writes there when it is mutable),
        # then the serial, then defaults for anything a client reads that the phone lacks.
        own = props if isinstance(props, MutableMapping) else dict(props)
        self.props: MutableMapping[str, str] = ChainMap(own, {"ro.serialno": serial_name},
                                                        dict(DEFAULT_PROPS))
        self.programs = programs
        self.fs = fs if fs is not None else VirtualFileSystem()
        self._clock = clock or time.time
        self.toolbox = Toolbox(self.fs, self.props, self._clock)
        self.reverses = ReverseTable()
        self._locals: dict[str, LocalHandler] = {}
        self._transports: set[AdbTransport] = set()
        self._server: asyncio.AbstractServer | None = None

    # -- what the services use -------------------------------------------------------------

    def clock(self) -> float:
        """Device time, epoch seconds."""
        return self._clock()

    def find_program(self, name: str) -> Program | None:
        """Phone programs first (they may override a toolbox one), then the toolbox."""
        return self.programs.get(name) or self.toolbox.get(name)

    def new_shell(self) -> Shell:
        return Shell(self.find_program, self.fs)

    def prompt(self) -> str:
        return f"{self.props.get('ro.product.device', 'android')}:/ $ "

    def local_handler(self, spec: str) -> LocalHandler | None:
        return self._locals.get(normalize_spec(spec))

    def _resolve(self, destination: str, transport: AdbTransport) -> ServiceFn | None:
        return resolve_service(self, destination, transport)

    # -- public API ------------------------------------------------------------------------

    def register_local(self, spec: str, handler: LocalHandler) -> None:
        """Serve host-opened `spec` streams (`localabstract:NAME`, `tcp:PORT`; a bare NAME
        means `localabstract:NAME`) with `handler(stream)`; the stream closes when it returns."""
        self._locals[normalize_spec(spec)] = handler

    def unregister_local(self, spec: str) -> None:
        self._locals.pop(normalize_spec(spec), None)

    async def open_reverse(self, device_local_spec: str, timeout_s: float = 10.0) -> AdbStream:
        """A device program connecting to `device_local_spec` through a reverse forward: sends
        OPEN(new id, 0, "<host spec>") on the transport whose host set the reverse up and
        returns the stream once the host OKAYs (ReverseError if none is set up or refused)."""
        entry = self.reverses.get(device_local_spec)
        if entry is None or not isinstance(entry.transport, AdbTransport):
            raise ReverseError(f"no reverse forward for {device_local_spec!r}")
        try:
            return await entry.transport.open_stream(entry.host_spec, timeout_s)
        except StreamClosedError as error:
            raise ReverseError(f"reverse {device_local_spec!r} -> {entry.host_spec!r}: "
                               f"{error}") from error

    async def run_shell(self, command: str) -> ShellResult:
        """Run a command line in-process (no adb): for tests and the phone's own checks."""
        out: list[bytes] = []
        err: list[bytes] = []

        async def collect_out(data: bytes) -> None:
            out.append(data)

        async def collect_err(data: bytes) -> None:
            err.append(data)

        io = ShellIO(stdout=OutputStream(collect_out), stderr=OutputStream(collect_err))
        status = await self.new_shell().run(command, io)
        return ShellResult(status, b"".join(out), b"".join(err))

    # -- serving ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on `host:port` (loopback only; port 0 picks one) and return the port."""
        if not _is_loopback(host):
            raise ValueError(f"the virtual device listens on loopback only, not {host!r}")
        host = "127.0.0.1" if host == "localhost" else host  # one socket, hence one port
        self._server = await asyncio.start_server(self._on_connection, host, port)
        logger.info("virtual device %s listening on %s:%d", self.serial_name, host, self.port)
        return self.port

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the virtual device is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def sockets(self) -> list[socket.socket]:
        """The listening sockets (tests check what they are bound to)."""
        return list(self._server.sockets) if self._server else []

    async def stop(self) -> None:
        """Stop listening and drop every connection: adb servers see the device go away."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        await asyncio.gather(*(t.close() for t in list(self._transports)))
        if server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 5.0)
        logger.info("virtual device %s stopped", self.serial_name)

    async def _on_connection(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        transport = AdbTransport(reader, writer, hello=lambda limit: connect_message(self.props, limit),
                                 resolve=self._resolve, name=f"{self.serial_name}<-{peer}")
        self._transports.add(transport)
        try:
            await transport.run()
        finally:
            self._transports.discard(transport)
            self.reverses.drop_transport(transport)

    def run_in_thread(self, host: str = "127.0.0.1", port: int = 0) -> DeviceThread:
        """Start the device on its own event loop in a background thread (for synchronous
        callers: tests, the device farm). The handle has `.port`, `.call(coro)`, `.stop()`."""
        return DeviceThread(self, host, port).start()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _serve_until_signalled(device: VirtualDevice, host: str, port: int,
                                 port_file: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    bound = await device.start(host, port)
    if port_file is not None:
        port_file.write_text(f"{bound}\n", encoding="utf-8")
    await stop.wait()
    await device.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A bare virtual Android device (toolbox only).")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--serial", default="virtual-1", help="ro.serialno of the device")
    parser.add_argument("--port-file", type=Path, help="write the bound port here when ready")
    parser.add_argument("--log-level", default="INFO", help="logging level")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    device = VirtualDevice(args.serial, {}, ProgramRegistry())
    asyncio.run(_serve_until_signalled(device, args.host, args.port, args.port_file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
