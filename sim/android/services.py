"""Which service answers an OPEN: dispatch on the destination's prefix (docs/architecture.md#adb-services).

Returns the coroutine function that serves the stream, or None so the transport refuses the
OPEN with CLSE(0, host id). `framebuffer:`, `abb:`, `jdwp`, `track-*` and the other services
a short-video audit never uses are refused that way too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from bubblescope.sim.android.adb_stream import AdbStream
from bubblescope.sim.android.filesystem import VirtualFileSystem
from bubblescope.sim.android.shell_lang import Shell
from bubblescope.sim.android.shell_service import parse_shell_request, shell_service
from bubblescope.sim.android.socket_services import (
    LocalHandler,
    ReverseTable,
    is_socket_spec,
    normalize_spec,
    reverse_service,
)
from bubblescope.sim.android.sync_service import sync_service

ServiceFn = Callable[[AdbStream], Awaitable[None]]

# What user builds of adbd answer; the stream then closes.
TEXT_SERVICES = {
    "root:": "adbd cannot run as root in production builds\n",
    "unroot:": "adbd not running as root\n",
    "remount:": "Not running as root. Try \"adb root\" first.\n",
    "usb:": "restarting in USB mode\n",
    "reboot:": "",
}


class DeviceServices(Protocol):
    """What the services need from the device (VirtualDevice implements it)."""

    fs: VirtualFileSystem
    reverses: ReverseTable

    def clock(self) -> float: ...

    def new_shell(self) -> Shell: ...

    def prompt(self) -> str: ...

    def local_handler(self, spec: str) -> LocalHandler | None: ...


def resolve_service(device: DeviceServices, destination: str,
                    transport: object) -> ServiceFn | None:
    request = parse_shell_request(destination)
    if request is not None:
        return shell_service(request, device.new_shell, device.prompt())
    if destination == "sync:":
        return sync_service(device.fs, device.clock)
    if destination.startswith("reverse:"):
        return reverse_service(device.reverses, transport, destination[len("reverse:"):])
    if is_socket_spec(destination):
        return device.local_handler(normalize_spec(destination))
    return _text_service(destination)


def _text_service(destination: str) -> ServiceFn | None:
    head, _, argument = destination.partition(":")
    if head == "tcpip" and argument.isdigit():
        text = f"restarting in TCP mode port: {argument}\n"
    elif head + ":" in TEXT_SERVICES:
        text = TEXT_SERVICES[head + ":"]
    else:
        return None

    async def serve(stream: AdbStream) -> None:
        if text:
            await stream.write(text.encode("utf-8"))

    return serve
