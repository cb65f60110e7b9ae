"""The ADB wire format byte for byte (docs/architecture.md#adb-wire): header layout, magic, checksum,
the device banner, and round trips over arbitrary messages."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bubblescope.sim.android.adb_wire import (
    A_AUTH,
    A_CLSE,
    A_CNXN,
    A_OKAY,
    A_OPEN,
    A_STLS,
    A_SYNC,
    A_VERSION,
    A_WRTE,
    HEADER_SIZE,
    KNOWN_COMMANDS,
    MAX_PAYLOAD,
    Message,
    checksum,
    command_name,
    connect_message,
    decode_header,
    decode_message,
    device_banner,
    encode_message,
    parse_banner,
)
from bubblescope.sim.android.errors import AdbProtocolError

PROPS = {"ro.product.name": "sunfish", "ro.product.model": "Pixel 4a",
         "ro.product.device": "sunfish", "ro.build.version.sdk": "34"}

# CNXN(0x01000001, 0x00100000, "host::\0") with its byte-sum, derived by hand from the table:
# "CNXN" | 01 00 00 01 | 00 00 10 00 | len 7 | sum 104+111+115+116+58+58+0 = 562 = 0x232 |
# magic 0x4e584e43 ^ 0xffffffff = 0xb1a7b1bc
GOLDEN_CNXN = bytes.fromhex(
    "434e584e" "01000001" "00001000" "07000000" "32020000" "bcb1a7b1") + b"host::\0"


def test_constants_spell_their_names() -> None:
    for value, name in [(A_SYNC, b"SYNC"), (A_CNXN, b"CNXN"), (A_AUTH, b"AUTH"),
                        (A_OPEN, b"OPEN"), (A_OKAY, b"OKAY"), (A_CLSE, b"CLSE"),
                        (A_WRTE, b"WRTE"), (A_STLS, b"STLS")]:
        assert struct.pack("<I", value) == name
        assert command_name(value) == name.decode()
    assert A_VERSION == 0x01000001
    assert MAX_PAYLOAD == 1048576
    assert HEADER_SIZE == 24


def test_golden_cnxn_with_checksum() -> None:
    message = Message(A_CNXN, 0x01000001, 0x00100000, b"host::\0")
    assert encode_message(message, with_checksum=True) == GOLDEN_CNXN
    assert decode_message(GOLDEN_CNXN) == message


def test_checksum_is_zero_once_skipped() -> None:
    raw = encode_message(Message(A_WRTE, 1, 2, b"abc"), with_checksum=False)
    assert raw[:24] == struct.pack("<6I", A_WRTE, 1, 2, 3, 0, A_WRTE ^ 0xFFFFFFFF)
    assert raw[24:] == b"abc"


def test_device_banner_exact() -> None:
    assert device_banner(PROPS) == (
        b"device::ro.product.name=sunfish;ro.product.model=Pixel 4a;"
        b"ro.product.device=sunfish;features=shell_v2,cmd,fixed_push_mkdir")


def test_banner_values_cannot_break_the_format() -> None:
    banner = device_banner({**PROPS, "ro.product.model": "a:b;c"})
    kind, pairs = parse_banner(banner)
    assert kind == "device"
    assert pairs["ro.product.model"] == "a_b_c"
    assert pairs["features"] == "shell_v2,cmd,fixed_push_mkdir"


def test_connect_message_is_a_no_auth_device_reply() -> None:
    message = connect_message(PROPS)
    assert (message.command, message.arg0, message.arg1) == (A_CNXN, 0x01000001, MAX_PAYLOAD)
    assert not message.data.endswith(b"\0")
    assert len(message.data) <= 4096  # CNXN must fit MAX_PAYLOAD_V1


def test_bad_magic_is_rejected() -> None:
    raw = bytearray(encode_message(Message(A_OKAY, 1, 2)))
    raw[20] ^= 0x01
    with pytest.raises(AdbProtocolError, match="magic"):
        decode_header(bytes(raw[:24]))


def test_oversize_payload_is_rejected() -> None:
    header = struct.pack("<6I", A_WRTE, 1, 2, MAX_PAYLOAD + 1, 0, A_WRTE ^ 0xFFFFFFFF)
    with pytest.raises(AdbProtocolError, match="exceeds"):
        decode_header(header)


def test_unknown_command_is_rejected() -> None:
    header = struct.pack("<6I", 0x41414141, 0, 0, 0, 0, 0x41414141 ^ 0xFFFFFFFF)
    with pytest.raises(AdbProtocolError, match="unknown command"):
        decode_header(header)


def test_short_header_is_rejected() -> None:
    with pytest.raises(AdbProtocolError):
        decode_header(b"CNXN")


u32 = st.integers(min_value=0, max_value=0xFFFFFFFF)


@given(command=st.sampled_from(sorted(KNOWN_COMMANDS)), arg0=u32, arg1=u32,
       data=st.binary(max_size=4096), with_checksum=st.booleans())
def test_round_trip(command: int, arg0: int, arg1: int, data: bytes,
                    with_checksum: bool) -> None:
    message = Message(command, arg0, arg1, data)
    raw = encode_message(message, with_checksum)
    header = decode_header(raw[:24])
    assert header.data_length == len(data)
    assert header.data_check == (checksum(data) if with_checksum else 0)
    assert header.magic == command ^ 0xFFFFFFFF
    assert decode_message(raw) == message


@given(data=st.binary(max_size=2048))
def test_checksum_is_the_byte_sum(data: bytes) -> None:
    assert checksum(data) == sum(data) % 2**32


@given(raw=st.binary(min_size=24, max_size=24))
def test_arbitrary_headers_decode_or_raise(raw: bytes) -> None:
    try:
        header = decode_header(raw)
    except AdbProtocolError:
        return
    assert header.magic == header.command ^ 0xFFFFFFFF
    assert header.command in KNOWN_COMMANDS
    assert header.data_length <= MAX_PAYLOAD
