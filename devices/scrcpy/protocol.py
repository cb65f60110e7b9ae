"""Byte layouts of the scrcpy server protocol, both directions, for 3.x and 4.x servers.

One module for both sides: the production client decodes what the server sends and encodes
control messages; the virtual device's emulated server does the reverse. Facts from the scrcpy
sources as summarised in docs/architecture.md#scrcpy-stream-headers and the sections after it. All integers are big-endian.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from bubblescope.devices.errors import ProtocolError

DEVICE_NAME_BYTES = 64
FRAME_HEADER_BYTES = 12
DISABLED = 0  # written instead of an audio codec id: stream disabled by the device
CONFIG_ERROR = 1  # written instead of a codec id: fatal configuration error

CODEC_IDS = {"h264": 0x68323634, "h265": 0x68323635, "av1": 0x00617631, "opus": 0x6F707573,
             "aac": 0x00616163, "flac": 0x666C6163, "raw": 0x00726177}
CODEC_NAMES = {value: name for name, value in CODEC_IDS.items()}


@dataclass(frozen=True)
class Dialect:
    """What differs between server generations on the wire (docs/architecture.md#scrcpy-versions)."""

    version: str
    session_packets: bool  # 4.x: video header is the codec id only, sizes come in session packets
    scroll_range: float  # 3.3.1+: [-16, 16]; earlier: [-1, 1]

    @classmethod
    def for_version(cls, version: str) -> Dialect:
        parts = tuple(int(p) for p in version.split(".")[:3] if p.isdigit())
        if not parts or parts[0] < 2:
            raise ProtocolError(f"unsupported scrcpy server version {version!r}; use 3.x or 4.x")
        modern_scroll = parts >= (3, 3, 1)
        return cls(version, session_packets=parts[0] >= 4,
                   scroll_range=16.0 if modern_scroll else 1.0)


# -- stream start ------------------------------------------------------------------------------

def encode_device_name(name: str) -> bytes:
    """64 bytes: UTF-8 truncated at a character boundary to at most 63 bytes, NUL-padded."""
    data = name.encode("utf-8")[:DEVICE_NAME_BYTES - 1].decode("utf-8", "ignore").encode("utf-8")
    return data.ljust(DEVICE_NAME_BYTES, b"\0")


def decode_device_name(data: bytes) -> str:
    if len(data) != DEVICE_NAME_BYTES:
        raise ProtocolError(f"device name needs {DEVICE_NAME_BYTES} bytes, got {len(data)}")
    return data.split(b"\0", 1)[0].decode("utf-8", "replace")


def encode_codec_id(codec: str | int) -> bytes:
    value = CODEC_IDS[codec] if isinstance(codec, str) else codec
    return struct.pack(">I", value)


def decode_codec_id(data: bytes) -> int:
    if len(data) != 4:
        raise ProtocolError(f"codec id needs 4 bytes, got {len(data)}")
    return struct.unpack(">I", data)[0]


def codec_name(value: int) -> str:
    if value == DISABLED:
        return "disabled"
    if value == CONFIG_ERROR:
        raise ProtocolError("the server reported a configuration error instead of a codec")
    if value not in CODEC_NAMES:
        raise ProtocolError(f"unknown codec id 0x{value:08x}")
    return CODEC_NAMES[value]


def encode_video_header(dialect: Dialect, codec: str, width: int, height: int) -> bytes:
    """3.x: codec id, width, height. 4.x: codec id, then a session packet."""
    if dialect.session_packets:
        return encode_codec_id(codec) + encode_session(width, height)
    return encode_codec_id(codec) + struct.pack(">II", width, height)


def encode_session(width: int, height: int, client_resized: bool = False) -> bytes:
    """4.x session packet: u32 flags (bit 31 set, bit 0 client-resized), u32 w, u32 h."""
    return struct.pack(">III", 0x80000000 | int(client_resized), width, height)


# -- media packets -----------------------------------------------------------------------------

@dataclass(frozen=True)
class PacketHeader:
    """What a 12-byte header announces: a media packet, or (4.x) a new capture session."""

    size: int  # payload bytes that follow (0 for a session packet)
    pts_us: int | None = None  # None for config packets
    config: bool = False
    key: bool = False
    session: tuple[int, int] | None = None  # (width, height) of a 4.x session packet


_CONFIG_3, _KEY_3, _PTS_3 = 1 << 63, 1 << 62, (1 << 62) - 1
_SESSION_4, _CONFIG_4, _KEY_4, _PTS_4 = 1 << 63, 1 << 62, 1 << 61, (1 << 61) - 1


def encode_packet_header(dialect: Dialect, size: int, pts_us: int | None, *,
                         config: bool = False, key: bool = False) -> bytes:
    if size <= 0:
        raise ProtocolError("a media packet carries at least one byte")
    config_bit, key_bit, pts_mask = ((_CONFIG_4, _KEY_4, _PTS_4) if dialect.session_packets
                                     else (_CONFIG_3, _KEY_3, _PTS_3))
    if config:
        word = config_bit  # a config packet carries only its flag, no PTS
    else:
        if pts_us is None or not 0 <= pts_us <= pts_mask:
            raise ProtocolError(f"PTS {pts_us} does not fit the header")
        word = pts_us | (key_bit if key else 0)
    return struct.pack(">QI", word, size)


def decode_packet_header(dialect: Dialect, data: bytes) -> PacketHeader:
    if len(data) != FRAME_HEADER_BYTES:
        raise ProtocolError(f"packet header needs 12 bytes, got {len(data)}")
    if dialect.session_packets and data[0] & 0x80:
        flags, width, height = struct.unpack(">III", data)
        return PacketHeader(size=0, session=(width, height))
    word, size = struct.unpack(">QI", data)
    if size == 0:
        raise ProtocolError("packet header announces an empty payload")
    config_bit, key_bit, pts_mask = ((_CONFIG_4, _KEY_4, _PTS_4) if dialect.session_packets
                                     else (_CONFIG_3, _KEY_3, _PTS_3))
    if word & config_bit:
        return PacketHeader(size=size, config=True)
    return PacketHeader(size=size, pts_us=word & pts_mask, key=bool(word & key_bit))
