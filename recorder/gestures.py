"""A person's touches, read from `getevent -lt` (docs/architecture.md#getevent), turned into gestures.

On a real phone the kernel's input events are the only record of what the person's fingers
did: `input` and scrcpy inject above the kernel, but a human touches the panel itself. The
virtual phone reports every touch there too, so scripted tests exercise the same path.

Lines are parsed leniently: getevent's header (`add device`, `name:`, driver warnings) is
skipped, anything else that does not parse is counted as malformed and ignored, never fatal.
Labels (`-l`) and plain hex codes are both understood. Touches follow multitouch protocol B
(slots and tracking ids; values unchanged since the last frame are not repeated by the
kernel, so each slot keeps its last position). Type A panels (`SYN_MT_REPORT`) are not read.
A gesture is complete when the last finger lifts: a tap (it stayed within the touch slop), a
press (a tap held past the long-press time), a swipe, or a multi-finger gesture.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal

LONG_PRESS_S = 0.5  # Android's ViewConfiguration long-press timeout
SLOP_FRACTION = 0.025  # touch slop as a share of the screen width (8 dp on common phones)
X, Y = "ABS_MT_POSITION_X", "ABS_MT_POSITION_Y"
SLOT, TRACKING_ID = "ABS_MT_SLOT", "ABS_MT_TRACKING_ID"

_EVENT = re.compile(r"\[\s*(\d+)\.(\d{1,9})\]\s+(?:(\S+):\s+)?(\w+)\s+(\w+)\s+(\w+)\s*")
_HEADER_PREFIXES = ("add device", "remove device", "name:", "could not", "can't", "bus:",
                    "vendor", "product", "version", "location:", "id:", "events:",
                    "input props:")
_HEX_TYPES = {"0000": "EV_SYN", "0001": "EV_KEY", "0003": "EV_ABS"}
_HEX_CODES = {
    ("EV_SYN", "0000"): "SYN_REPORT", ("EV_SYN", "0002"): "SYN_MT_REPORT",
    ("EV_KEY", "014a"): "BTN_TOUCH", ("EV_ABS", "002f"): SLOT, ("EV_ABS", "0035"): X,
    ("EV_ABS", "0036"): Y, ("EV_ABS", "0039"): TRACKING_ID,
}
_KEY_VALUES = {"UP": 0, "DOWN": 1, "REPEAT": 2}
_RANGE = re.compile(r"(ABS_MT_POSITION_[XY])\s*:\s*value\s+-?\d+,\s*min\s+(-?\d+),"
                    r"\s*max\s+(-?\d+)")
_ADD_DEVICE = re.compile(r"add device \d+:\s*(\S+)")


@dataclass(frozen=True)
class InputEvent:
    time: float  # seconds, as getevent printed them (CLOCK_MONOTONIC)
    device: str | None  # /dev/input/eventN, when getevent named it
    type: str  # label: EV_SYN, EV_KEY, EV_ABS (or the hex code when unknown)
    code: str  # label: ABS_MT_POSITION_X... (or the hex code when unknown)
    value: int


def _value(token: str) -> int | None:
    """A value column: a key label, a tool-type label (unused: 0), or 8 hex digits in two's
    complement (tracking id -1 is `ffffffff`)."""
    if token in _KEY_VALUES:
        return _KEY_VALUES[token]
    if token.startswith("MT_TOOL_"):
        return 0
    if len(token) != 8:
        return None
    try:
        number = int(token, 16)
    except ValueError:
        return None
    return number - (1 << 32) if number >= 1 << 31 else number


def _is_header(text: str) -> bool:
    stripped = text.strip()
    return not stripped or stripped.startswith(_HEADER_PREFIXES)


@dataclass
class GeteventParser:
    """Parses one line at a time and counts what it saw, so a recorder can report how much
    of the stream it could not read."""

    events: int = 0
    headers: int = 0
    malformed: int = 0

    def feed(self, line: str) -> InputEvent | None:
        text = line.rstrip("\r\n")
        match = _EVENT.fullmatch(text.strip())
        if match is None:
            if not text.lstrip().startswith("[") and _is_header(text):
                self.headers += 1
            else:
                self.malformed += 1
            return None
        seconds, fraction, device, type_, code, raw = match.groups()
        value = _value(raw)
        if value is None:
            self.malformed += 1
            return None
        type_ = _HEX_TYPES.get(type_.lower(), type_)
        code = _HEX_CODES.get((type_, code.lower()), code)
        self.events += 1
        return InputEvent(float(f"{seconds}.{fraction}"), device, type_, code, value)


@dataclass(frozen=True)
class AxisRange:
    minimum: int
    maximum: int

    def to_pixels(self, raw: int, size: int) -> float:
        """docs/architecture.md#getevent: px = (raw - min) * size / (max - min + 1)."""
        return (raw - self.minimum) * size / (self.maximum - self.minimum + 1)


@dataclass(frozen=True)
class TouchPanel:
    """The touchscreen's node and its axis ranges (raw units are not necessarily pixels)."""

    device: str | None
    x: AxisRange
    y: AxisRange

    def to_screen(self, raw_x: int, raw_y: int, screen: tuple[int, int],
                  rotation: int = 0) -> tuple[float, float]:
        """Display pixels of a raw point; the panel is fixed to the natural orientation, so
        a rotated display (1..3, quarter turns) maps the natural point around."""
        width, height = screen if rotation % 2 == 0 else (screen[1], screen[0])
        x, y = self.x.to_pixels(raw_x, width), self.y.to_pixels(raw_y, height)
        return {0: (x, y), 1: (y, width - x), 2: (width - x, height - y),
                3: (height - y, x)}[rotation % 4]


def find_touch_panel(possible_events: str) -> TouchPanel | None:
    """The first device in `getevent -lp` output with both multitouch position axes."""
    device: str | None = None
    ranges: dict[str, AxisRange] = {}
    for line in possible_events.splitlines():
        added = _ADD_DEVICE.search(line)
        if added is not None:
            device, ranges = added.group(1), {}
            continue
        found = _RANGE.search(line)
        if found is not None:
            ranges[found.group(1)] = AxisRange(int(found.group(2)), int(found.group(3)))
            if X in ranges and Y in ranges:
                return TouchPanel(device, ranges[X], ranges[Y])
    return None


@dataclass(frozen=True)
class Gesture:
    kind: Literal["tap", "press", "swipe", "multi"]
    x1: float  # screen pixels where the first finger went down
    y1: float
    x2: float  # ... and where it lifted
    y2: float
    start: float  # device monotonic seconds of the first touch
    end: float  # ... and of the last lift

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def is_swipe_up(self, height: int, fraction: float) -> bool:
        """An upward fling long enough to move a feed to its next video."""
        dx, dy = self.x2 - self.x1, self.y2 - self.y1
        return self.kind == "swipe" and dy < -fraction * height and abs(dy) > abs(dx)


@dataclass
class _Touch:
    """The gesture in progress, followed through its first finger."""

    slot: int
    tracking_id: int
    start: float
    x1: float
    y1: float
    x2: float = 0.0
    y2: float = 0.0
    moved: float = 0.0  # farthest distance from the start, pixels
    ids: set[int] = field(default_factory=set)

    def move_to(self, x: float, y: float) -> None:
        self.x2, self.y2 = x, y
        self.moved = max(self.moved, math.hypot(x - self.x1, y - self.y1))

    def gesture(self, end: float, slop: float) -> Gesture:
        if len(self.ids) > 1:
            kind = "multi"
        elif self.moved > slop:
            kind = "swipe"
        else:
            kind = "press" if end - self.start >= LONG_PRESS_S else "tap"
        return Gesture(kind, self.x1, self.y1, self.x2, self.y2, self.start, end)


class GestureRecogniser:
    """Protocol B events in, one Gesture per completed touch out (at the SYN_REPORT of the
    last lift)."""

    def __init__(self, panel: TouchPanel, screen: tuple[int, int], rotation: int = 0,
                 slop_px: float | None = None) -> None:
        self.panel, self.screen, self.rotation = panel, screen, rotation
        self.slop = slop_px if slop_px is not None else SLOP_FRACTION * min(screen)
        self._slot = 0
        self._raw: dict[int, list[int]] = {}  # slot -> raw [x, y]; kept across contacts
        self._ids: dict[int, int] = {}  # slot -> tracking id of its contact, while down
        self._touch: _Touch | None = None

    def feed(self, event: InputEvent) -> Gesture | None:
        if self.panel.device is not None and event.device not in (None, self.panel.device):
            return None
        if event.type == "EV_ABS":
            self._axis(event.code, event.value)
        elif event.type == "EV_SYN" and event.code == "SYN_REPORT":
            return self._report(event.time)
        return None

    def _axis(self, code: str, value: int) -> None:
        if code == SLOT:
            self._slot = value
        elif code == TRACKING_ID:
            if value < 0:
                self._ids.pop(self._slot, None)
            else:
                self._ids[self._slot] = value
        elif code in (X, Y):
            self._raw.setdefault(self._slot, [0, 0])[code == Y] = value

    def _point(self, slot: int) -> tuple[float, float]:
        raw_x, raw_y = self._raw.get(slot, [0, 0])
        return self.panel.to_screen(raw_x, raw_y, self.screen, self.rotation)

    def _report(self, time: float) -> Gesture | None:
        if self._touch is None:
            if not self._ids:
                return None
            slot = min(self._ids)
            self._touch = _Touch(slot, self._ids[slot], time, *self._point(slot))
            self._touch.move_to(self._touch.x1, self._touch.y1)
        touch = self._touch
        touch.ids.update(self._ids.values())
        if self._ids.get(touch.slot) == touch.tracking_id:
            touch.move_to(*self._point(touch.slot))
        if self._ids:
            return None
        self._touch = None
        return touch.gesture(time, self.slop)
