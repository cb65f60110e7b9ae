"""One scrcpy session's streams on the virtual device: video and audio out, control in.

Encoding runs in worker threads so the device's event loop (which also serves every ADB
stream) is never blocked; frames and audio come from the phone at the device clock, so with
a time warp the stream carries device time in its PTS while it flows at real-time rates.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np
from PIL import Image

from bubblescope.devices.errors import ProtocolError
from bubblescope.devices.scrcpy import control
from bubblescope.devices.scrcpy.options import ServerOptions
from bubblescope.devices.scrcpy.protocol import (
    Dialect,
    encode_codec_id,
    encode_packet_header,
    encode_video_header,
)
from bubblescope.sim.android.media import SAMPLE_RATE, AudioEncoder, EncodedPacket, VideoEncoder

log = logging.getLogger(__name__)
DEFAULT_FPS = 30.0
AUDIO_TICK_S = 0.02  # real seconds between audio packets
KEYCODE_BACK, KEYCODE_POWER = 4, 26


def scaled_size(width: int, height: int, max_size: int) -> tuple[int, int]:
    """The server's capture size: the longer side at most max_size, both multiples of 8."""
    if max_size and max(width, height) > max_size:
        scale = max_size / max(width, height)
        width, height = round(width * scale), round(height * scale)
    return width - width % 8, height - height % 8


class StreamSession:
    def __init__(self, phone, options: ServerOptions, dialect: Dialect, streams: dict) -> None:
        self.phone, self.options, self.dialect, self.streams = phone, options, dialect, streams
        self.size = scaled_size(phone.width, phone.height, options.max_size)
        self._reset_video = asyncio.Event()

    async def run(self, cancelled: asyncio.Event) -> None:
        """Until the client closes the shell, the video or the control socket (an audio
        stream ending is not fatal, as on the real server)."""
        loops = {"video": self._video, "audio": self._audio, "control": self._control}
        tasks = {name: asyncio.create_task(loops[name]()) for name in self.streams}
        tasks["shell"] = asyncio.create_task(cancelled.wait())
        fatal = [task for name, task in tasks.items() if name != "audio"]
        try:
            done, _ = await asyncio.wait(fatal, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                error = task.exception()
                if error is not None and not isinstance(error, ConnectionError):
                    raise error
        finally:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)

    async def _send(self, stream, packet: EncodedPacket) -> None:
        if self.options.send_frame_meta:
            await stream.write(encode_packet_header(self.dialect, len(packet.payload),
                                                    packet.pts_us, config=packet.config,
                                                    key=packet.key) + packet.payload)
        else:
            await stream.write(packet.payload)

    # video ---------------------------------------------------------------------------------
    def _frame(self, t: float) -> np.ndarray:
        image = self.phone.render_frame(t)
        if (image.shape[1], image.shape[0]) != self.size:
            image = np.asarray(Image.fromarray(image).resize(self.size, Image.BILINEAR))
        return image

    def _encode_now(self, encoder: VideoEncoder) -> list[EncodedPacket]:
        t = self.phone.monotonic()
        return encoder.encode(self._frame(t), int(t * 1_000_000))

    async def _video(self) -> None:
        stream = self.streams["video"]
        if self.options.video_codec != "h264":
            raise ProtocolError(f"the virtual device encodes h264 only, not "
                                f"{self.options.video_codec}")
        if self.options.send_codec_meta:
            await stream.write(encode_video_header(self.dialect, "h264", *self.size))
        interval = 1.0 / (self.options.max_fps or DEFAULT_FPS)
        encoder = VideoEncoder(*self.size, bit_rate=self.options.video_bit_rate,
                               max_fps=self.options.max_fps)
        while True:
            began = asyncio.get_running_loop().time()
            if self._reset_video.is_set():
                self._reset_video.clear()
                encoder = VideoEncoder(*self.size, bit_rate=self.options.video_bit_rate,
                                       max_fps=self.options.max_fps)
            packets = await asyncio.to_thread(self._encode_now, encoder)
            for packet in packets:
                await self._send(stream, packet)
            elapsed = asyncio.get_running_loop().time() - began
            await asyncio.sleep(max(0.0, interval - elapsed))

    # audio ---------------------------------------------------------------------------------
    async def _audio(self) -> None:
        stream = self.streams["audio"]
        codec = self.options.audio_codec
        if codec not in ("opus", "raw"):
            await stream.write(encode_codec_id(0))  # disabled, as a device without it would
            return
        if self.options.send_codec_meta:
            await stream.write(encode_codec_id(codec))
        encoder = AudioEncoder(codec, self.options.audio_bit_rate)
        capture = self.phone.audio_capture()
        last = self.phone.monotonic()
        while True:
            await asyncio.sleep(AUDIO_TICK_S)
            now = self.phone.monotonic()
            frames = int((now - last) * SAMPLE_RATE)
            if frames <= 0:
                continue
            pts, last = last, last + frames / SAMPLE_RATE
            packets = await asyncio.to_thread(encoder.encode, capture.read(frames),
                                              int(pts * 1_000_000))
            for packet in packets:
                await self._send(stream, packet)

    # control -------------------------------------------------------------------------------
    async def _control(self) -> None:
        stream = self.streams["control"]
        reader = control.ControlReader(self.dialect)
        while True:
            data = await stream.read()
            if not data:
                return  # the client closed the control socket: the session ends
            for message in reader.feed(data):
                await self._apply(message, stream)

    async def _apply(self, message, stream) -> None:  # noqa: C901 - one case per message
        phone = self.phone
        match message:
            case control.Touch(action, pointer, position, _pressure):
                if (position.screen_width, position.screen_height) != self.size:
                    return  # the real server drops events for another video size
                x = position.x * phone.width / self.size[0]
                y = position.y * phone.height / self.size[1]
                phone.inject_touch(action, pointer & 0xFFFF, x, y)
            case control.Keycode(action, keycode):
                phone.inject_key(action, keycode)
            case control.Text(text):
                phone.inject_text(text)
            case control.BackOrScreenOn(action):
                if phone.screen_on:
                    phone.inject_key(action, KEYCODE_BACK)
                elif action == control.KeyAction.DOWN:
                    phone.keyevent(KEYCODE_POWER)
            case control.SetClipboard(sequence, text, paste):
                phone.clipboard = text
                if paste:
                    phone.inject_text(text)
                if sequence:
                    await stream.write(control.encode_ack_clipboard(sequence))
            case control.GetClipboard():
                await stream.write(control.encode_clipboard(phone.clipboard))
            case control.StartApp():
                phone.start_app()
            case control.SetDisplayPower(on):
                phone.screen_on = on
            case control.Simple(control.ControlType.RESET_VIDEO):
                self._reset_video.set()
