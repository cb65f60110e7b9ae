"""`bubblescope record`: a person browsing a short-video app, recorded into the session dataset
(personas/dataset.py) that persona agents are trained from.

While the person browses, four streams run side by side:

* scrcpy (video + audio): packets are muxed as they arrive (recorder/media_writer.py) into
  `media/screen.mp4` and `media/audio.wav`, and their PTS keep the device's clock
  (recorder/device_uptime.py);
* `getevent -lt` over an adb shell (a PTY, so lines are not held in stdio buffers): the
  person's touches, read into taps and swipes (recorder/gestures.py, on a thread of
  recorder/streams.py);
* UI dumps (`uiautomator dump`) every `dump_interval_s` and right after each tap, stamped in
  device time, which tell what each tap landed on and when the feed showed another video
  (recorder/views.py);
* the recorder's loop: an upward swipe that is followed by a dump showing another video ends
  a view at the finger's lift; the next view starts at that same instant.

Output, in `<out>/<participant>/<session_id>/`: one `Session` (session_id = the UTC start as
`YYYYMMDD_HHMMSS`, `_2`... if taken), one `TraceRecord` per completed view, with `started_at`
and `timestamp` (the lifts that brought and left the video, UTC), `viewing_duration` (device
seconds between them, from getevent's own timestamps), the actions, the view's first UI dump
(`media/ui/NNNN.xml`) and the session's one video and audio file. `start_time` is the device
time of the media's first frame, so a view is `started_at - start_time` seconds into both
media files. The video on screen when the recording stops was never left: it has no record
(its watch time is unknown), though its media and UI dump are kept.

It stops on `stop()`, Ctrl-C (KeyboardInterrupt in `run`), after `duration_s` real seconds
or after `views` completed views, or when a stream breaks; whatever stops it, what was
recorded is written.

Crash safety: media are written incrementally (at most ~1 s lost); session.json is rewritten
atomically after every view and every `partial_every_s`, so a crash loses at most the view in
progress; the final write, after the media are closed, sets `end_time` to the stop.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import adbutils

from bubblescope.contracts import VideoTruth
from bubblescope.devices.adb_phone import TRUTH_PROGRAM, VIRTUAL_MANUFACTURER
from bubblescope.devices.app_drivers import SIM_APP, app_driver
from bubblescope.devices.device_clock import DeviceClock
from bubblescope.devices.errors import DeviceOffline
from bubblescope.devices.scrcpy.client import ScrcpyClient
from bubblescope.devices.scrcpy.protocol import PacketHeader
from bubblescope.devices.spec import ScrcpySpec
from bubblescope.errors import ConfigError
from bubblescope.personas.dataset import MEDIA_DIR, SAFE_NAME, write_session
from bubblescope.personas.schema import Session, TraceRecord
from bubblescope.recorder.device_uptime import OffsetEstimate, StreamClock
from bubblescope.recorder.errors import RecorderError
from bubblescope.recorder.gestures import Gesture, TouchPanel, find_touch_panel
from bubblescope.recorder.media_writer import AUDIO_FILE, VIDEO_FILE, MediaWriter
from bubblescope.recorder.streams import GestureStream, UiWatcher
from bubblescope.recorder.views import ActionReader, UiSnapshot, UiTimeline, ViewState

log = logging.getLogger(__name__)
_ROTATION = re.compile(r'<hierarchy rotation="(\d)"')


@dataclass(frozen=True)
class RecorderConfig:
    out: Path  # the dataset folder (created or added to)
    participant: str  # collector id: names the participant's folder
    server_jar: Path  # scrcpy-server file on this machine
    app: str = SIM_APP  # app driver (devices/data/apps.yaml)
    platform: str | None = None  # None: the virtual phone's platform, else the driver's name
    duration_s: float | None = None  # stop after this many real seconds
    views: int | None = None  # stop after this many completed views
    max_size: int = 1280  # longer side of the recorded video, pixels
    max_fps: float = 15.0  # video frames per second at most
    audio_codec: str = "raw"  # scrcpy audio codec: raw (no decoding) or opus
    dump_interval_s: float = 0.2  # real seconds between UI dumps, at least
    swipe_fraction: float = 0.15  # an upward swipe this share of the height may end a view
    settle_timeout_s: float = 3.0  # real seconds for a dump to show the next video
    partial_every_s: float = 30.0  # real seconds between partial session.json writes
    start_timeout_s: float = 20.0  # real seconds for each stream to come up

    def check(self) -> None:
        if not SAFE_NAME.match(self.participant):
            raise ConfigError(f"participant {self.participant!r} cannot name a folder (letters,"
                              " digits, _ . - only)", key="--participant")
        for key, value in (("--duration", self.duration_s), ("--views", self.views)):
            if value is not None and value <= 0:
                raise ConfigError(f"must be positive, got {value}", key=key)
        if self.audio_codec not in ("raw", "opus"):
            raise ConfigError(f"audio codec {self.audio_codec!r}: use raw or opus")


@dataclass(frozen=True)
class RecordingResult:
    session_file: Path
    views: int
    stop_reason: str  # views, duration, stopped, interrupted, or "error: ..."
    clock: OffsetEstimate
    stats: dict[str, int]

    @property
    def ok(self) -> bool:
        return not self.stop_reason.startswith("error")


class Recorder:
    def __init__(self, device: adbutils.AdbDevice, config: RecorderConfig) -> None:
        config.check()
        self.device, self.config = device, config
        self.driver = app_driver(config.app)
        self.media = MediaWriter(config.audio_codec)
        self.clock = StreamClock()
        self.timeline = UiTimeline()
        self.ready = threading.Event()  # set when the first view has begun
        self._stop = threading.Event()
        self._records: list[TraceRecord] = []
        self._view: ViewState | None = None
        self._scrcpy: ScrcpyClient | None = None
        self._touches: GestureStream | None = None
        self._watcher: UiWatcher | None = None

    # -- start -------------------------------------------------------------------------------
    def start(self) -> None:
        """Bring every stream up and begin the first view; on failure nothing keeps running."""
        try:
            self._probe_device()
            self.clock.rate = DeviceClock(self._read_epoch).sync().rate
            self._start_scrcpy()
            self.clock.calibrate(self._read_epoch)
            self._open_session()
            self._start_readers()
            first = self.timeline.wait_for(lambda s: True, self.config.start_timeout_s)
            if first is None:
                raise RecorderError(f"{self.device.serial}: no UI dump succeeded")
            self._begin_view(self.clock.now(), first)
            self._started_host = self._written_host = time.monotonic()
            self._write(final=False, first=True)
        except BaseException:
            self._shutdown()
            raise
        self.ready.set()

    def _probe_device(self) -> None:
        try:
            self.screen = tuple(self.device.window_size())
            panel = find_touch_panel(self.device.shell("getevent -lp", timeout=15))
            virtual = self.device.prop.get("ro.product.manufacturer") == VIRTUAL_MANUFACTURER
            platform = self.device.prop.get("bubblescope.platform") if virtual else None
            rotation = _ROTATION.search(self.device.dump_hierarchy())
        except (adbutils.AdbError, OSError) as exc:
            raise DeviceOffline(f"device {self.device.serial} is not reachable: {exc}") from exc
        if panel is None:
            raise RecorderError(f"{self.device.serial}: `getevent -lp` shows no multitouch "
                                "screen (ABS_MT_POSITION_X/Y)")
        self.panel: TouchPanel = panel
        self.virtual = virtual
        self.platform = self.config.platform or platform or self.driver.name
        self.rotation = int(rotation.group(1)) if rotation else 0
        self.reader = ActionReader(self.driver, self.screen)

    def _read_epoch(self) -> float:
        text = self.device.shell("date +%s.%N", timeout=10).strip()
        try:
            return float(text)
        except ValueError as exc:
            raise RecorderError(f"{self.device.serial}: unreadable clock {text!r}") from exc

    def _start_scrcpy(self) -> None:
        config = ScrcpySpec(server_jar=str(self.config.server_jar), max_size=self.config.max_size,
                            max_fps=self.config.max_fps, sample_fps=0.5, audio=True,
                            audio_codec=self.config.audio_codec, history=4)
        self._scrcpy = ScrcpyClient(self.device, config, packet_sink=self._on_packet)
        self._scrcpy.start(self.config.start_timeout_s)
        if not self.media.has_origin.wait(self.config.start_timeout_s):
            raise RecorderError(f"{self.device.serial}: no video key frame within "
                                f"{self.config.start_timeout_s:g} s")

    def _on_packet(self, stream: str, header: PacketHeader, payload: bytes) -> None:
        self.clock.observe(header.pts_us)
        self.media(stream, header, payload)

    def _open_session(self) -> None:
        self.start_mono = self.media.origin_us / 1e6
        base = self.clock.utc(self.start_mono).strftime("%Y%m%d_%H%M%S")
        folder = self.config.out / self.config.participant
        self.session_id, n = base, 2
        while (folder / self.session_id).exists():
            self.session_id, n = f"{base}_{n}", n + 1
        self.session_dir = folder / self.session_id
        self.media.open(self.session_dir / MEDIA_DIR)

    def _start_readers(self) -> None:
        self._watcher = UiWatcher(self.device, self.clock.now, self.timeline,
                                  self.config.dump_interval_s)
        self._touches = GestureStream.for_panel(self.device, self.panel, self.screen,
                                                self.rotation, self.clock.to_monotonic,
                                                on_tap=self._watcher.poke)
        self._touches.start()
        self._watcher.start()

    # -- the loop ----------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask `run` to finish (from any thread)."""
        self._stop.set()

    def run(self) -> RecordingResult:
        """Record until a stop condition; the session is written whatever ends it."""
        if not self.ready.is_set():
            self.start()
        try:
            while (reason := self._stop_reason()) is None:
                try:
                    gesture = self._touches.gestures.get(timeout=0.2)
                except queue.Empty:
                    gesture = None
                if gesture is not None:
                    self._handle(gesture)
                if time.monotonic() - self._written_host >= self.config.partial_every_s:
                    self._write(final=False)
        except KeyboardInterrupt:
            reason = "interrupted"
        except Exception as exc:  # written first, reported after
            log.exception("recording on %s failed", self.device.serial)
            reason = f"error: {exc}"
        return self._finish(reason)

    def _stop_reason(self) -> str | None:
        broken = [("scrcpy", self._scrcpy.state.error), ("media", self.media.error),
                  ("getevent", "stream ended" if self._touches.ended.is_set() else None)]
        elapsed = time.monotonic() - self._started_host
        if self._stop.is_set():
            return "stopped"
        if self.config.views is not None and len(self._records) >= self.config.views:
            return "views"
        if self.config.duration_s is not None and elapsed >= self.config.duration_s:
            return "duration"
        return next((f"error: {name}: {error}" for name, error in broken if error), None)

    def _handle(self, gesture: Gesture) -> None:
        view = self._view
        if gesture.end < view.started:
            return  # made before the view (or the recording) began
        if gesture.kind == "tap":
            self.reader.on_tap(view, gesture, self.timeline)
        elif gesture.is_swipe_up(self.screen[1], self.config.swipe_fraction):
            self._on_swipe_up(gesture)

    def _on_swipe_up(self, swipe: Gesture) -> None:
        """End the view if the feed moved on: a dump after the lift shows another video."""
        view = self._view

        def moved_on(snapshot: UiSnapshot) -> bool:
            return snapshot.before >= swipe.end and (
                not view.signature or self.reader.signature(snapshot.nodes) != view.signature)

        snapshot = self.timeline.wait_for(moved_on, self.config.settle_timeout_s)
        if snapshot is None:
            if self.timeline.wait_for(lambda s: s.before >= swipe.end, 0) is not None:
                log.info("swipe at %.3f left the feed on the same video", swipe.end)
                return
            snapshot = self.timeline.latest()  # no dump since: trust the gesture
        self._end_view(swipe)
        self._begin_view(swipe.end, snapshot)

    def _begin_view(self, started: float, snapshot: UiSnapshot) -> None:
        index = len(self._records) + 1
        path = self.session_dir / self._ui_path(index)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(snapshot.xml, encoding="utf-8")
        self._view = ViewState(index, started, snapshot, self.reader.signature(snapshot.nodes),
                               self._truth())

    @staticmethod
    def _ui_path(index: int) -> str:
        return f"{MEDIA_DIR}/ui/{index:04d}.xml"

    def _truth(self) -> VideoTruth | None:
        """The virtual phone's label of the video on screen (real phones have none)."""
        if not self.virtual:
            return None
        try:
            text = self.device.shell(TRUTH_PROGRAM, timeout=10).strip()
            return None if text in ("", "null") else VideoTruth.model_validate(json.loads(text))
        except (adbutils.AdbError, OSError, ValueError) as exc:
            log.warning("no ground truth from %s: %s", self.device.serial, exc)
            return None

    def _end_view(self, swipe: Gesture) -> None:
        view, end = self._view, swipe.end
        earlier = self.timeline.before(swipe.start, since=view.snapshot.before)
        truth = view.truth
        audio = self.media.audio_packets > 0
        self._records.append(TraceRecord(
            timestamp=self.clock.utc(end), viewing_duration=round(max(0.0, end - view.started), 3),
            actions=self.reader.actions(view, earlier[0] if earlier else None, end),
            video_id=truth.video_id if truth else None,
            video_duration_s=truth.duration_s if truth else None,
            category=truth.category if truth else None,
            started_at=self.clock.utc(view.started), ui_dump=self._ui_path(view.index),
            video_file=f"{MEDIA_DIR}/{VIDEO_FILE}",
            audio_file=f"{MEDIA_DIR}/{AUDIO_FILE}" if audio else None, platform=self.platform))
        self._write(final=False)

    # -- output ------------------------------------------------------------------------------
    def _write(self, final: bool, first: bool = False, end: float | None = None) -> Path:
        """session.json as recorded so far; it ends now (or at `end`), and never before the
        last view began (now() may lag the getevent time of the last lift by a few ms)."""
        end = max(end if end is not None else self.clock.now(), self.start_mono,
                  self._view.started if self._view else self.start_mono)
        session = Session(
            session_id=self.session_id, collector=self.config.participant,
            platform=self.platform, start_time=self.clock.utc(self.start_mono),
            records=tuple(self._records), end_time=self.clock.utc(end),
            device=self.device.serial, app=self.driver.package)
        self._written_host = time.monotonic()
        return write_session(self.config.out, session, update_index=final or first)

    def _finish(self, reason: str) -> RecordingResult:
        end = self.clock.now()
        self._shutdown()
        if self.media.audio_packets == 0:
            (self.session_dir / MEDIA_DIR / AUDIO_FILE).unlink(missing_ok=True)
        path = self._write(final=True, end=end)
        parser = self._touches.parser
        stats = {**self.media.stats(), "getevent_events": parser.events,
                 "getevent_malformed": parser.malformed, "ui_dumps_failed": self._watcher.failures}
        log.info("recorded %d views on %s (%s): %s", len(self._records), self.device.serial,
                 reason, stats)
        return RecordingResult(path, len(self._records), reason, self.clock.estimate, stats)

    def _shutdown(self) -> None:
        """Stop every thread and stream and close the media (idempotent)."""
        for reader in (self._touches, self._watcher, self._scrcpy):
            if reader is not None:
                reader.close()
        self.media.close()


def record(serial: str, config: RecorderConfig, adb_host: str = "127.0.0.1",
           adb_port: int = 5037) -> RecordingResult:
    """Record one session from the device `serial` on the adb server at adb_host:adb_port."""
    config.check()  # before touching adb: a typo should not wait for a device
    client = adbutils.AdbClient(host=adb_host, port=adb_port, socket_timeout=30)
    try:
        if ":" in serial:  # a network (or virtual) device: ask adb to connect it
            client.connect(serial, timeout=10)
        device = client.device(serial)
        state = device.get_state()
    except (adbutils.AdbError, OSError) as exc:
        raise DeviceOffline(f"device {serial} is not reachable on adb: {exc}") from exc
    if state != "device":
        raise DeviceOffline(f"device {serial} is {state}")
    recorder = Recorder(device, config)
    recorder.start()
    return recorder.run()
