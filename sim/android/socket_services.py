"""Socket services: host-opened connections to device sockets, and the reverse-forward table.

`localabstract:<name>`, `tcp:<port>` (and the other socket specs) reach an async handler
registered on the device under that spec; nothing registered means CLSE(0, id), which the
host reports as a failed connection (adbutils raises AdbError, `adb forward` closes the TCP
client). `reverse:...` keeps the table of reverse forwards (device spec -> host spec, with
the transport that set it up); the device uses it to open device-initiated streams.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bubblescope.sim.android.adb_stream import AdbStream

logger = logging.getLogger(__name__)

LocalHandler = Callable[[AdbStream], Awaitable[None]]
SOCKET_PREFIXES = ("tcp:", "localabstract:", "localreserved:", "localfilesystem:", "local:",
                   "dev:", "jdwp:", "vsock:")
_TCP = re.compile(r"tcp:(\d{1,5})(?::(?:localhost|127\.0\.0\.1))?")
_LISTENABLE = ("tcp:", "localabstract:", "localreserved:", "localfilesystem:")
FIRST_FAKE_PORT = 38000


def is_socket_spec(destination: str) -> bool:
    return destination.startswith(SOCKET_PREFIXES)


def normalize_spec(spec: str) -> str:
    """The key a socket spec is registered under: a bare name means `localabstract:`,
    `tcp:P:localhost` is `tcp:P`."""
    if ":" not in spec:
        return "localabstract:" + spec
    match = _TCP.fullmatch(spec)
    return f"tcp:{int(match.group(1))}" if match else spec


def valid_listen_spec(spec: str) -> bool:
    """A spec a listener can be installed on (reverse's device side, forward's host side)."""
    if spec.startswith("tcp:"):
        return bool(_TCP.fullmatch(spec)) and int(spec.split(":")[1]) <= 65535
    return spec.startswith(_LISTENABLE) and len(spec.split(":", 1)[1]) > 0


def protocol_string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return f"{len(raw):04x}".encode("ascii") + raw


def fail_reply(message: str) -> bytes:
    return b"FAIL" + protocol_string(message)


@dataclass(frozen=True)
class ReverseEntry:
    device_spec: str  # where device programs "connect" (e.g. localabstract:scrcpy_1234)
    host_spec: str  # what the host connects each stream to (e.g. tcp:27183)
    transport: object  # the AdbTransport whose host configured it


class ReverseTable:
    def __init__(self) -> None:
        self._entries: dict[str, ReverseEntry] = {}

    def get(self, device_spec: str) -> ReverseEntry | None:
        return self._entries.get(normalize_spec(device_spec))

    def entries(self) -> list[ReverseEntry]:
        return list(self._entries.values())

    def add(self, device_spec: str, host_spec: str, transport: object,
            norebind: bool) -> tuple[str | None, int | None]:
        """(error, resolved port): the port is set when `tcp:0` was asked for."""
        if not valid_listen_spec(device_spec) or not valid_listen_spec(host_spec):
            bad = host_spec if valid_listen_spec(device_spec) else device_spec
            return f"cannot bind listener: unknown socket specification '{bad}'", None
        resolved = None
        if device_spec == "tcp:0":
            resolved = self._free_port()
            device_spec = f"tcp:{resolved}"
        key = normalize_spec(device_spec)
        if norebind and key in self._entries:
            return "cannot rebind existing socket", None
        self._entries[key] = ReverseEntry(key, host_spec, transport)
        return None, resolved

    def _free_port(self) -> int:
        port = FIRST_FAKE_PORT
        while f"tcp:{port}" in self._entries:
            port += 1
        return port

    def remove(self, device_spec: str) -> bool:
        return self._entries.pop(normalize_spec(device_spec), None) is not None

    def clear(self) -> None:
        self._entries.clear()

    def drop_transport(self, transport: object) -> None:
        """A transport went away: its reverse forwards go with it, as in adbd."""
        for key, entry in list(self._entries.items()):
            if entry.transport is transport:
                del self._entries[key]

    def listing(self) -> str:
        return "".join(f"host {e.device_spec} {e.host_spec}\n" for e in self._entries.values())


def reverse_service(table: ReverseTable, transport: object, command: str) -> LocalHandler:
    """`reverse:<command>`: OKAY / FAIL+message, or the listing, then close (B.4)."""

    async def serve(stream: AdbStream) -> None:
        await stream.write(reverse_reply(table, transport, command))

    return serve


def reverse_reply(table: ReverseTable, transport: object, command: str) -> bytes:
    if command == "list-forward":
        return protocol_string(table.listing())
    if command == "killforward-all":
        table.clear()
        return b"OKAY"
    if command.startswith("killforward:"):
        spec = command[len("killforward:"):]
        return b"OKAY" if table.remove(spec) else fail_reply(f"listener '{spec}' not found")
    if command.startswith("forward:"):
        return _forward_reply(table, transport, command[len("forward:"):])
    return fail_reply(f"unknown reverse command '{command}'")


def _forward_reply(table: ReverseTable, transport: object, spec: str) -> bytes:
    norebind = spec.startswith("norebind:")
    if norebind:
        spec = spec[len("norebind:"):]
    device_spec, sep, host_spec = spec.partition(";")
    if not sep:
        return fail_reply(f"bad forward: {spec}")
    error, port = table.add(device_spec, host_spec, transport, norebind)
    if error:
        return fail_reply(error)
    logger.info("reverse %s -> host %s", device_spec, host_spec)
    return b"OKAY" + (protocol_string(str(port)) if port is not None else b"")
