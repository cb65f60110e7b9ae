"""The virtual device through the real adb server and the real adbutils.

One private adb server (tests/support/adb_server.py) and one device serve the module; tests that stop
a device use their own. Every wait has a timeout.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import adbutils
import pytest
from adbutils import Network

from bubblescope.sim.android.adb_stream import AdbStream
from bubblescope.sim.android.adb_wire import A_CNXN, A_OPEN, Message, encode_message
from bubblescope.sim.android.commands import CommandContext, ProgramRegistry
from bubblescope.sim.android.device_thread import DeviceThread
from bubblescope.sim.android.errors import ReverseError
from bubblescope.sim.android.virtual_device import VirtualDevice
from tests.support.adb_server import AdbServer, free_port, private_adb_server
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow

PROPS = {"ro.product.name": "panther", "ro.product.model": "Pixel 7",
         "ro.product.device": "panther"}
SOCKET_TIMEOUT_S = 10.0


async def echo_handler(stream: AdbStream) -> None:
    while data := await stream.read():
        await stream.write(data)


@dataclass
class Rig:
    server: AdbServer
    running: DeviceThread
    serial: str
    cancelled: threading.Event  # set when the `forever` program saw its stream close

    @property
    def device(self) -> VirtualDevice:
        return self.running.device

    def adb(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        return self.server.adb("-s", self.serial, *args, **kwargs)

    def client_device(self) -> adbutils.AdbDevice:
        return self.server.client().device(self.serial)


def make_programs(cancelled: threading.Event) -> ProgramRegistry:
    programs = ProgramRegistry()

    async def forever(ctx: CommandContext) -> int:
        try:
            while True:
                await ctx.stdout.write(b"tick\n")
                if ctx.cancelled.is_set():
                    break
        finally:
            cancelled.set()
        return 0

    async def bigout(ctx: CommandContext) -> int:
        block = bytes(range(256)) * 256
        for _ in range(int(ctx.argv[1])):
            await ctx.stdout.write(block)
        return 0

    programs.register("forever", forever)
    programs.register("bigout", bigout)
    return programs


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    cancelled = threading.Event()
    device = VirtualDevice("sim-test", PROPS, make_programs(cancelled))
    device.register_local("localabstract:echo", echo_handler)
    with private_adb_server(tmp_path_factory.mktemp("adb")) as server, \
            device.run_in_thread() as running:
        serial = server.connect(running.port)
        yield Rig(server, running, serial, cancelled)


def test_adb_devices_lists_the_device(rig: Rig) -> None:
    assert rig.server.states()[rig.serial] == "device"
    listing = rig.server.adb("devices", "-l").stdout.decode()
    assert "product:panther model:Pixel_7 device:panther" in listing
    features = set(rig.client_device().get_features().split(","))
    assert features == {"shell_v2", "cmd", "fixed_push_mkdir"}


def test_adb_shell(rig: Rig) -> None:
    assert rig.adb("shell", "echo", "hello").stdout == b"hello\n"
    assert rig.adb("shell", "false; echo $?").stdout == b"1\n"


def test_adb_shell_v2_exit_status_and_stderr(rig: Rig) -> None:
    assert rig.adb("shell", "exit", "3", check=False).returncode == 3
    result = rig.adb("shell", "echo out; echo err >&2; nosuch", check=False)
    assert (result.returncode, result.stdout) == (127, b"out\n")
    assert result.stderr == b"err\n/system/bin/sh: nosuch: inaccessible or not found\n"


def test_adb_shell_stdin(rig: Rig) -> None:
    assert rig.adb("shell", "cat", stdin=b"piped\n").stdout == b"piped\n"
    result = rig.adb("shell", stdin=b"echo hi\nexit 4\necho never\n", check=False)
    assert (result.returncode, result.stdout) == (4, b"hi\n")


def _wait_for_file(device: VirtualDevice, path: str, size: int, timeout_s: float = 5.0) -> bytes:
    def written() -> bool:
        found = device.fs.stat(path)
        return found is not None and found[1] >= size

    wait_for(written, timeout_s, what=f"{size} bytes in {path}")
    return device.fs.read(path)


def test_stdin_into_a_file(rig: Rig) -> None:
    payload = os.urandom(1024 * 1024)
    # exec-in has no status: the host closes the stream after the last byte, and the command
    # gets its stdin's end, then a moment to finish (as adbd's subprocess would)
    rig.adb("exec-in", "cat > /data/local/tmp/in.bin", stdin=payload)
    assert _wait_for_file(rig.device, "/data/local/tmp/in.bin", len(payload)) == payload
    # shell v2 sends close-stdin and waits for the exit packet: done when adb returns
    rig.adb("shell", "cat > /data/local/tmp/in2.bin", stdin=payload)
    assert rig.device.fs.read("/data/local/tmp/in2.bin") == payload


def test_exec_out_is_binary_safe_and_flow_controlled(rig: Rig) -> None:
    data = rig.adb("exec-out", "bigout 80").stdout  # 5 MiB through one stream
    assert data == (bytes(range(256)) * 256) * 80


def test_adbutils_shell(rig: Rig) -> None:
    device = rig.client_device()
    assert device.shell("echo hi") == "hi"
    assert device.shell(["echo", "a b", "it's"]) == "a b it's"
    v1 = device.shell2("echo out; false")
    assert (v1.returncode, v1.output) == (1, "out\n")
    v2 = device.shell2("echo out; echo err >&2; exit 5", v2=True)
    assert (v2.returncode, v2.stdout, v2.stderr) == (5, "out\n", "err\n")
    assert device.getprop("ro.product.model") == "Pixel 7"
    assert device.prop.model == "Pixel 7"
    assert device.prop.name == "panther"


def test_a_streaming_program_is_cancelled_when_the_stream_closes(rig: Rig) -> None:
    connection = rig.client_device().shell("forever", stream=True)
    assert connection.read(5) == b"tick\n"
    connection.close()
    assert rig.cancelled.wait(SOCKET_TIMEOUT_S)


def test_adb_push_pull_round_trip(rig: Rig, tmp_path: Path) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 123)
    source, back = tmp_path / "big.bin", tmp_path / "back.bin"
    source.write_bytes(payload)
    rig.adb("push", str(source), "/data/local/tmp/big.bin", timeout_s=60)
    assert rig.device.fs.read("/data/local/tmp/big.bin") == payload
    rig.adb("pull", "/data/local/tmp/big.bin", str(back), timeout_s=60)
    assert back.read_bytes() == payload
    assert rig.adb("pull", "/data/local/tmp/absent", str(back), check=False).returncode != 0


def test_adbutils_sync(rig: Rig, tmp_path: Path) -> None:
    sync = rig.client_device().sync
    payload = os.urandom(200_000)
    assert sync.push(payload, "/sdcard/dir/x.bin") == len(payload)
    info = sync.stat("/sdcard/dir/x.bin")
    assert (info.size, info.mode & 0o170000) == (len(payload), 0o100000)
    assert sync.stat("/sdcard/nothing").mtime is None
    assert sync.read_bytes("/sdcard/dir/x.bin") == payload
    assert sync.pull("/sdcard/dir/x.bin", tmp_path / "x.bin") == len(payload)
    assert [entry.path for entry in sync.list("/sdcard/dir")] == [".", "..", "x.bin"]
    with pytest.raises(adbutils.AdbError):
        sync.read_bytes("/sdcard/nothing")


def _round_trip(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    received = b""
    while len(received) < len(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def test_adb_forward_to_a_registered_handler(rig: Rig) -> None:
    port = free_port()
    rig.adb("forward", f"tcp:{port}", "localabstract:echo")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S) as sock:
            data = os.urandom(300_000)
            assert _round_trip(sock, data) == data
    finally:
        rig.adb("forward", "--remove", f"tcp:{port}")


def test_create_connection_local_abstract(rig: Rig) -> None:
    sock = rig.client_device().create_connection(Network.LOCAL_ABSTRACT, "echo")
    with sock:
        sock.settimeout(SOCKET_TIMEOUT_S)
        assert _round_trip(sock, b"ping") == b"ping"


def test_unregistered_local_abstract_is_a_failed_connection(rig: Rig) -> None:
    with pytest.raises(adbutils.AdbError):
        rig.client_device().create_connection(Network.LOCAL_ABSTRACT, "nobody")


def _listener() -> tuple[socket.socket, int]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(SOCKET_TIMEOUT_S)
    return listener, listener.getsockname()[1]


def test_reverse_tunnel(rig: Rig) -> None:
    listener, port = _listener()
    with listener:
        rig.adb("reverse", "localabstract:foo", f"tcp:{port}")
        listing = rig.adb("reverse", "--list").stdout.decode()
        assert f"localabstract:foo tcp:{port}" in listing
        stream = rig.running.call(rig.device.open_reverse("localabstract:foo"))
        connection, _ = listener.accept()
        with connection:
            connection.settimeout(SOCKET_TIMEOUT_S)
            rig.running.call(stream.write(b"to-host"))
            assert connection.recv(100) == b"to-host"
            connection.sendall(b"to-device")
            assert rig.running.call(stream.readexactly(9)) == b"to-device"
            rig.running.call(stream.close())
            assert connection.recv(100) == b""
    items = rig.client_device().reverse_list()
    assert [(item.remote, item.local) for item in items] == [("localabstract:foo", f"tcp:{port}")]
    rig.adb("reverse", "--remove", "localabstract:foo")
    assert rig.client_device().reverse_list() == []


def test_reverse_refused_or_missing(rig: Rig) -> None:
    with pytest.raises(ReverseError, match="no reverse"):
        rig.running.call(rig.device.open_reverse("localabstract:never-set-up"))
    rig.adb("reverse", "localabstract:dead", f"tcp:{free_port()}")  # nobody listens there
    try:
        with pytest.raises(ReverseError, match="refused"):
            rig.running.call(rig.device.open_reverse("localabstract:dead"))
    finally:
        rig.adb("reverse", "--remove", "localabstract:dead")
    assert rig.adb("shell", "echo still-here").stdout == b"still-here\n"


def test_reverse_via_adbutils_and_norebind(rig: Rig) -> None:
    device = rig.client_device()
    device.reverse("localabstract:bar", "tcp:1234")
    with pytest.raises(adbutils.AdbError, match="cannot rebind"):
        device.reverse("localabstract:bar", "tcp:1235", norebind=True)
    device.reverse_remove_all()
    assert device.reverse_list() == []


def _raw_connection(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S)


def _closed_by_peer(sock: socket.socket) -> bool:
    try:
        while sock.recv(4096):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    struct.pack("<6I", A_CNXN, 0x01000001, 4096, 0, 0, 0x12345678),  # bad magic
    struct.pack("<6I", A_CNXN, 0x01000001, 4096, 0x7FFFFFFF, 0, A_CNXN ^ 0xFFFFFFFF),  # huge
    struct.pack("<6I", 0x41414141, 0, 0, 0, 0, 0x41414141 ^ 0xFFFFFFFF),  # unknown command
])
def test_malformed_input_closes_only_that_connection(rig: Rig, garbage: bytes) -> None:
    with _raw_connection(rig.running.port) as sock:
        sock.sendall(garbage)
        assert _closed_by_peer(sock)
    assert rig.adb("shell", "echo ok").stdout == b"ok\n"


def test_raw_handshake_ignores_everything_before_cnxn(rig: Rig) -> None:
    with _raw_connection(rig.running.port) as sock:
        sock.sendall(encode_message(Message(A_OPEN, 1, 0, b"shell:echo early\0")))
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(24)
        sock.settimeout(SOCKET_TIMEOUT_S)
        sock.sendall(encode_message(Message(A_CNXN, 0x01000001, 4096, b"host::\0"), True))
        header = struct.unpack("<6I", sock.recv(24, socket.MSG_WAITALL))
        banner = sock.recv(header[3], socket.MSG_WAITALL)
    assert header[:3] == (A_CNXN, 0x01000001, 4096)
    assert header[4] == sum(banner)
    assert banner.startswith(b"device::ro.product.name=panther;ro.product.model=Pixel 7;")


def test_listens_on_loopback_only(rig: Rig) -> None:
    assert [s.getsockname()[0] for s in rig.device.sockets] == ["127.0.0.1"]
    device = VirtualDevice("exposed", PROPS, ProgramRegistry())
    with pytest.raises(ValueError, match="loopback"):
        DeviceThread(device, host="0.0.0.0").start()


def test_stopped_device_goes_offline(rig: Rig) -> None:
    running = VirtualDevice("short-lived", PROPS, ProgramRegistry()).run_in_thread()
    try:
        serial = rig.server.connect(running.port)
    finally:
        running.stop()
    started = time.monotonic()
    rig.server.wait_for_state(serial, {"offline", None}, timeout_s=10)
    assert time.monotonic() - started < 10
    rig.server.adb("disconnect", serial, check=False)
