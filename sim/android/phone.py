"""The virtual phone: a device clock, the short-video app on one platform account, a screen,
a speaker, a touchscreen, and the programs a shell runs on it.

The ADB side (`VirtualDevice`) serves `programs()`, `fs`, `props` and `clock`; an emulated
scrcpy server reads `render_frame`, `audio_capture` and `monotonic`, and injects touches,
keys and text through `inject_touch`, `inject_key` and `inject_text`. Everything that changes
the phone goes through one lock, so the shell's event loop and an encoder thread can share it.
Device time runs `time_warp` times faster than real time, so a farm can watch a 30 s video in
a fraction of a second while everything on the phone still sees a consistent clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from bubblescope.contracts import VideoTruth
from bubblescope.sim.android.account_store import AccountStore
from bubblescope.sim.android.commands import ProgramRegistry
from bubblescope.sim.android.filesystem import VirtualFileSystem
from bubblescope.sim.android.layout import (
    ACTIVITY,
    LAUNCHER_ACTIVITY,
    LAUNCHER_PACKAGE,
    PACKAGE,
    Geometry,
    View,
    launcher_tree,
)
from bubblescope.sim.android.phone_programs import build_programs
from bubblescope.sim.android.render import Renderer, ScreenState
from bubblescope.sim.android.shortvideo_app import AppSnapshot, ShortVideoApp
from bubblescope.sim.android.soundtrack import AudioCapture, Soundtrack, silence
from bubblescope.sim.android.touch import EventLog, Gesture, Tap, TouchScreen
from bubblescope.sim.android.ui_dump import dump_hierarchy
from bubblescope.sim.catalogue import build_catalogue
from bubblescope.sim.in_process_device import SimWorld
from bubblescope.sim.platform import Platform

log = logging.getLogger(__name__)

KEYCODE_HOME, KEYCODE_BACK, KEYCODE_POWER = 3, 4, 26
KEYCODE_SLEEP, KEYCODE_WAKEUP = 223, 224
BOOT_UPTIME_S = 3600.0  # device monotonic time at construction: booted an hour ago


def default_props(serial: str, platform: str, account: str) -> dict[str, str]:
    return {
        "ro.product.model": "BubblePhone", "ro.product.name": "bubblephone",
        "ro.product.device": "bubble", "ro.product.manufacturer": "bubblescope",
        "ro.product.brand": "bubblescope", "ro.build.version.release": "13",
        "ro.build.version.sdk": "33", "ro.build.type": "user", "ro.sf.lcd_density": "320",
        "ro.build.fingerprint": "bubblescope/bubblephone/bubble:13/TQ3A.230901.001/1:user/"
                                "release-keys",
        "ro.serialno": serial, "sys.boot_completed": "1",
        "bubblescope.platform": platform, "bubblescope.account": account,
    }


class VirtualPhone:
    def __init__(self, serial: str, world: SimWorld, platform: str, account: str, seed: int,
                 state_dir: Path | None = None, time_warp: float = 1.0,
                 screen: tuple[int, int] = (720, 1280),
                 props: Mapping[str, str] | None = None) -> None:
        if time_warp <= 0:
            raise ValueError(f"time_warp must be positive, got {time_warp}")
        if platform not in world.profiles:
            raise ValueError(f"no simulated platform {platform!r}; use one of "
                             f"{sorted(world.profiles)}")
        self.serial, self.world, self.time_warp = serial, world, time_warp
        self.width, self.height = screen
        self.geometry = Geometry(*screen)
        self.catalogue = build_catalogue(world.catalogue)
        self.state_dir = state_dir
        self._stores: dict[str, AccountStore] = {}
        self.store = self._store_for(platform)
        self.props: dict[str, str] = {**default_props(serial, platform, account), **(props or {})}
        self.fs = VirtualFileSystem()
        self.settings: dict[tuple[str, str], str] = {
            ("system", "screen_brightness"): "128", ("system", "screen_brightness_mode"): "0",
            ("system", "screen_off_timeout"): "600000", ("global", "airplane_mode_on"): "0",
            ("global", "stay_on_while_plugged_in"): "7",
            ("secure", "android_id"): hashlib.sha256(f"{serial}/{seed}".encode()).hexdigest()[:16]}
        self.clipboard = ""
        self.screen_on = True
        self._t0, self._epoch0 = time.monotonic(), time.time()
        self._lock = threading.RLock()
        self._render_lock = threading.Lock()
        self.events = EventLog()
        self.touchscreen = TouchScreen(self.width, self.height, self.monotonic, self._on_gesture,
                                       self.events)
        self.app = ShortVideoApp(self.catalogue, self.store, account, seed, self.geometry,
                                 self.monotonic, self._set_clipboard)
        self._renderer = Renderer(self.geometry, self.catalogue)
        self.soundtrack = Soundtrack(self.catalogue)
        self._wake_resumes_app = False
        self._programs: ProgramRegistry | None = None

    # time --------------------------------------------------------------------------------
    def _elapsed(self) -> float:
        return (time.monotonic() - self._t0) * self.time_warp

    def clock(self) -> float:
        """Device wall clock, epoch seconds (starts at the real time of construction)."""
        return self._epoch0 + self._elapsed()

    def monotonic(self) -> float:
        """Device CLOCK_MONOTONIC seconds: getevent timestamps, scrcpy PTS, playback."""
        return BOOT_UPTIME_S + self._elapsed()

    async def device_sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0) / self.time_warp)

    # what the shell and tests use ----------------------------------------------------------
    def programs(self) -> ProgramRegistry:
        if self._programs is None:
            self._programs = build_programs(self)
        return self._programs

    def truth(self) -> VideoTruth | None:
        """The platform's label of the video on screen: ground truth for harnesses only."""
        with self._lock:
            return self.app.truth() if self.app.resumed else None

    def app_state(self) -> AppSnapshot:
        with self._lock:
            return self.app.snapshot()

    def _store_for(self, platform: str) -> AccountStore:
        if platform not in self._stores:
            if platform not in self.world.profiles:
                raise ValueError(f"no simulated platform {platform!r}; use one of "
                                 f"{sorted(self.world.profiles)}")
            self._stores[platform] = AccountStore(
                Platform(self.world.profiles[platform], self.catalogue), platform, self.state_dir)
        return self._stores[platform]

    def login(self, platform: str, account: str, seed: int) -> None:
        """Log the app into `account` on `platform` (what a real app's account switch does):
        the app restarts on that account's feed; other accounts keep their server state."""
        with self._lock:
            store = self._store_for(platform)
            if (store, account, seed) == (self.store, self.app.account, self.app.seed):
                return
            self.app.force_stop()
            self.store = self.app.store = store
            self.app.account, self.app.seed = account, seed
            self.props.update({"bubblescope.platform": platform, "bubblescope.account": account})

    def begin_phase(self) -> None:
        """Sim-only hook: tell the platform an experiment phase begins (the `frozen` profile
        stops learning after the first), as the in-process device's begin_phase does."""
        with self._lock:
            state = self.store.login(self.app.account, self.app.seed)
            self.store.platform.begin_phase(state)
            self.store.save(state)

    def foreground(self) -> tuple[str, str]:
        """(package, activity) of the focused window."""
        with self._lock:
            return (PACKAGE, ACTIVITY) if self.app.resumed else (LAUNCHER_PACKAGE,
                                                                 LAUNCHER_ACTIVITY)

    # app lifecycle ---------------------------------------------------------------------------
    def start_app(self) -> None:
        with self._lock:
            self.screen_on = True
            self.app.start()

    def force_stop(self, package: str) -> None:
        with self._lock:
            if package == PACKAGE:
                self.app.force_stop()

    def _set_clipboard(self, text: str) -> None:
        self.clipboard = text

    # input -----------------------------------------------------------------------------------
    def touch_down(self, x: float, y: float, pointer_id: int = 0) -> None:
        with self._lock:
            self.touchscreen.down(pointer_id, x, y)

    def touch_move(self, x: float, y: float, pointer_id: int = 0) -> None:
        with self._lock:
            self.touchscreen.move(pointer_id, x, y)

    def touch_up(self, x: float | None = None, y: float | None = None,
                 pointer_id: int = 0) -> None:
        with self._lock:
            self.touchscreen.up(pointer_id, x, y)

    def inject_touch(self, action: int, pointer_id: int, x: float, y: float) -> None:
        """A scrcpy INJECT_TOUCH_EVENT in display pixels: 0/5 down, 1/6 up, 2 move, 3 cancel."""
        with self._lock:
            if action in (0, 5):
                self.touchscreen.down(pointer_id, x, y)
            elif action in (1, 6):
                self.touchscreen.up(pointer_id, x, y)
            elif action == 2:
                self.touchscreen.move(pointer_id, x, y)
            elif action == 3:
                self.touchscreen.cancel()

    def _on_gesture(self, gesture: Gesture) -> None:
        if not self.screen_on:
            return
        if self.app.resumed:
            if isinstance(gesture, Tap):
                self.app.tap(gesture.x, gesture.y)
            else:
                self.app.swipe(gesture)
        elif isinstance(gesture, Tap):
            icon = launcher_tree(self.geometry).children[0]
            if icon.contains(gesture.x, gesture.y):
                self.app.start()

    def keyevent(self, keycode: int) -> None:
        """A key pressed and released (what `input keyevent` injects)."""
        with self._lock:
            if keycode in (KEYCODE_POWER, KEYCODE_SLEEP, KEYCODE_WAKEUP):
                self._power_key(keycode)
            elif not self.screen_on:
                return
            elif keycode == KEYCODE_HOME:
                self.app.background()
            elif self.app.resumed and not self.app.key(keycode) and keycode == KEYCODE_BACK:
                self.app.background()  # BACK on the feed's root activity: to the launcher

    def inject_key(self, action: int, keycode: int) -> None:
        """A scrcpy INJECT_KEYCODE: apps act on the release (action 1)."""
        if action == 1:
            self.keyevent(keycode)

    def _power_key(self, keycode: int) -> None:
        turn_on = keycode == KEYCODE_WAKEUP or (keycode == KEYCODE_POWER and not self.screen_on)
        if turn_on and not self.screen_on:
            self.screen_on = True
            if self._wake_resumes_app:
                self.app.start()
        elif not turn_on and self.screen_on:
            self._wake_resumes_app = self.app.resumed
            self.app.background()
            self.screen_on = False

    def inject_text(self, text: str) -> None:
        with self._lock:
            if self.screen_on and self.app.resumed:
                self.app.type_text(text)

    # output ----------------------------------------------------------------------------------
    def view_tree(self) -> View:
        with self._lock:
            return self.app.tree() if self.app.resumed else launcher_tree(self.geometry)

    def dump_ui(self) -> str:
        """The uiautomator XML of the focused window."""
        return dump_hierarchy(self.view_tree(), self.width, self.height)

    def screen_state(self, t: float | None = None) -> ScreenState:
        with self._lock:
            if not self.screen_on:
                return ScreenState("off")
            if not self.app.resumed:
                return ScreenState("launcher")
            video, position = self.app.media(t)
            sheet = self.app.sheet
            return ScreenState("app", self.app.tree(), video, position,
                               float(self.catalogue.video_duration[video]) if video is not None
                               else 1.0, self.geometry.sheet_top(sheet) if sheet else None)

    def render_frame(self, t: float | None = None) -> np.ndarray:
        """(H, W, 3) uint8 RGB of the screen at device monotonic time t (default: now)."""
        state = self.screen_state(t)
        with self._render_lock:
            return self._renderer.render(state)

    def media_position(self, t: float | None = None) -> tuple[int | None, float]:
        """(video playing, seconds since it appeared) or (None, 0) when nothing plays."""
        with self._lock:
            if not self.screen_on:
                return None, 0.0
            return self.app.media(t)

    def audio(self, start_s: float, frames: int) -> np.ndarray:
        """(frames, 2) int16 at 48 kHz of the video on screen, start_s seconds from its start;
        silence when no video plays."""
        video, _ = self.media_position()
        return silence(frames) if video is None else self.soundtrack.audio(video, start_s, frames)

    def audio_capture(self) -> AudioCapture:
        """A reader of consecutive chunks of the phone's output, for a scrcpy audio stream."""
        return AudioCapture(self.soundtrack, self.media_position)
