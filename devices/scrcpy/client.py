"""A scrcpy client over adbutils: push the server, start it, read its video and audio, send
control messages. Forward tunnel through adb (no TCP port on the host), as docs/architecture.md#scrcpy-tunnel
describes. Readers run in threads and hand decoded frames and audio to callbacks; every wait
has a timeout and a broken stream is reported, never waited on forever.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import adbutils
from adbutils import Network

from bubblescope.devices.errors import ProtocolError, ScrcpyError, ScrcpyServerJarError
from bubblescope.devices.scrcpy import control
from bubblescope.devices.scrcpy.decoder import (
    AudioDecoder,
    DecodedAudio,
    DecodedFrame,
    VideoDecoder,
)
from bubblescope.devices.scrcpy.options import DEVICE_JAR, SERVER_CLASS, ServerOptions
from bubblescope.devices.scrcpy.protocol import (
    DEVICE_NAME_BYTES,
    FRAME_HEADER_BYTES,
    Dialect,
    PacketHeader,
    codec_name,
    decode_codec_id,
    decode_device_name,
    decode_packet_header,
)
from bubblescope.devices.spec import ScrcpySpec

log = logging.getLogger(__name__)
_MISMATCH = re.compile(r"The server version \(([^)]+)\) does not match the client")
CONNECT_ATTEMPTS = 100  # the stock client's: 100 tries, 100 ms apart
CONNECT_DELAY_S = 0.1

# Called by the reader threads with every media packet as it arrived ("video" or "audio", its
# header, its payload), config packets included, before the client decodes it: a recorder
# muxes the encoded stream as is instead of re-encoding decoded frames.
PacketSink = Callable[[str, PacketHeader, bytes], None]


def probe_server_version(device: adbutils.AdbDevice, jar_on_device: str = DEVICE_JAR) -> str:
    """Ask the pushed server its version: it names it when refusing a wrong client version."""
    output = device.shell(f"CLASSPATH={jar_on_device} app_process / {SERVER_CLASS} 0.0-probe",
                          timeout=30)
    match = _MISMATCH.search(output)
    if match is None:
        raise ScrcpyServerJarError(f"{jar_on_device} on {device.serial} did not answer as a "
                                   f"scrcpy server: {output.strip()[:200]!r}")
    return match.group(1)


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks, remaining = [], n
    while remaining:
        chunk = sock.recv(remaining)
        if not chunk:
            raise ScrcpyError(f"scrcpy stream ended with {remaining} of {n} bytes unread")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


@dataclass
class StreamState:
    frames: deque = field(default_factory=deque)  # DecodedFrame, newest last
    audio: deque = field(default_factory=deque)  # DecodedAudio, newest last
    video_size: tuple[int, int] | None = None
    last_pts_us: int = 0
    error: BaseException | None = None  # the video stream broke: the session is over
    audio_error: BaseException | None = None  # the audio stream broke: no more sound


class ScrcpyClient:
    def __init__(self, device: adbutils.AdbDevice, config: ScrcpySpec,
                 packet_sink: PacketSink | None = None) -> None:
        self.device, self.config = device, config
        self._packet_sink = packet_sink
        self.state = StreamState(frames=deque(maxlen=config.history), audio=deque(maxlen=2000))
        self.device_name = ""
        self.options: ServerOptions | None = None
        self.dialect: Dialect | None = None
        self._sockets: dict[str, socket.socket] = {}
        self._shell = None
        self._threads: list[threading.Thread] = []
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self.server_log: deque[str] = deque(maxlen=200)

    # -- start -------------------------------------------------------------------------------
    def start(self, connect_timeout_s: float = 20.0) -> None:
        jar = Path(self.config.server_jar or "")
        if not self.config.server_jar or not jar.is_file():
            raise ScrcpyServerJarError(f"scrcpy server jar {self.config.server_jar} not found; point "
                                       "scrcpy.server_jar at the scrcpy-server file")
        self.device.sync.push(str(jar), DEVICE_JAR)
        version = probe_server_version(self.device)
        try:
            self.dialect = Dialect.for_version(version)
        except ProtocolError as exc:
            raise ScrcpyServerJarError(f"{jar}: {exc}") from exc
        self.device.sync.push(str(jar), DEVICE_JAR)  # the probe's server deleted it
        self.options = ServerOptions(
            version=version, scid=random.getrandbits(31), tunnel_forward=True,
            audio=self.config.audio, audio_codec=self.config.audio_codec,
            max_size=self.config.max_size, max_fps=self.config.max_fps,
            video_bit_rate=self.config.video_bit_rate, cleanup=True)
        self._shell = self.device.shell(self.options.command(), stream=True)
        self._spawn(self._read_server_log, "log")
        self._connect(connect_timeout_s)
        self._read_headers()
        self._spawn(self._read_video, "video")
        if "audio" in self._sockets:
            self._spawn(self._read_audio, "audio")

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, daemon=True,
                                  name=f"scrcpy-{name}-{self.device.serial}")
        thread.start()
        self._threads.append(thread)

    def _connect(self, timeout_s: float) -> None:
        name = self.options.socket_name
        deadline = time.monotonic() + timeout_s
        first = None
        while first is None:
            if time.monotonic() > deadline:
                raise ScrcpyError(f"scrcpy server on {self.device.serial} did not listen within "
                                  f"{timeout_s:g} s; server said: {self._log_tail()}")
            first = self._try_first(name)
        self._sockets[self.options.streams[0]] = first
        for stream in self.options.streams[1:]:
            self._sockets[stream] = self._open(name)
        for sock in self._sockets.values():
            sock.settimeout(self.config.read_timeout_s)
        if "control" in self._sockets:
            self._sockets["control"].setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _open(self, name: str) -> socket.socket:
        return self.device.create_connection(Network.LOCAL_ABSTRACT, name)

    def _try_first(self, name: str) -> socket.socket | None:
        """Connect and read the dummy byte; None while the server is not listening yet."""
        try:
            sock = self._open(name)
        except (adbutils.AdbError, OSError):
            time.sleep(CONNECT_DELAY_S)
            return None
        sock.settimeout(2.0)
        try:
            if sock.recv(1) == b"\x00":
                return sock
        except OSError:
            pass
        sock.close()
        time.sleep(CONNECT_DELAY_S)
        return None

    def _read_headers(self) -> None:
        first = self._sockets[self.options.streams[0]]
        self.device_name = decode_device_name(_recv_exactly(first, DEVICE_NAME_BYTES))
        video = self._sockets["video"]
        codec = codec_name(decode_codec_id(_recv_exactly(video, 4)))
        if codec != "h264":
            raise ScrcpyError(f"video codec {codec}: this client decodes h264")
        if not self.dialect.session_packets:
            raw = _recv_exactly(video, 8)
            self.state.video_size = (int.from_bytes(raw[:4], "big"), int.from_bytes(raw[4:], "big"))
        self._video_decoder = VideoDecoder("h264", fps=self.config.sample_fps)
        if "audio" in self._sockets:
            audio_codec = codec_name(decode_codec_id(_recv_exactly(self._sockets["audio"], 4)))
            if audio_codec == "disabled":
                self._sockets.pop("audio").close()
            else:
                self._audio_decoder = AudioDecoder(audio_codec)

    # -- readers -----------------------------------------------------------------------------
    def _read_server_log(self) -> None:
        try:
            while not self._closing.is_set():
                line = self._shell.conn.recv(4096)
                if not line:
                    return
                for text in line.decode("utf-8", "replace").splitlines():
                    self.server_log.append(text)
        except OSError:
            return

    def _log_tail(self) -> str:
        return " | ".join(list(self.server_log)[-5:]) or "(nothing)"

    def _packets(self, sock: socket.socket):
        while not self._closing.is_set():
            header = decode_packet_header(self.dialect, _recv_exactly(sock, FRAME_HEADER_BYTES))
            if header.session is not None:
                self.state.video_size = header.session
                continue
            yield header, _recv_exactly(sock, header.size)

    def _sink(self, name: str, header: PacketHeader, payload: bytes) -> None:
        """Hand the packet to the sink; a failing sink is logged, never ends the stream that
        the driver reads frames from."""
        if self._packet_sink is None:
            return
        try:
            self._packet_sink(name, header, payload)
        except Exception:
            log.exception("scrcpy %s packet sink of %s failed", name, self.device.serial)

    def _reader(self, name: str, handle) -> None:
        try:
            for header, payload in self._packets(self._sockets[name]):
                self._sink(name, header, payload)
                handle(header, payload)
        except (OSError, ScrcpyError, ProtocolError) as exc:
            if self._closing.is_set():
                return
            log.warning("scrcpy %s stream of %s ended: %s", name, self.device.serial, exc)
            if name == "audio":  # as on the server, losing audio is not fatal
                self.state.audio_error = exc
            else:
                self.state.error = exc

    def _read_video(self) -> None:
        def handle(header, payload) -> None:
            frames = self._video_decoder.feed(payload, header.pts_us, header.config)
            with self._lock:
                if header.pts_us is not None:
                    self.state.last_pts_us = header.pts_us
                self.state.frames.extend(frames)
                if self._video_decoder.size:
                    self.state.video_size = self._video_decoder.size
        self._reader("video", handle)

    def _read_audio(self) -> None:
        def handle(header, payload) -> None:
            chunks = self._audio_decoder.feed(payload, header.pts_us, header.config)
            with self._lock:
                self.state.audio.extend(chunks)
        self._reader("audio", handle)

    # -- what the driver uses ----------------------------------------------------------------
    def check(self) -> None:
        """Raise if a stream broke: the device went away or the server died."""
        if self.state.error is not None:
            raise ScrcpyError(f"scrcpy stream of {self.device.serial} broke: {self.state.error}")

    def frames_since(self, pts_us: int) -> list[DecodedFrame]:
        with self._lock:
            return [f for f in self.state.frames if f.pts_us >= pts_us]

    def audio_since(self, pts_us: int) -> list[DecodedAudio]:
        with self._lock:
            return [a for a in self.state.audio if a.pts_us >= pts_us]

    @property
    def device_pts_us(self) -> int:
        """The newest video PTS: the device's monotonic clock as the stream last showed it."""
        with self._lock:
            return self.state.last_pts_us

    def send(self, message: control.ControlMessage) -> None:
        if "control" not in self._sockets:
            raise ScrcpyError("control is disabled for this session")
        try:
            self._sockets["control"].sendall(control.encode(message, self.dialect))
        except OSError as exc:
            raise ScrcpyError(f"control socket of {self.device.serial} broke: {exc}") from exc

    def touch(self, action: int, x: float, y: float, pressure: float = 1.0) -> None:
        width, height = self.state.video_size or (0, 0)
        self.send(control.Touch(action, control.POINTER_FINGER,
                                control.Position(int(x), int(y), width, height), pressure))

    def close(self) -> None:
        self._closing.set()
        for sock in self._sockets.values():
            with contextlib.suppress(OSError):
                sock.close()
        if self._shell is not None:
            self._shell.close()
        for thread in self._threads:
            thread.join(timeout=2.0)
