"""Encoding the virtual phone's screen and sound as a scrcpy server would: H.264 Annex-B with
the parameter sets in a config packet first, no B-frames; audio as Opus (with its 19-byte
OpusHead config packet) or raw 48 kHz stereo s16le PCM."""

from __future__ import annotations

import fractions
import struct
from dataclasses import dataclass

import av
import numpy as np

SAMPLE_RATE = 48_000
CHANNELS = 2
_PARAMETER_SETS = {7, 8}  # H.264 SPS, PPS


@dataclass(frozen=True)
class EncodedPacket:
    payload: bytes
    pts_us: int | None  # None for config packets
    config: bool = False
    key: bool = False


def split_nal_units(data: bytes) -> list[bytes]:
    """Annex-B NAL units, each with its start code."""
    starts = []
    i = data.find(b"\x00\x00\x01")
    while i != -1:
        start = i - 1 if i > 0 and data[i - 1] == 0 else i
        starts.append(start)
        i = data.find(b"\x00\x00\x01", i + 3)
    return [data[a:b] for a, b in zip(starts, [*starts[1:], len(data)], strict=True)]


def _nal_type(unit: bytes) -> int:
    header = unit[3] if unit[2] == 1 else unit[4]
    return header & 0x1F


class VideoEncoder:
    """H.264 frames from RGB arrays; the first output is a config packet (SPS+PPS)."""

    def __init__(self, width: int, height: int, bit_rate: int = 2_000_000,
                 key_interval: int = 600, max_fps: float = 0.0) -> None:
        self.width, self.height = width - width % 8, height - height % 8
        context = av.CodecContext.create("libx264", "w")
        context.width, context.height = self.width, self.height
        context.pix_fmt = "yuv420p"
        context.time_base = fractions.Fraction(1, 1_000_000)
        # x264 budgets bits per frame from the frame rate; without one it assumes the time
        # base (1 MHz) and starves every frame to grey
        context.framerate = fractions.Fraction(max_fps or 30)
        context.bit_rate = bit_rate
        context.options = {"preset": "ultrafast", "tune": "zerolatency", "bframes": "0",
                           "keyint": str(key_interval), "repeat-headers": "0"}
        self._context = context
        self._sent_config = False

    def encode(self, image: np.ndarray, pts_us: int) -> list[EncodedPacket]:
        if image.shape[0] != self.height or image.shape[1] != self.width:
            image = np.ascontiguousarray(image[:self.height, :self.width])
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts = pts_us
        return [p for packet in self._context.encode(frame) for p in self._split(packet)]

    def _split(self, packet: av.Packet) -> list[EncodedPacket]:
        data = bytes(packet)
        units = split_nal_units(data)
        config = b"".join(u for u in units if _nal_type(u) in _PARAMETER_SETS)
        media = b"".join(u for u in units if _nal_type(u) not in _PARAMETER_SETS)
        out = []
        if config and not self._sent_config:
            out.append(EncodedPacket(config, None, config=True))
            self._sent_config = True
        if media:
            out.append(EncodedPacket(media, int(packet.pts), key=packet.is_keyframe))
        return out


def opus_head(pre_skip: int = 312) -> bytes:
    """The 19-byte OpusHead structure scrcpy sends as the Opus config packet."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, CHANNELS, pre_skip, SAMPLE_RATE, 0, 0)


class AudioEncoder:
    """48 kHz stereo s16le PCM in, scrcpy audio packets out (`opus` or `raw`)."""

    def __init__(self, codec: str = "opus", bit_rate: int = 128_000) -> None:
        if codec not in ("opus", "raw"):
            raise ValueError(f"unsupported audio codec {codec!r}; use opus or raw")
        self.codec = codec
        self._context = None
        self._sent_config = codec == "raw"  # raw has no config packet
        if codec == "opus":
            context = av.CodecContext.create("libopus", "w")
            context.sample_rate = SAMPLE_RATE
            context.layout = "stereo"
            context.format = "s16"
            context.bit_rate = bit_rate
            self._context = context

    def encode(self, pcm: np.ndarray, pts_us: int) -> list[EncodedPacket]:
        """`pcm`: (frames, 2) int16."""
        if self.codec == "raw":
            return [EncodedPacket(chunk.tobytes(), pts_us + i * 1024 * 1_000_000 // SAMPLE_RATE)
                    for i, chunk in enumerate(np.array_split(pcm, max(1, -(-len(pcm) // 1024))))
                    if len(chunk)]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm.reshape(1, -1)),
                                           format="s16", layout="stereo")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = pts_us * SAMPLE_RATE // 1_000_000
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        out = []
        if not self._sent_config:
            out.append(EncodedPacket(opus_head(), None, config=True))
            self._sent_config = True
        for packet in self._context.encode(frame):
            pts = int(packet.pts * 1_000_000 // SAMPLE_RATE) if packet.pts is not None else pts_us
            out.append(EncodedPacket(bytes(packet), pts))
        return out
