"""A phone on adb: the production `Device`. adbutils for the device and its shell, scrcpy for
the screen, sound and touches, the app driver for where things are on screen.

A step's view of a video starts when the video appears. `observe` waits a short glance of
device time, then reads the UI tree (text), the frames and the audio since the video appeared
(transcript); `act` waits out the rest of the watch time on the device clock, engages
(like, comment, share) through the views the UI tree locates, and swipes to the next video.
Anything that breaks (adb drops the device, a stream ends, a dump fails) is raised as
`DeviceOffline`/`DeviceError`, so the actor's owner can wait for the device and resume.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import adbutils

from bubblescope.contracts import Action, Frame, Observation, Performed, VideoTruth
from bubblescope.devices.app_drivers import AppDriver, app_driver
from bubblescope.devices.device import Device
from bubblescope.devices.device_clock import DeviceClock
from bubblescope.devices.errors import DeviceError, DeviceOffline, ScrcpyError, UiTreeError
from bubblescope.devices.scrcpy.client import ScrcpyClient
from bubblescope.devices.scrcpy.control import KeyAction, Keycode, MotionAction, Text
from bubblescope.devices.spec import AdbSpec
from bubblescope.devices.ui_tree import Node, parse_ui_dump

if TYPE_CHECKING:
    from bubblescope.perception.speech import TranscriptPipeline

log = logging.getLogger(__name__)
VIRTUAL_MANUFACTURER = "bubblescope"  # ro.product.manufacturer of the simulated phones
TRUTH_PROGRAM, PHASE_PROGRAM = "bubblescope-truth", "bubblescope-phase"
KEYCODE_BACK = 4


def _rgb_frame(decoded) -> Frame:
    height, width = decoded.image.shape[:2]
    return Frame(pts_s=decoded.pts_us / 1e6, width=width, height=height, format="rgb24",
                 data=decoded.image.tobytes())


@dataclass
class _View:
    """The video on screen: when it appeared, and what the UI tree said about it."""

    started: float  # device epoch seconds
    started_pts_us: int  # scrcpy PTS (device monotonic) when it appeared
    nodes: list[Node] = field(default_factory=list)

    @property
    def signature(self) -> tuple[str, ...]:
        return tuple(n.text for n in self.nodes if n.text and n.class_name.endswith("TextView"))


class AdbPhone(Device):
    def __init__(self, serial: str, spec: AdbSpec,
                 transcriber: TranscriptPipeline | None = None) -> None:
        self.serial, self.spec = serial, spec
        # sound is only needed for transcripts
        self.scrcpy = spec.scrcpy if spec.speech.enabled else \
            spec.scrcpy.model_copy(update={"audio": False})
        self.app: AppDriver = app_driver(spec.app)
        self.transcriber = transcriber
        self._client = adbutils.AdbClient(host=spec.host, port=spec.port, socket_timeout=30)
        self._device: adbutils.AdbDevice | None = None
        self._scrcpy: ScrcpyClient | None = None
        self._clock: DeviceClock | None = None
        self._screen = (0, 0)
        self._view: _View | None = None
        self._login: dict | None = None
        self.virtual = False

    # -- connection --------------------------------------------------------------------------
    def _shell(self, command: str, timeout: float = 30.0) -> str:
        try:
            return self._device.shell(command, timeout=timeout)
        except (adbutils.AdbError, OSError) as exc:
            raise DeviceOffline(f"device {self.serial}: `{command[:40]}` failed: {exc}") from exc

    def connect(self) -> None:
        """Attach (or re-attach) to the device: adb, clock, screen size, scrcpy streams."""
        self.close()
        try:
            if ":" in self.serial:  # a network device (or a virtual one): ask adb to connect
                self._client.connect(self.serial, timeout=10)
            self._device = self._client.device(self.serial)
            if self._device.get_state() != "device":
                raise DeviceOffline(f"device {self.serial} is {self._device.get_state()}")
            self.virtual = self._device.prop.get("ro.product.manufacturer") == \
                VIRTUAL_MANUFACTURER
            width, height = self._device.window_size()
        except (adbutils.AdbError, OSError) as exc:
            raise DeviceOffline(f"device {self.serial} is not reachable on adb: {exc}") from exc
        self._screen = (width, height)
        self._clock = DeviceClock(self._read_clock).sync()
        self._scrcpy = ScrcpyClient(self._device, self.scrcpy)
        try:
            self._scrcpy.start()
        except (adbutils.AdbError, OSError) as exc:
            raise DeviceOffline(f"device {self.serial}: scrcpy did not start: {exc}") from exc

    def _read_clock(self) -> float:
        text = self._shell("date +%s.%N", timeout=10).strip()
        try:
            return float(text)
        except ValueError as exc:
            raise DeviceError(f"device {self.serial}: unreadable clock {text!r}") from exc

    def wait_online(self, timeout_s: float) -> None:
        """Block until the device answers on adb again (reconnecting network devices)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.connect()
                return
            except DeviceError as exc:
                if time.monotonic() > deadline:
                    raise DeviceOffline(f"device {self.serial} stayed offline: {exc}") from exc
                time.sleep(1.0)

    def close(self) -> None:
        if self._scrcpy is not None:
            self._scrcpy.close()
            self._scrcpy = None

    # -- the Device interface ----------------------------------------------------------------
    def open_feed(self, platform: str, account: str, seed: int) -> None:
        if self._scrcpy is None:
            self.connect()
        self._login = {"platform": platform, "account": account, "seed": seed}
        output = self._shell(self.app.launch_command(platform, account, seed))
        if "Error" in output:
            raise DeviceError(f"device {self.serial}: could not open {self.app.name}: "
                              f"{output.strip()[:200]}")
        launched_at, launched_pts = self._clock.now(), self._scrcpy.device_pts_us
        self._view = self._wait_for_view(previous=None)
        self._view.started, self._view.started_pts_us = launched_at, launched_pts

    def begin_phase(self, phase: str) -> None:
        if self.virtual:
            self._shell(PHASE_PROGRAM)

    def observe(self) -> Observation:
        view = self._require_view()
        self._clock.sleep_until(view.started + self.spec.glance_s)
        self._scrcpy_check()
        view.nodes = self._dump() or view.nodes
        frames = self._scrcpy.frames_since(view.started_pts_us)
        step = max(1, len(frames) // self.spec.frames_per_observation)
        chosen = frames[::step][-self.spec.frames_per_observation:]
        return Observation(
            device_time=datetime.fromtimestamp(self._clock.now(), UTC),
            frames=tuple(_rgb_frame(f) for f in chosen),
            transcript=self._transcript(view),
            on_screen_text=self._screen_text(view.nodes),
        )

    def act(self, action: Action) -> Performed:
        view = self._require_view()
        self._clock.sleep_until(view.started + action.watch_s)
        self._scrcpy_check()
        # a like is the platform's signal; what the model writes reaches people only when
        # the app is the simulated one or the job opts in (devices.adb.post_text)
        posts = self.app.simulated or self.spec.post_text
        performed = Performed(like=action.like, comment=bool(action.comment) and posts,
                              share=bool(action.share) and posts)
        if performed.like:
            self._tap_role("like_button", view.nodes)
        if performed.comment:
            self._comment(action.comment or "")
        if performed.share:
            self._share()
        if performed.comment or performed.share:
            self._close_sheets()
        swiped_at, swiped_pts = self._swipe_up()
        self._view = self._wait_for_view(previous=view)
        # the next video appeared when the finger lifted, not when the UI tree was read
        self._view.started, self._view.started_pts_us = swiped_at, swiped_pts
        return performed

    def ground_truth(self) -> VideoTruth | None:
        if not self.virtual:
            return None
        text = self._shell(TRUTH_PROGRAM).strip()
        return None if text in ("", "null") else VideoTruth.model_validate(json.loads(text))

    def snapshot(self) -> dict | None:
        return dict(self._login) if self._login else None

    def restore(self, snapshot: dict) -> None:
        """After a crash: log the same account in again and carry on with its feed (the
        platform kept the account's history on its side)."""
        self.open_feed(snapshot["platform"], snapshot["account"], int(snapshot["seed"]))

    # -- helpers -----------------------------------------------------------------------------
    def _require_view(self) -> _View:
        if self._view is None or self._clock is None:
            raise DeviceError(f"device {self.serial}: no feed open; call open_feed first")
        return self._view

    def _scrcpy_check(self) -> None:
        try:
            self._scrcpy.check()
        except ScrcpyError as exc:
            raise DeviceOffline(str(exc)) from exc

    def _dump(self) -> list[Node]:
        try:
            xml = self._device.dump_hierarchy()
        except (adbutils.AdbError, OSError) as exc:
            raise DeviceOffline(f"device {self.serial}: UI dump failed: {exc}") from exc
        try:
            return parse_ui_dump(xml)
        except UiTreeError as exc:
            log.warning("device %s: %s", self.serial, exc)
            return []

    def _screen_text(self, nodes: list[Node]) -> str:
        roles = ("title", "author", "caption", "like_count", "comment_count", "share_count")
        return "\n".join(t for t in (self.app.text_of(role, nodes) for role in roles) if t)

    def _transcript(self, view: _View) -> str:
        if self.transcriber is None:
            return ""
        self.transcriber.reset()
        for chunk in self._scrcpy.audio_since(view.started_pts_us):
            self.transcriber.feed(chunk.pcm, chunk.pts_us)
        return self.transcriber.transcript()

    def _wait_for_view(self, previous: _View | None) -> _View:
        """The next video on screen: the UI tree shows the feed with other text than before."""
        deadline = time.monotonic() + self.spec.settle_timeout_s
        while time.monotonic() < deadline:
            nodes = self._dump()
            candidate = _View(self._clock.now(), self._scrcpy.device_pts_us, nodes)
            on_feed = self.app.locate("like_button", nodes, self._screen) is not None and \
                any(n.package == self.app.package for n in nodes)
            if on_feed and (previous is None or candidate.signature != previous.signature):
                return candidate
            time.sleep(0.05)
        raise DeviceError(f"device {self.serial}: the feed did not show a new video within "
                          f"{self.spec.settle_timeout_s:g} s")

    def _to_video(self, x: float, y: float) -> tuple[float, float]:
        video_w, video_h = self._scrcpy.state.video_size
        return x * video_w / self._screen[0], y * video_h / self._screen[1]

    def _tap(self, point: tuple[float, float]) -> None:
        x, y = self._to_video(*point)
        self._scrcpy.touch(MotionAction.DOWN, x, y)
        self._clock.sleep(0.08)
        self._scrcpy.touch(MotionAction.UP, x, y, pressure=0.0)

    def _tap_role(self, role: str, nodes: list[Node]) -> bool:
        located = self.app.locate(role, nodes, self._screen)
        if located is None:
            log.warning("device %s: no %s on screen", self.serial, role)
            return False
        self._tap(located.point)
        return True

    def _wait_role(self, role: str, timeout_s: float = 3.0) -> list[Node]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            nodes = self._dump()
            located = self.app.locate(role, nodes, self._screen)
            if located is not None and located.node is not None:
                return nodes
            time.sleep(0.05)
        return []

    def _comment(self, text: str) -> None:
        if not self._tap_role("comment_button", self._view.nodes):
            return
        nodes = self._wait_role("comment_input")
        if not nodes:
            return
        self._tap_role("comment_input", nodes)
        self._scrcpy.send(Text(text))
        self._clock.sleep(0.2)
        self._tap_role("comment_send", self._dump())

    def _share(self) -> None:
        if self._tap_role("share_button", self._view.nodes):
            nodes = self._wait_role("share_target")
            if nodes:
                self._tap_role("share_target", nodes)

    def _close_sheets(self) -> None:
        """A comment box or share sheet still open would take the swipe: BACK closes it."""
        nodes = self._dump()
        if any(self.app.locate(role, nodes, self._screen) is not None and
               self.app.locate(role, nodes, self._screen).node is not None
               for role in ("comment_input", "share_target")):
            self._scrcpy.send(Keycode(KeyAction.DOWN, KEYCODE_BACK))
            self._scrcpy.send(Keycode(KeyAction.UP, KEYCODE_BACK))
            self._clock.sleep(0.1)

    def _swipe_up(self) -> tuple[float, int]:
        """Swipe to the next video; returns the device time and PTS of the finger's lift."""
        width, height = self._screen
        x = width / 2
        path = [height * f for f in (0.80, 0.65, 0.50, 0.35, 0.20)]
        vx, vy = self._to_video(x, path[0])
        self._scrcpy.touch(MotionAction.DOWN, vx, vy)
        for y in path[1:]:
            self._clock.sleep(0.04)
            self._scrcpy.touch(MotionAction.MOVE, *self._to_video(x, y))
        self._scrcpy.touch(MotionAction.UP, *self._to_video(x, path[-1]), pressure=0.0)
        return self._clock.now(), self._scrcpy.device_pts_us
