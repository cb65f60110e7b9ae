"""The ADB transport's wire format: 24-byte message headers, constants, checksum, banner.

Everything here is pure (bytes in, bytes out) so it can be tested byte for byte against the
protocol tables (docs/architecture.md#adb-wire) without a socket. The header is six little-endian u32
words: command, arg0, arg1, data_length, data_check, magic (= command XOR 0xFFFFFFFF).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bubblescope.sim.android.errors import AdbProtocolError

A_SYNC = 0x434E5953
A_CNXN = 0x4E584E43
A_AUTH = 0x48545541
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257
A_STLS = 0x534C5453

KNOWN_COMMANDS = frozenset({A_SYNC, A_CNXN, A_AUTH, A_OPEN, A_OKAY, A_CLSE, A_WRTE, A_STLS})

A_VERSION_MIN = 0x01000000
A_VERSION_SKIP_CHECKSUM = 0x01000001
A_VERSION = 0x01000001

MAX_PAYLOAD = 1024 * 1024  # what we advertise and the most we accept in one message
MAX_PAYLOAD_V1 = 4096  # CNXN and AUTH must fit in this
HEADER_SIZE = 24

DEVICE_FEATURES = ("shell_v2", "cmd", "fixed_push_mkdir")
BANNER_KEYS = ("ro.product.name", "ro.product.model", "ro.product.device")

_HEADER = struct.Struct("<6I")


@dataclass(frozen=True)
class Header:
    """A decoded, magic-checked header; the payload follows it on the wire."""

    command: int
    arg0: int
    arg1: int
    data_length: int
    data_check: int
    magic: int


@dataclass(frozen=True)
class Message:
    command: int
    arg0: int
    arg1: int
    data: bytes = b""


def command_name(command: int) -> str:
    """"CNXN" for A_CNXN: the constant's little-endian bytes spell the name."""
    raw = struct.pack("<I", command & 0xFFFFFFFF)
    return raw.decode("ascii") if raw.isascii() and raw.decode("ascii").isprintable() else hex(command)


def checksum(data: bytes) -> int:
    """The historical "crc32": the unsigned byte-sum of the payload (mod 2**32)."""
    return sum(data) & 0xFFFFFFFF


def encode_header(command: int, arg0: int, arg1: int, data: bytes,
                  with_checksum: bool) -> bytes:
    """The 24-byte header for a message carrying `data`.

    data_check is only meaningful before version 0x01000001; afterwards adb sends 0, and
    skipping the sum saves a pass over every 1 MiB payload.
    """
    check = checksum(data) if with_checksum else 0
    return _HEADER.pack(command, arg0, arg1, len(data), check, command ^ 0xFFFFFFFF)


def encode_message(message: Message, with_checksum: bool = False) -> bytes:
    header = encode_header(message.command, message.arg0, message.arg1, message.data,
                           with_checksum)
    return header + message.data


def decode_header(raw: bytes, max_payload: int = MAX_PAYLOAD) -> Header:
    """Parse and validate a header; AdbProtocolError says why the connection must drop."""
    if len(raw) != HEADER_SIZE:
        raise AdbProtocolError(f"header is {len(raw)} bytes, not {HEADER_SIZE}")
    header = Header(*_HEADER.unpack(raw))
    if header.magic != header.command ^ 0xFFFFFFFF:
        raise AdbProtocolError(f"bad magic {header.magic:#010x} for command "
                               f"{header.command:#010x}")
    if header.command not in KNOWN_COMMANDS:
        raise AdbProtocolError(f"unknown command {header.command:#010x}")
    if header.data_length > max_payload:
        raise AdbProtocolError(f"{command_name(header.command)} payload of "
                               f"{header.data_length} bytes exceeds {max_payload}")
    return header


def decode_message(raw: bytes, max_payload: int = MAX_PAYLOAD) -> Message:
    """A whole message (header + payload) from one buffer; used by tests and tools."""
    header = decode_header(raw[:HEADER_SIZE], max_payload)
    data = raw[HEADER_SIZE:]
    if len(data) != header.data_length:
        raise AdbProtocolError(f"payload is {len(data)} bytes, header says "
                               f"{header.data_length}")
    return Message(header.command, header.arg0, header.arg1, bytes(data))


def _banner_value(value: str) -> str:
    """Banner values cannot hold ':' or ';' (the host splits on them)."""
    return value.replace(":", "_").replace(";", "_")


def device_banner(props: Mapping[str, str],
                  features: Iterable[str] = DEVICE_FEATURES) -> bytes:
    """The CNXN payload of a device: `device::k=v;k=v;k=v;features=a,b` (no trailing NUL)."""
    pairs = [f"{key}={_banner_value(props.get(key, ''))}" for key in BANNER_KEYS]
    pairs.append("features=" + ",".join(features))
    return ("device::" + ";".join(pairs)).encode("utf-8")


def parse_banner(payload: bytes) -> tuple[str, dict[str, str]]:
    """(connection type, key=value pairs) of a CNXN banner, the way the host reads it."""
    text = payload.rstrip(b"\0").decode("utf-8", errors="replace")
    parts = text.split(":", 2)
    kind = parts[0]
    pairs: dict[str, str] = {}
    if len(parts) == 3:
        for item in parts[2].split(";"):
            key, sep, value = item.partition("=")
            if sep:
                pairs[key] = value
    return kind, pairs


def connect_message(props: Mapping[str, str], max_payload: int = MAX_PAYLOAD) -> Message:
    """The device's reply to the host's CNXN (no AUTH: an adbd with auth disabled)."""
    return Message(A_CNXN, A_VERSION, max_payload, device_banner(props))
