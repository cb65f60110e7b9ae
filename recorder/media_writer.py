"""A recording's screen and sound, written as the scrcpy packets arrive.

Video: the H.264 stream muxed as is (no re-encoding) into a fragmented MP4. The first config
packet (SPS/PPS, Annex-B) becomes the track's extradata (the muxer turns it into `avcC` and
the packets into length-prefixed NAL units); a later, different config packet (the encoder
restarted after a rotation or a size change) is kept in-band, prepended to the next packet.
Fragments of at most one second, flushed as each packet is written, keep the file readable
after a crash up to its last complete fragment; `moov` comes first, so no final rewrite.

Audio: decoded 48 kHz stereo s16le PCM in a WAV file (scrcpy's capture format; `raw` needs
no decoding at all, Opus is decoded). Chosen over remuxing Opus into Ogg because every
reader (the trainer's, a speech recogniser's, an editor's) opens WAV without a codec, at the
price of size (~690 MB per hour). The header's sizes are patched every second, so a crash
loses at most the last second.

One timeline for both: time 0 of the MP4 and sample 0 of the WAV are the device time (scrcpy
PTS) of the first video key frame, the `origin`. Audio is placed by its PTS: a gap in the
stream is filled with silence and audio from before the origin is cut, so sample n is always
origin + n / 48000 s, and a view that started at device time t is at t - origin in both files.
"""

from __future__ import annotations

import io
import logging
import struct
import threading
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from bubblescope.devices.scrcpy.decoder import AudioDecoder
from bubblescope.devices.scrcpy.protocol import PacketHeader
from bubblescope.recorder.errors import MediaError

log = logging.getLogger(__name__)

VIDEO_FILE, AUDIO_FILE = "screen.mp4", "audio.wav"
SAMPLE_RATE, CHANNELS = 48_000, 2
TIME_BASE = Fraction(1, 1_000_000)  # scrcpy PTS are microseconds
MP4_OPTIONS = {"movflags": "empty_moov+default_base_moof", "frag_duration": "1000000",
               "flush_packets": "1"}
AUDIO_TOLERANCE_S = 0.03  # audio PTS jitter tolerated before filling a gap or cutting overlap
BUFFER_LIMIT = 20_000  # packets held before the writer is opened (a few seconds of stream)


class Mp4Writer:
    """Annex-B H.264 packets to a fragmented MP4, timestamps relative to `origin_us`."""

    def __init__(self, path: Path, origin_us: int) -> None:
        self.path, self.origin_us = path, origin_us
        self._container = av.open(str(path), "w", format="mp4", container_options=MP4_OPTIONS)
        self._stream: av.VideoStream | None = None
        self._config = b""
        self._inband = b""
        self.frames = 0
        self.last_pts_us: int | None = None
        self.skipped = 0  # packets before the first key frame (undecodable)

    def write(self, header: PacketHeader, payload: bytes) -> None:
        if header.config:
            if self._stream is None:
                self._config = payload
            elif payload != self._config:
                self._inband = payload
            return
        if self._stream is None:
            if not (header.key and self._config):
                self.skipped += 1
                return
            self._stream = self._open_stream(payload)
        self._mux(self._inband + payload, header)
        self._inband = b""

    def _open_stream(self, key_frame: bytes) -> av.VideoStream:
        """The output stream is made from a template, a probe of the config and the first key
        frame: a stream added by codec name would open an encoder whose own parameter sets
        replace ours."""
        try:
            with av.open(io.BytesIO(self._config + key_frame), format="h264") as probe:
                stream = self._container.add_stream_from_template(probe.streams.video[0])
        except (av.FFmpegError, IndexError) as exc:
            raise MediaError(f"{self.path}: the first key frame does not probe: {exc}") from exc
        stream.codec_context.extradata = self._config
        stream.time_base = TIME_BASE
        return stream

    def _mux(self, data: bytes, header: PacketHeader) -> None:
        pts = (header.pts_us or 0) - self.origin_us
        if self.last_pts_us is not None and pts <= self.last_pts_us:
            pts = self.last_pts_us + 1  # MP4 needs strictly increasing timestamps
        packet = av.Packet(data)
        packet.stream = self._stream
        packet.pts = packet.dts = pts
        packet.time_base = TIME_BASE
        packet.is_keyframe = header.key
        self._container.mux(packet)
        self.frames += 1
        self.last_pts_us = pts

    def close(self) -> None:
        self._container.close()


def _wav_header(frames: int) -> bytes:
    data = frames * CHANNELS * 2
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data, b"WAVE", b"fmt ", 16, 1,
                       CHANNELS, SAMPLE_RATE, SAMPLE_RATE * CHANNELS * 2, CHANNELS * 2, 16,
                       b"data", data)


class WavWriter:
    """48 kHz stereo s16le PCM, the header patched every `patch_every_s` of audio."""

    def __init__(self, path: Path, patch_every_s: float = 1.0) -> None:
        self.path = path
        self._file: BinaryIO = path.open("wb")
        self._file.write(_wav_header(0))
        self.frames = 0
        self._patched = 0
        self._patch_every = int(patch_every_s * SAMPLE_RATE)

    def write(self, pcm: np.ndarray) -> None:
        self._file.write(np.ascontiguousarray(pcm, dtype="<i2").tobytes())
        self.frames += len(pcm)
        if self.frames - self._patched >= self._patch_every:
            self._patch()

    def silence(self, frames: int) -> None:
        while frames > 0:
            chunk = min(frames, SAMPLE_RATE)
            self.write(np.zeros((chunk, CHANNELS), dtype=np.int16))
            frames -= chunk

    def _patch(self) -> None:
        end = self._file.tell()
        self._file.seek(0)
        self._file.write(_wav_header(self.frames))
        self._file.seek(end)
        self._file.flush()
        self._patched = self.frames

    def close(self) -> None:
        self._patch()
        self._file.close()


class AudioTrack:
    """Decoded audio placed at its PTS on the origin's timeline (see the module doc)."""

    def __init__(self, wav: WavWriter, codec: str, origin_us: int) -> None:
        self.wav, self.origin_us = wav, origin_us
        self._decoder = AudioDecoder(codec)
        self._tolerance = int(AUDIO_TOLERANCE_S * SAMPLE_RATE)
        self.filled = 0  # frames of silence put into gaps
        self.cut = 0  # frames dropped (before the origin, or overlapping)

    def write(self, header: PacketHeader, payload: bytes) -> None:
        for chunk in self._decoder.feed(payload, header.pts_us, header.config):
            self._place(chunk.pts_us, chunk.pcm)

    def _place(self, pts_us: int, pcm: np.ndarray) -> None:
        position = round((pts_us - self.origin_us) * SAMPLE_RATE / 1_000_000)
        gap = position - self.wav.frames
        if gap > self._tolerance:
            self.wav.silence(gap)
            self.filled += gap
        elif gap < -self._tolerance:
            cut = min(-gap, len(pcm))
            pcm, self.cut = pcm[cut:], self.cut + cut
        if len(pcm):
            self.wav.write(pcm)


class MediaWriter:
    """The scrcpy client's packet sink. Packets are held in memory until `open` is given the
    session's media folder (the session is named after its start, known only once the first
    key frame arrived and the clock was calibrated), then written as they come. Errors are
    kept in `error`, never raised into the client's reader threads."""

    def __init__(self, audio_codec: str) -> None:
        self.audio_codec = audio_codec
        self._lock = threading.Lock()
        self._held: list[tuple[str, PacketHeader, bytes]] = []
        self.origin_us: int | None = None  # PTS of the first video key frame
        self.has_origin = threading.Event()
        self.video: Mp4Writer | None = None
        self.audio: AudioTrack | None = None
        self.audio_packets = 0
        self.dropped = 0
        self.error: BaseException | None = None
        self._closed = False

    def __call__(self, stream: str, header: PacketHeader, payload: bytes) -> None:
        with self._lock:
            if stream == "video" and self.origin_us is None and header.key and not header.config:
                self.origin_us = header.pts_us
                self.has_origin.set()
            if self._closed or self.error is not None:
                return
            if self.video is None:
                self._hold(stream, header, payload)
                return
            self._write(stream, header, payload)

    def _hold(self, stream: str, header: PacketHeader, payload: bytes) -> None:
        if len(self._held) >= BUFFER_LIMIT:
            self.dropped += 1
            return
        self._held.append((stream, header, payload))

    def _write(self, stream: str, header: PacketHeader, payload: bytes) -> None:
        try:
            if stream == "video":
                self.video.write(header, payload)
            elif stream == "audio":
                self.audio_packets += 1
                self.audio.write(header, payload)
        except Exception as exc:  # kept for the recorder to report
            log.exception("writing %s media failed", stream)
            self.error = exc

    def open(self, folder: Path) -> None:
        """Create the files and write everything held so far."""
        with self._lock:
            if self.origin_us is None:
                raise MediaError("no video key frame has arrived yet")
            folder.mkdir(parents=True, exist_ok=True)
            self.video = Mp4Writer(folder / VIDEO_FILE, self.origin_us)
            self.audio = AudioTrack(WavWriter(folder / AUDIO_FILE), self.audio_codec,
                                    self.origin_us)
            held, self._held = self._held, []
            for stream, header, payload in held:
                self._write(stream, header, payload)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for writer in (self.video, self.audio.wav if self.audio else None):
                if writer is not None:
                    try:
                        writer.close()
                    except Exception as exc:  # the other file still closes
                        log.exception("closing %s failed", writer.path)
                        self.error = self.error or exc

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"video_frames": self.video.frames if self.video else 0,
                    "video_skipped": self.video.skipped if self.video else 0,
                    "audio_packets": self.audio_packets,
                    "audio_frames": self.audio.wav.frames if self.audio else 0,
                    "audio_filled": self.audio.filled if self.audio else 0,
                    "audio_cut": self.audio.cut if self.audio else 0,
                    "dropped": self.dropped}
