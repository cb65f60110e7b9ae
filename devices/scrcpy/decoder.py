"""Decoding a scrcpy video stream with PyAV, converting only the frames the policy asks for.

H.264 needs every packet of a group of pictures to decode, so all packets are decoded, but the
costly part (colour conversion and scaling to an RGB array) happens only for frames that are
due at the sampling rate. A config packet (SPS/PPS) is merged into the next packet, as scrcpy's
own client does.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np

from bubblescope.devices.errors import ProtocolError


@dataclass(frozen=True)
class DecodedFrame:
    pts_us: int  # device time of the frame (scrcpy PTS, microseconds)
    image: np.ndarray  # (height, width, 3) uint8 RGB


class VideoDecoder:
    def __init__(self, codec: str = "h264", fps: float = 2.0, max_width: int | None = None) -> None:
        if codec not in ("h264", "h265", "av1"):
            raise ProtocolError(f"cannot decode video codec {codec!r}")
        self._context = av.CodecContext.create({"h265": "hevc"}.get(codec, codec), "r")
        self._pending_config = b""
        self.interval_us = int(1_000_000 / fps) if fps > 0 else 0
        self.max_width = max_width
        self._next_due_us: int | None = None
        self.decoded = 0  # frames the codec produced
        self.converted = 0  # frames turned into RGB arrays
        self.size: tuple[int, int] | None = None  # (width, height) of the last decoded frame

    def feed(self, payload: bytes, pts_us: int | None, config: bool = False) -> list[DecodedFrame]:
        """One packet from the stream; returns the frames that are due."""
        if config:
            self._pending_config += payload
            return []
        data, self._pending_config = self._pending_config + payload, b""
        packet = av.Packet(data)
        packet.pts = pts_us
        try:
            frames = self._context.decode(packet)
        except av.error.InvalidDataError as exc:
            raise ProtocolError(f"video packet at {pts_us} us does not decode: {exc}") from exc
        return [f for frame in frames if (f := self._sample(frame, pts_us)) is not None]

    def _sample(self, frame: av.VideoFrame, pts_us: int | None) -> DecodedFrame | None:
        self.decoded += 1
        self.size = (frame.width, frame.height)
        pts = frame.pts if frame.pts is not None else (pts_us or 0)
        if self._next_due_us is not None and pts < self._next_due_us:
            return None
        self._next_due_us = pts + self.interval_us
        self.converted += 1
        return DecodedFrame(pts, self._to_rgb(frame))

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        if self.max_width and frame.width > self.max_width:
            height = int(frame.height * self.max_width / frame.width) // 2 * 2
            return frame.to_ndarray(format="rgb24", width=self.max_width, height=height)
        return frame.to_ndarray(format="rgb24")


@dataclass(frozen=True)
class DecodedAudio:
    pts_us: int
    pcm: np.ndarray  # (frames, 2) int16 at 48 kHz, scrcpy's capture format


class AudioDecoder:
    """Opus (after its OpusHead config packet) or raw s16le stereo PCM at 48 kHz."""

    SAMPLE_RATE = 48_000

    def __init__(self, codec: str) -> None:
        if codec not in ("opus", "raw"):
            raise ProtocolError(f"cannot decode audio codec {codec!r}; ask for opus or raw")
        self.codec = codec
        self._context = None
        self._resampler = None

    def feed(self, payload: bytes, pts_us: int | None, config: bool = False) -> list[DecodedAudio]:
        if self.codec == "raw":
            pcm = np.frombuffer(payload, dtype="<i2").reshape(-1, 2)
            return [DecodedAudio(pts_us or 0, pcm)]
        if config:
            self._context = av.CodecContext.create("opus", "r")
            self._context.extradata = payload
            self._resampler = av.AudioResampler(format="s16", layout="stereo",
                                                rate=self.SAMPLE_RATE)
            return []
        if self._context is None:
            raise ProtocolError("opus packet before the OpusHead config packet")
        packet = av.Packet(payload)
        packet.pts = pts_us
        out = []
        for frame in self._context.decode(packet):
            for converted in self._resampler.resample(frame):
                pcm = converted.to_ndarray().reshape(-1, 2)
                out.append(DecodedAudio(pts_us or 0, pcm))
        return out
