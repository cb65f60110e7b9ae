"""scrcpy control messages (client -> server) and device messages (server -> client).

Each message starts with a type byte; integers are big-endian; there is no length prefix at
message level, so a reader must know every type's layout (docs/architecture.md#scrcpy-control-messages). Touch positions
are in video-frame pixels and carry the current video size, which the server checks.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from bubblescope.devices.errors import ProtocolError
from bubblescope.devices.scrcpy.protocol import Dialect

MAX_TEXT_BYTES = 300  # the stock client truncates injected text to this
POINTER_MOUSE = 0xFFFFFFFFFFFFFFFF
POINTER_FINGER = 0xFFFFFFFFFFFFFFFE
POINTER_VIRTUAL_FINGER = 0xFFFFFFFFFFFFFFFD


class ControlType(IntEnum):
    INJECT_KEYCODE = 0
    INJECT_TEXT = 1
    INJECT_TOUCH_EVENT = 2
    INJECT_SCROLL_EVENT = 3
    BACK_OR_SCREEN_ON = 4
    EXPAND_NOTIFICATION_PANEL = 5
    EXPAND_SETTINGS_PANEL = 6
    COLLAPSE_PANELS = 7
    GET_CLIPBOARD = 8
    SET_CLIPBOARD = 9
    SET_DISPLAY_POWER = 10
    ROTATE_DEVICE = 11
    START_APP = 16
    RESET_VIDEO = 17


class MotionAction(IntEnum):
    DOWN = 0
    UP = 1
    MOVE = 2


class KeyAction(IntEnum):
    DOWN = 0
    UP = 1


@dataclass(frozen=True)
class Position:
    x: int
    y: int
    screen_width: int  # the current video size, which the server checks
    screen_height: int


@dataclass(frozen=True)
class Keycode:
    action: int
    keycode: int
    repeat: int = 0
    metastate: int = 0


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Touch:
    action: int
    pointer_id: int
    position: Position
    pressure: float
    action_button: int = 0
    buttons: int = 0


@dataclass(frozen=True)
class Scroll:
    position: Position
    hscroll: float
    vscroll: float
    buttons: int = 0


@dataclass(frozen=True)
class BackOrScreenOn:
    action: int


@dataclass(frozen=True)
class GetClipboard:
    copy_key: int = 0


@dataclass(frozen=True)
class SetClipboard:
    sequence: int
    text: str
    paste: bool = False


@dataclass(frozen=True)
class SetDisplayPower:
    on: bool


@dataclass(frozen=True)
class StartApp:
    name: str


@dataclass(frozen=True)
class Simple:
    """A message that is only its type byte (panels, rotate, reset video)."""

    type: ControlType


ControlMessage = (Keycode | Text | Touch | Scroll | BackOrScreenOn | SetClipboard | GetClipboard
                  | SetDisplayPower | StartApp | Simple)
_SIMPLE = {ControlType.EXPAND_NOTIFICATION_PANEL, ControlType.EXPAND_SETTINGS_PANEL,
           ControlType.COLLAPSE_PANELS, ControlType.ROTATE_DEVICE, ControlType.RESET_VIDEO}


# -- fixed-point fields ------------------------------------------------------------------------

def encode_pressure(pressure: float) -> int:
    """u16 fixed point; 1.0 is 0xFFFF."""
    if pressure >= 1.0:
        return 0xFFFF
    return max(0, int(pressure * 65536))


def decode_pressure(value: int) -> float:
    return 1.0 if value == 0xFFFF else value / 65536


def encode_scroll(value: float, dialect: Dialect) -> int:
    """i16 fixed point over [-range, range]; +range is 0x7FFF."""
    scaled = max(-1.0, min(1.0, value / dialect.scroll_range))
    return 0x7FFF if scaled >= 1.0 else int(scaled * 32768)


def decode_scroll(value: int, dialect: Dialect) -> float:
    return (1.0 if value == 0x7FFF else value / 32768) * dialect.scroll_range


def _position(p: Position) -> bytes:
    return struct.pack(">iiHH", p.x, p.y, p.screen_width, p.screen_height)


def _utf8(text: str, limit: int | None = None) -> bytes:
    data = text.encode("utf-8")
    if limit is not None and len(data) > limit:
        data = data[:limit].decode("utf-8", "ignore").encode("utf-8")
    return data


# -- encoding (client side) --------------------------------------------------------------------

def encode(message: ControlMessage, dialect: Dialect) -> bytes:  # noqa: C901 - one case each
    match message:
        case Keycode(action, keycode, repeat, metastate):
            return struct.pack(">BBIII", ControlType.INJECT_KEYCODE, action, keycode, repeat,
                               metastate)
        case Text(text):
            data = _utf8(text, MAX_TEXT_BYTES)
            return struct.pack(">BI", ControlType.INJECT_TEXT, len(data)) + data
        case Touch(action, pointer_id, position, pressure, action_button, buttons):
            return (struct.pack(">BBQ", ControlType.INJECT_TOUCH_EVENT, action, pointer_id)
                    + _position(position)
                    + struct.pack(">HII", encode_pressure(pressure), action_button, buttons))
        case Scroll(position, hscroll, vscroll, buttons):
            return (struct.pack(">B", ControlType.INJECT_SCROLL_EVENT) + _position(position)
                    + struct.pack(">hhI", encode_scroll(hscroll, dialect),
                                  encode_scroll(vscroll, dialect), buttons))
        case BackOrScreenOn(action):
            return struct.pack(">BB", ControlType.BACK_OR_SCREEN_ON, action)
        case GetClipboard(copy_key):
            return struct.pack(">BB", ControlType.GET_CLIPBOARD, copy_key)
        case SetClipboard(sequence, text, paste):
            data = _utf8(text)
            return struct.pack(">BQBI", ControlType.SET_CLIPBOARD, sequence, paste,
                               len(data)) + data
        case SetDisplayPower(on):
            return struct.pack(">BB", ControlType.SET_DISPLAY_POWER, on)
        case StartApp(name):
            data = _utf8(name, 255)
            return struct.pack(">BB", ControlType.START_APP, len(data)) + data
        case Simple(kind):
            return struct.pack(">B", kind)
    raise ProtocolError(f"cannot encode {message!r}")


# -- decoding (server side) --------------------------------------------------------------------

class ControlReader:
    """Splits a byte stream into control messages; bytes may arrive in any chunks."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[ControlMessage]:
        """Messages completed by `data`; raises ProtocolError on an unknown type."""
        self._buffer += data
        messages = []
        while self._buffer:
            parsed = self._parse_one()
            if parsed is None:
                break
            message, used = parsed
            del self._buffer[:used]
            messages.append(message)
        return messages

    def _need(self, n: int) -> bytes | None:
        return bytes(self._buffer[:n]) if len(self._buffer) >= n else None

    def _parse_one(self) -> tuple[ControlMessage, int] | None:  # noqa: C901 - one case each
        kind = self._buffer[0]
        if kind in _SIMPLE:
            return Simple(ControlType(kind)), 1
        if kind == ControlType.INJECT_KEYCODE:
            raw = self._need(14)
            return None if raw is None else (Keycode(*struct.unpack(">BIII", raw[1:])), 14)
        if kind == ControlType.INJECT_TOUCH_EVENT:
            return self._touch()
        if kind == ControlType.INJECT_SCROLL_EVENT:
            return self._scroll()
        if kind in (ControlType.INJECT_TEXT, ControlType.START_APP, ControlType.SET_CLIPBOARD):
            return self._with_text(kind)
        if kind in (ControlType.BACK_OR_SCREEN_ON, ControlType.GET_CLIPBOARD,
                    ControlType.SET_DISPLAY_POWER):
            raw = self._need(2)
            if raw is None:
                return None
            cls = {ControlType.BACK_OR_SCREEN_ON: BackOrScreenOn,
                   ControlType.GET_CLIPBOARD: GetClipboard,
                   ControlType.SET_DISPLAY_POWER: lambda v: SetDisplayPower(bool(v))}[kind]
            return cls(raw[1]), 2
        raise ProtocolError(f"unknown control message type {kind}")

    def _touch(self) -> tuple[ControlMessage, int] | None:
        raw = self._need(32)
        if raw is None:
            return None
        action, pointer = struct.unpack(">BQ", raw[1:10])
        x, y, w, h = struct.unpack(">iiHH", raw[10:22])
        pressure, action_button, buttons = struct.unpack(">HII", raw[22:32])
        return Touch(action, pointer, Position(x, y, w, h), decode_pressure(pressure),
                     action_button, buttons), 32

    def _scroll(self) -> tuple[ControlMessage, int] | None:
        raw = self._need(21)
        if raw is None:
            return None
        x, y, w, h = struct.unpack(">iiHH", raw[1:13])
        hs, vs, buttons = struct.unpack(">hhI", raw[13:21])
        return Scroll(Position(x, y, w, h), decode_scroll(hs, self.dialect),
                      decode_scroll(vs, self.dialect), buttons), 21

    def _with_text(self, kind: int) -> tuple[ControlMessage, int] | None:
        if kind == ControlType.START_APP:
            head = self._need(2)
            if head is None:
                return None
            size, start = head[1], 2
        elif kind == ControlType.INJECT_TEXT:
            head = self._need(5)
            if head is None:
                return None
            size, start = struct.unpack(">I", head[1:5])[0], 5
        else:
            head = self._need(14)
            if head is None:
                return None
            size, start = struct.unpack(">I", head[10:14])[0], 14
        if size > 256 * 1024:
            raise ProtocolError(f"control message text of {size} bytes is over 256 KiB")
        raw = self._need(start + size)
        if raw is None:
            return None
        text = raw[start:].decode("utf-8", "replace")
        if kind == ControlType.START_APP:
            return StartApp(text), start + size
        if kind == ControlType.INJECT_TEXT:
            return Text(text), start + size
        sequence, paste = struct.unpack(">QB", head[1:10])
        return SetClipboard(sequence, text, bool(paste)), start + size


# -- device messages (server -> client) --------------------------------------------------------

class DeviceMessageType(IntEnum):
    CLIPBOARD = 0
    ACK_CLIPBOARD = 1


def encode_clipboard(text: str) -> bytes:
    data = _utf8(text)
    return struct.pack(">BI", DeviceMessageType.CLIPBOARD, len(data)) + data


def encode_ack_clipboard(sequence: int) -> bytes:
    return struct.pack(">BQ", DeviceMessageType.ACK_CLIPBOARD, sequence)
