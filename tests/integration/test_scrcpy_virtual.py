"""The emulated scrcpy server on a virtual phone, through the real adb server: the bytes on
its sockets, and the production client driving it (push, version probe, streams, control)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from adbutils import Network

from bubblescope.devices.errors import ScrcpyServerJarError
from bubblescope.devices.scrcpy.client import ScrcpyClient, probe_server_version
from bubblescope.devices.scrcpy.options import DEVICE_JAR, ServerOptions
from bubblescope.devices.spec import ScrcpySpec
from bubblescope.sim.android.phone_device import PhoneSpec, run_in_thread
from bubblescope.sim.android.server_jar import build_server_jar
from tests.support.adb_server import private_adb_server
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    """One virtual phone attached to a private adb server."""
    folder = tmp_path_factory.mktemp("scrcpy")
    thread, phone = run_in_thread(PhoneSpec("virt-scrcpy", time_warp=1.0))
    try:
        with private_adb_server(folder) as adb:
            serial = adb.connect(thread.port)
            device = adb.client().device(serial)
            device.shell("am start -n org.bubblescope.shortvideo/.FeedActivity")
            yield folder, device, phone
    finally:
        thread.stop()


def jar(folder: Path, version: str) -> Path:
    path = folder / f"scrcpy-server-v{version}"
    path.write_bytes(build_server_jar(version))
    return path


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, f"stream ended after {len(data)} of {n} bytes"
        data += chunk
    return data


def _connect(device, socket_name: str):
    """A connection to the server's socket, or None while it does not listen yet."""
    try:
        return device.create_connection(Network.LOCAL_ABSTRACT, socket_name)
    except Exception:  # adbutils raises its own errors and OSErrors alike for "not yet"
        return None


def start_raw(device, version: str, folder: Path, **options) -> tuple:
    device.sync.push(str(jar(folder, version)), DEVICE_JAR)
    opts = ServerOptions(version=version, scid=0x1234ABCD, tunnel_forward=True, **options)
    shell = device.shell(opts.command(), stream=True)
    first = wait_for(lambda: _connect(device, opts.socket_name), 10, every_s=0.1,
                     what=f"the scrcpy server to listen on {opts.socket_name}")
    first.settimeout(5)
    others = [device.create_connection(Network.LOCAL_ABSTRACT, opts.socket_name)
              for _ in opts.streams[1:]]
    for sock in others:
        sock.settimeout(5)
    return shell, first, others


def test_3x_bytes_on_the_sockets(rig) -> None:
    folder, device, _ = rig
    shell, video, (audio, control) = start_raw(device, "3.3.4", folder, audio_codec="raw")
    try:
        assert recv_exactly(video, 1) == b"\x00"  # forward tunnel: dummy byte first
        assert recv_exactly(video, 64) == b"BubblePhone" + b"\x00" * 53
        assert recv_exactly(video, 12).hex() == "68323634" "000002d0" "00000500"
        config_header = recv_exactly(video, 12)
        assert config_header[:8] == bytes.fromhex("8000000000000000")  # config packet
        size = int.from_bytes(config_header[8:], "big")
        assert recv_exactly(video, size)[:5] == b"\x00\x00\x00\x01\x67"  # SPS first
        key = recv_exactly(video, 12)
        assert key[0] & 0x40 and not key[0] & 0x80  # key frame, with a PTS
        assert recv_exactly(audio, 4) == b"\x00raw"  # raw codec id, no config packet
        header = recv_exactly(audio, 12)
        assert not header[0] & 0x80 and 0 < int.from_bytes(header[8:], "big") <= 4096
    finally:
        for sock in (video, audio, control):
            sock.close()
        shell.close()


def test_4x_bytes_on_the_sockets(rig) -> None:
    folder, device, _ = rig
    shell, video, others = start_raw(device, "4.1", folder, audio=False, control=False)
    try:
        assert recv_exactly(video, 1) == b"\x00"
        recv_exactly(video, 64)
        assert recv_exactly(video, 4) == b"h264"  # 4.x: the codec id only
        assert recv_exactly(video, 12).hex() == "80000000" "000002d0" "00000500"  # session
        config = recv_exactly(video, 12)
        assert config[:8] == bytes.fromhex("4000000000000000")  # 4.x: bit 62 is config
    finally:
        video.close()
        shell.close()


def test_version_probe_and_mismatch(rig) -> None:
    folder, device, _ = rig
    device.sync.push(str(jar(folder, "3.3.4")), DEVICE_JAR)
    assert probe_server_version(device) == "3.3.4"
    out = device.shell(f"CLASSPATH={DEVICE_JAR} app_process / com.genymobile.scrcpy.Server 2.7")
    assert "[server] ERROR: The server version (3.3.4) does not match the client (2.7)" in out


def test_unsupported_or_missing_jar(rig, tmp_path) -> None:
    folder, device, _ = rig
    with pytest.raises(ScrcpyServerJarError, match="not found"):
        ScrcpyClient(device, ScrcpySpec(server_jar=str(tmp_path / "nope"), max_size=720)).start()
    with pytest.raises(ScrcpyServerJarError, match="unsupported scrcpy server version"):
        ScrcpyClient(device, ScrcpySpec(server_jar=str(jar(folder, "1.24")),
                                         max_size=720)).start()


@pytest.mark.parametrize("version", ["3.3.4", "4.1"])
def test_client_streams_and_controls_the_phone(rig, version: str) -> None:
    folder, device, phone = rig
    client = ScrcpyClient(device, ScrcpySpec(server_jar=str(jar(folder, version)), max_size=640,
                                             max_fps=8, sample_fps=4))
    client.start()
    try:
        assert client.device_name == "BubblePhone"
        wait_for(lambda: client.frames_since(0) and client.audio_since(0), 10,
                 what="a first frame and audio", detail=lambda: "\n".join(client.server_log))
        frame = client.frames_since(0)[-1]
        assert frame.image.shape == (640, 360, 3) and client.state.video_size == (360, 640)
        before = phone.app_state()
        like = phone.view_tree().find("like_button")
        x1, y1, x2, y2 = like.bounds
        cx, cy = (x1 + x2) / 2 * 360 / 720, (y1 + y2) / 2 * 640 / 1280
        client.touch(0, cx, cy)
        client.touch(1, cx, cy, pressure=0.0)
        wait_for(lambda: phone.app_state().liked != before.liked, 5,
                 what="the tap to reach the like button")
        client.check()
    finally:
        client.close()


def test_malformed_control_message_ends_the_session_not_the_device(rig) -> None:
    folder, device, _ = rig
    shell, video, (audio, control_sock) = start_raw(device, "3.3.4", folder, audio_codec="raw")
    try:
        control_sock.sendall(bytes([99, 1, 2, 3]))  # no such message type
        video.settimeout(10)
        deadline = time.monotonic() + 10
        while True:  # the server stops: the video stream ends
            data = video.recv(65536)
            if not data:
                break
            assert time.monotonic() < deadline, "the server kept streaming"
    finally:
        for sock in (video, audio, control_sock):
            sock.close()
        shell.close()
    assert device.shell("echo still here").strip() == "still here"
