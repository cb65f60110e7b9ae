"""The recorder's two background readers of the device: the person's touches (getevent) and
the screen's UI tree (uiautomator dumps). Each runs on its own thread, waits with timeouts,
and stops when closed; neither raises into the recorder, which polls `ended`/`failures`."""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable

import adbutils

from bubblescope.devices.errors import UiTreeError
from bubblescope.devices.ui_tree import parse_ui_dump
from bubblescope.recorder.gestures import Gesture, GestureRecogniser, GeteventParser, TouchPanel
from bubblescope.recorder.views import UiSnapshot, UiTimeline

log = logging.getLogger(__name__)
GETEVENT = "getevent -lt"
RECV_TIMEOUT_S = 0.5  # how often a silent stream checks whether it was closed


def open_event_stream(device: adbutils.AdbDevice, command: str = GETEVENT):
    """`command` in a PTY shell (getevent flushes nothing, so through a pipe its lines come in
    4 KiB blocks); adbd before Android 7 has no `shell,pty:`, so fall back to a plain shell."""
    connection = device.open_transport()
    try:
        connection.send_command(f"shell,pty:{command}")
        connection.check_okay()
        return connection
    except adbutils.AdbError:
        connection.close()
        return device.shell(command, stream=True)


class GestureStream:
    """`getevent -lt` read into gestures, their times on the device's monotonic clock."""

    def __init__(self, device: adbutils.AdbDevice, recogniser: GestureRecogniser,
                 to_monotonic: Callable[[float], float],
                 on_tap: Callable[[], None] = lambda: None) -> None:
        self.device, self.recogniser = device, recogniser
        self._to_monotonic, self._on_tap = to_monotonic, on_tap
        self.parser = GeteventParser()
        self.gestures: queue.Queue[Gesture] = queue.Queue()
        self.ended = threading.Event()  # the stream closed (or broke)
        self._closing = threading.Event()
        self._connection = None
        self._thread: threading.Thread | None = None

    @classmethod
    def for_panel(cls, device: adbutils.AdbDevice, panel: TouchPanel, screen: tuple[int, int],
                  rotation: int, to_monotonic: Callable[[float], float],
                  on_tap: Callable[[], None]) -> GestureStream:
        return cls(device, GestureRecogniser(panel, screen, rotation), to_monotonic, on_tap)

    def start(self) -> None:
        self._connection = open_event_stream(self.device)
        self._connection.conn.settimeout(RECV_TIMEOUT_S)
        self._thread = threading.Thread(target=self._read, daemon=True,
                                        name=f"recorder-getevent-{self.device.serial}")
        self._thread.start()

    def _read(self) -> None:
        pending = b""
        try:
            while not self._closing.is_set():
                try:
                    chunk = self._connection.conn.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    self._line(line.decode("utf-8", "replace"))
        except OSError as exc:
            if not self._closing.is_set():
                log.warning("getevent stream of %s broke: %s", self.device.serial, exc)
        finally:
            self.ended.set()

    def _line(self, line: str) -> None:
        event = self.parser.feed(line)
        gesture = self.recogniser.feed(event) if event is not None else None
        if gesture is None:
            return
        if gesture.kind == "tap":
            self._on_tap()
        self.gestures.put(dataclasses.replace(gesture, start=self._to_monotonic(gesture.start),
                                              end=self._to_monotonic(gesture.end)))

    def close(self) -> None:
        self._closing.set()
        if self._connection is not None:
            self._connection.close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)


class UiWatcher:
    """UI dumps every `interval_s`, and at once when poked (a tap may have opened a sheet
    whose contents the person's next tap must be judged by), stamped in device time."""

    def __init__(self, device: adbutils.AdbDevice, now: Callable[[], float],
                 timeline: UiTimeline, interval_s: float) -> None:
        self.device, self._now, self.timeline, self.interval_s = device, now, timeline, interval_s
        self.failures = 0
        self._poked = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, daemon=True,
                                        name=f"recorder-ui-{self.device.serial}")
        self._thread.start()

    def poke(self) -> None:
        self._poked.set()

    def _watch(self) -> None:
        while not self._closing.is_set():
            began = time.monotonic()
            self._poked.clear()
            snapshot = self.dump()
            if snapshot is not None:
                self.timeline.add(snapshot)
            self._poked.wait(max(0.0, self.interval_s - (time.monotonic() - began)))

    def dump(self) -> UiSnapshot | None:
        before = self._now()
        try:
            xml = self.device.dump_hierarchy()
            nodes = tuple(parse_ui_dump(xml))
        except (adbutils.AdbError, OSError, UiTreeError) as exc:
            self.failures += 1
            log.debug("UI dump of %s failed: %s", self.device.serial, exc)
            return None
        return UiSnapshot(before, self._now(), xml, nodes)

    def close(self) -> None:
        self._closing.set()
        self._poked.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
