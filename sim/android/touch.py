"""The touchscreen: one path for every touch, from `input tap/swipe` and scrcpy alike.

Touches arrive as down/move/up per pointer. The screen turns them into what the kernel of a
multitouch (protocol B) panel would report, so `getevent` shows them, and recognises the one
gesture the app needs at the moment the last finger lifts: a tap (it barely moved) or a swipe.
On a real phone `input` injects above the kernel and never reaches getevent; here every touch
does, so a driver that records a human's touches through getevent sees scripted ones too.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

EV_SYN, EV_KEY, EV_ABS = 0x00, 0x01, 0x03
SYN_REPORT = 0x00
BTN_TOUCH = 0x14A
ABS_MT_SLOT, ABS_MT_POSITION_X, ABS_MT_POSITION_Y, ABS_MT_TRACKING_ID = 0x2F, 0x35, 0x36, 0x39
MAX_SLOTS = 10

_TYPE_LABELS = {EV_SYN: "EV_SYN", EV_KEY: "EV_KEY", EV_ABS: "EV_ABS"}
_CODE_LABELS = {
    EV_SYN: {SYN_REPORT: "SYN_REPORT", 0x01: "SYN_CONFIG", 0x02: "SYN_MT_REPORT"},
    EV_KEY: {BTN_TOUCH: "BTN_TOUCH", 0x145: "BTN_TOOL_FINGER"},
    EV_ABS: {ABS_MT_SLOT: "ABS_MT_SLOT", 0x30: "ABS_MT_TOUCH_MAJOR",
             ABS_MT_POSITION_X: "ABS_MT_POSITION_X", ABS_MT_POSITION_Y: "ABS_MT_POSITION_Y",
             ABS_MT_TRACKING_ID: "ABS_MT_TRACKING_ID", 0x3A: "ABS_MT_PRESSURE"},
}
_KEY_VALUES = {0: "UP", 1: "DOWN", 2: "REPEAT"}


@dataclass(frozen=True)
class InputEvent:
    time: float  # device monotonic seconds
    type: int
    code: int
    value: int


@dataclass(frozen=True)
class Tap:
    x: float
    y: float


@dataclass(frozen=True)
class Swipe:
    x1: float
    y1: float
    x2: float
    y2: float
    seconds: float  # device time from down to up


Gesture = Tap | Swipe


def format_event(event: InputEvent, labels: bool, timestamps: bool, device: str | None) -> str:
    """One getevent line, as toolbox/getevent.c's print_event writes it (docs/architecture.md#getevent)."""
    head = ""
    if timestamps:
        seconds, micros = divmod(int(round(event.time * 1_000_000)), 1_000_000)
        head = f"[{seconds:8d}.{micros:06d}] "
    if device:
        head += f"{device}: "
    value = event.value & 0xFFFFFFFF
    if not labels:
        return f"{head}{event.type:04x} {event.code:04x} {value:08x}\n"
    type_label = _TYPE_LABELS.get(event.type)
    code_label = _CODE_LABELS.get(event.type, {}).get(event.code)
    value_label = _KEY_VALUES.get(event.value) if event.type == EV_KEY else None
    text = f"{type_label:<12.12}" if type_label else f"{event.type:04x}        "
    text += f" {code_label:<20.20}" if code_label else f" {event.code:04x}                "
    text += f" {value_label:<20.20}" if value_label else f" {value:08x}            "
    return f"{head}{text}\n"


class EventLog:
    """Fans kernel events out to every running `getevent`, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = []

    def subscribe(self) -> asyncio.Queue:
        """A queue of the events from now on; call from the subscriber's event loop."""
        queue: asyncio.Queue = asyncio.Queue()
        with self._lock:
            self._subscribers.append((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        with self._lock:
            self._subscribers = [(lp, q) for lp, q in self._subscribers if q is not queue]

    def emit(self, events: list[InputEvent]) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            for event in events:
                try:
                    loop.call_soon_threadsafe(queue.put_nowait, event)
                except RuntimeError:  # that getevent's loop has closed
                    self.unsubscribe(queue)


@dataclass
class _Pointer:
    slot: int
    x: int
    y: int


class TouchScreen:
    """A protocol-B panel with axes 0..width-1 / 0..height-1 and a tap/swipe recogniser."""

    def __init__(self, width: int, height: int, clock: Callable[[], float],
                 on_gesture: Callable[[Gesture], None], log: EventLog) -> None:
        self.width, self.height = width, height
        self._clock, self._on_gesture, self.log = clock, on_gesture, log
        self._pointers: dict[int, _Pointer] = {}
        self._slot = 0  # the kernel's current slot
        self._next_tracking_id = 0x2A
        self.slop = 16 * width / 720  # Android's 8 dp touch slop at 320 dpi
        self._start: tuple[float, float, float] | None = None  # x, y, time of the first down
        self._multi = False

    def axis_values(self) -> dict[int, int]:
        """Current ABS values, for `getevent -p`."""
        pointer = next((p for p in self._pointers.values() if p.slot == self._slot), None)
        return {ABS_MT_SLOT: self._slot, ABS_MT_POSITION_X: pointer.x if pointer else 0,
                ABS_MT_POSITION_Y: pointer.y if pointer else 0, ABS_MT_TRACKING_ID: 0}

    @property
    def touching(self) -> bool:
        return bool(self._pointers)

    def _raw(self, x: float, y: float) -> tuple[int, int]:
        return (min(max(round(x), 0), self.width - 1), min(max(round(y), 0), self.height - 1))

    def _select(self, slot: int, out: list[tuple[int, int, int]]) -> None:
        if slot != self._slot:
            out.append((EV_ABS, ABS_MT_SLOT, slot))
            self._slot = slot

    def _emit(self, events: list[tuple[int, int, int]]) -> None:
        now = self._clock()
        self.log.emit([InputEvent(now, *e) for e in (*events, (EV_SYN, SYN_REPORT, 0))])

    def down(self, pointer_id: int, x: float, y: float) -> None:
        if pointer_id in self._pointers:  # a second DOWN without UP: treat it as a move
            self.move(pointer_id, x, y)
            return
        used = {p.slot for p in self._pointers.values()}
        slot = next((s for s in range(MAX_SLOTS) if s not in used), None)
        if slot is None:
            return
        rx, ry = self._raw(x, y)
        events: list[tuple[int, int, int]] = []
        self._select(slot, events)
        events.append((EV_ABS, ABS_MT_TRACKING_ID, self._next_tracking_id))
        self._next_tracking_id = (self._next_tracking_id + 1) & 0xFFFF
        if not self._pointers:
            events.append((EV_KEY, BTN_TOUCH, 1))
            self._start, self._multi = (x, y, self._clock()), False
        else:
            self._multi = True
        events += [(EV_ABS, ABS_MT_POSITION_X, rx), (EV_ABS, ABS_MT_POSITION_Y, ry)]
        self._pointers[pointer_id] = _Pointer(slot, rx, ry)
        self._emit(events)

    def move(self, pointer_id: int, x: float, y: float) -> None:
        pointer = self._pointers.get(pointer_id)
        if pointer is None:
            return
        rx, ry = self._raw(x, y)
        events: list[tuple[int, int, int]] = []
        if rx != pointer.x:
            events.append((EV_ABS, ABS_MT_POSITION_X, rx))
        if ry != pointer.y:
            events.append((EV_ABS, ABS_MT_POSITION_Y, ry))
        if events:  # the kernel drops unchanged values, and a frame with none
            selected: list[tuple[int, int, int]] = []
            self._select(pointer.slot, selected)
            pointer.x, pointer.y = rx, ry
            self._emit(selected + events)

    def up(self, pointer_id: int, x: float | None = None, y: float | None = None) -> None:
        if x is not None and y is not None:
            self.move(pointer_id, x, y)
        pointer = self._pointers.pop(pointer_id, None)
        if pointer is None:
            return
        events: list[tuple[int, int, int]] = []
        self._select(pointer.slot, events)
        events.append((EV_ABS, ABS_MT_TRACKING_ID, -1))
        if not self._pointers:
            events.append((EV_KEY, BTN_TOUCH, 0))
        self._emit(events)
        if not self._pointers:
            self._recognise(pointer)

    def cancel(self) -> None:
        """Lift every finger without a gesture (MotionEvent ACTION_CANCEL)."""
        self._multi = True
        for pointer_id in list(self._pointers):
            self.up(pointer_id)

    def _recognise(self, last: _Pointer) -> None:
        start, multi = self._start, self._multi
        self._start = None
        if start is None or multi:
            return
        x1, y1, t1 = start
        if math.hypot(last.x - x1, last.y - y1) <= self.slop:
            self._on_gesture(Tap(x1, y1))
        else:
            self._on_gesture(Swipe(x1, y1, last.x, last.y, self._clock() - t1))


def _bit(type_: int, code: int, down: bool, labels: bool) -> str:
    mark = "*" if down else " "
    label = _CODE_LABELS.get(type_, {}).get(code)
    if not labels:
        return f" {code:04x}{mark}"
    if label is None:
        return f" {code:04x}{mark}                "
    return f" {label[:20]}{mark}{' ' * (20 - len(label[:20]))}"


def possible_events(screen: TouchScreen, labels: bool) -> str:
    """The `events:` and `input props:` blocks of `getevent -p` for the panel (getevent.c's
    print_possible_events: ABS codes one per line with their ranges, KEY codes per row)."""
    ranges = {ABS_MT_SLOT: MAX_SLOTS - 1, ABS_MT_POSITION_X: screen.width - 1,
              ABS_MT_POSITION_Y: screen.height - 1, ABS_MT_TRACKING_ID: 65535}
    values = screen.axis_values()
    text = "  events:\n"
    text += f"    KEY ({EV_KEY:04x}):" + _bit(EV_KEY, BTN_TOUCH, screen.touching, labels) + "\n"
    for i, (code, maximum) in enumerate(sorted(ranges.items())):
        text += f"    ABS ({EV_ABS:04x}):" if i == 0 else "\n               "
        text += _bit(EV_ABS, code, False, labels)
        text += (f" : value {values[code]}, min 0, max {maximum}, fuzz 0, flat 0,"
                 " resolution 0")
    return text + "\n  input props:\n    INPUT_PROP_DIRECT\n"
