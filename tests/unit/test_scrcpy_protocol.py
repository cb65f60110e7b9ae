"""scrcpy byte layouts against the protocol documentation (docs/architecture.md#scrcpy-stream-headers, docs/architecture.md#scrcpy-media-packets, docs/architecture.md#scrcpy-control-messages, docs/architecture.md#scrcpy-versions)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bubblescope.devices.errors import ProtocolError
from bubblescope.devices.scrcpy import control
from bubblescope.devices.scrcpy.protocol import (
    CODEC_IDS,
    Dialect,
    codec_name,
    decode_device_name,
    decode_packet_header,
    encode_codec_id,
    encode_device_name,
    encode_packet_header,
    encode_video_header,
)

V3 = Dialect.for_version("3.3.4")
V4 = Dialect.for_version("4.1")
V330 = Dialect.for_version("3.3.0")


def test_codec_ids_are_ascii_left_padded_with_zero() -> None:
    assert encode_codec_id("h264").hex() == "68323634"
    assert encode_codec_id("av1").hex() == "00617631"
    assert encode_codec_id("opus").hex() == "6f707573"
    assert encode_codec_id("aac").hex() == "00616163"
    assert encode_codec_id("raw").hex() == "00726177"
    assert codec_name(0) == "disabled"
    with pytest.raises(ProtocolError, match="configuration error"):
        codec_name(1)
    assert {codec_name(v) for v in CODEC_IDS.values()} == set(CODEC_IDS)


def test_device_name_is_64_bytes_truncated_at_a_character_boundary() -> None:
    assert encode_device_name("Pixel 7") == b"Pixel 7" + b"\0" * 57
    long = "设" * 30  # 3 bytes each: 21 fit in 63 bytes
    encoded = encode_device_name(long)
    assert len(encoded) == 64 and encoded[63] == 0
    assert decode_device_name(encoded) == "设" * 21


def test_video_header_differs_between_3x_and_4x() -> None:
    assert encode_video_header(V3, "h264", 720, 1280).hex() == "68323634" "000002d0" "00000500"
    assert encode_video_header(V4, "h264", 720, 1280).hex() == (
        "68323634" "80000000" "000002d0" "00000500")


def test_config_packet_header_is_only_the_config_bit() -> None:
    header = encode_packet_header(V3, 23, None, config=True)
    assert header.hex() == "8000000000000000" "00000017"
    decoded = decode_packet_header(V3, header)
    assert decoded.config and decoded.pts_us is None and decoded.size == 23


def test_key_frame_flags_by_dialect() -> None:
    assert encode_packet_header(V3, 5, 1000, key=True).hex() == "40000000000003e8" "00000005"
    assert encode_packet_header(V4, 5, 1000, key=True).hex() == "20000000000003e8" "00000005"
    assert encode_packet_header(V4, 5, 0, config=True)[:8].hex() == "4000000000000000"


def test_4x_session_packet_is_told_apart_from_media() -> None:
    session = bytes.fromhex("80000001" "000002d0" "00000500")
    decoded = decode_packet_header(V4, session)
    assert decoded.session == (720, 1280) and decoded.size == 0


@given(pts=st.integers(0, (1 << 61) - 1), size=st.integers(1, 1 << 31), key=st.booleans())
def test_packet_headers_round_trip(pts: int, size: int, key: bool) -> None:
    for dialect in (V3, V4):
        decoded = decode_packet_header(dialect, encode_packet_header(dialect, size, pts, key=key))
        assert (decoded.pts_us, decoded.size, decoded.key, decoded.config) == (pts, size, key,
                                                                               False)


def test_bad_headers_are_refused() -> None:
    with pytest.raises(ProtocolError):
        decode_packet_header(V3, b"\0" * 11)
    with pytest.raises(ProtocolError):
        decode_packet_header(V3, b"\0" * 12)  # empty payload
    with pytest.raises(ProtocolError):
        encode_packet_header(V3, 0, 1)
    with pytest.raises(ProtocolError):
        Dialect.for_version("1.17")


def test_touch_event_matches_the_upstream_unit_test() -> None:
    message = control.Touch(control.MotionAction.DOWN, 0x1234567887654321,
                            control.Position(100, 200, 1080, 1920), 1.0,
                            action_button=1, buttons=1)
    assert control.encode(message, V3).hex(" ") == (
        "02 00 12 34 56 78 87 65 43 21 00 00 00 64 00 00 00 c8 04 38 07 80 ff ff "
        "00 00 00 01 00 00 00 01")


def test_message_sizes() -> None:
    position = control.Position(1, 2, 720, 1280)
    sizes = {control.Keycode(0, 4): 14, control.Text("abc"): 8,
             control.Touch(2, control.POINTER_FINGER, position, 0.5): 32,
             control.Scroll(position, 0, 1): 21, control.BackOrScreenOn(0): 2,
             control.GetClipboard(1): 2, control.SetClipboard(7, "hi", True): 16,
             control.SetDisplayPower(True): 2, control.StartApp("org.x"): 7,
             control.Simple(control.ControlType.RESET_VIDEO): 1}
    for message, size in sizes.items():
        assert len(control.encode(message, V3)) == size, message


def test_pressure_and_scroll_fixed_point() -> None:
    assert control.encode_pressure(1.0) == 0xFFFF and control.decode_pressure(0xFFFF) == 1.0
    assert control.encode_pressure(0.5) == 0x8000
    assert control.encode_scroll(16.0, V3) == 0x7FFF  # 3.3.1+: range [-16, 16]
    assert control.encode_scroll(8.0, V3) == 0x4000
    assert control.encode_scroll(1.0, V330) == 0x7FFF  # before 3.3.1: range [-1, 1]
    assert control.decode_scroll(-32768, V3) == -16.0


def test_injected_text_is_truncated_to_300_bytes_at_a_character_boundary() -> None:
    encoded = control.encode(control.Text("é" * 200), V3)
    assert int.from_bytes(encoded[1:5], "big") == 300


messages = st.one_of(
    st.builds(control.Keycode, st.integers(0, 1), st.integers(0, 300), st.integers(0, 5),
              st.integers(0, 0xFFFF)),
    st.builds(control.Text, st.text(max_size=50)),
    st.builds(control.Touch, st.integers(0, 2), st.integers(0, 2**64 - 1),
              st.builds(control.Position, st.integers(-5000, 5000), st.integers(-5000, 5000),
                        st.integers(1, 4000), st.integers(1, 4000)),
              st.sampled_from([0.0, 0.5, 1.0])),
    st.builds(control.SetClipboard, st.integers(0, 2**64 - 1), st.text(max_size=40),
              st.booleans()),
    st.builds(control.StartApp, st.text(alphabet="abc.", max_size=30)),
    st.builds(control.BackOrScreenOn, st.integers(0, 1)),
    st.just(control.Simple(control.ControlType.ROTATE_DEVICE)),
)


@given(batch=st.lists(messages, max_size=6), cut=st.integers(0, 200))
def test_reader_splits_any_chunking_back_into_the_messages(batch, cut) -> None:
    stream = b"".join(control.encode(m, V3) for m in batch)
    reader = control.ControlReader(V3)
    got = reader.feed(stream[:cut]) + reader.feed(stream[cut:])
    assert got == batch


def test_reader_refuses_unknown_types() -> None:
    with pytest.raises(ProtocolError, match="unknown control message type 99"):
        control.ControlReader(V3).feed(bytes([99]))


def test_device_messages() -> None:
    assert control.encode_clipboard("hi").hex() == "00" "00000002" "6869"
    assert control.encode_ack_clipboard(5).hex() == "01" "0000000000000005"


def test_server_command_is_what_the_stock_client_sends() -> None:
    from bubblescope.devices.scrcpy.options import ServerOptions

    options = ServerOptions(version="3.3.4", scid=0x1A2B3C4D, audio=False, max_size=1920,
                            tunnel_forward=True)
    assert options.command() == (
        "CLASSPATH=/data/local/tmp/scrcpy-server.jar app_process / com.genymobile.scrcpy.Server "
        "3.3.4 scid=1a2b3c4d log_level=info audio=false max_size=1920 tunnel_forward=true")
    assert options.socket_name == "scrcpy_1a2b3c4d"
    assert options.streams == ("video", "control")


def test_server_parses_its_arguments_and_refuses_another_version() -> None:
    from bubblescope.devices.errors import VersionMismatch
    from bubblescope.devices.scrcpy.options import parse_server_args

    options, unknown = parse_server_args(
        ["3.3.4", "scid=0000002a", "audio=FALSE", "max_fps=30", "raw_stream=true", "flex=1"],
        "3.3.4")
    assert options.scid == 42 and not options.audio and options.max_fps == 30.0
    assert not options.send_frame_meta and not options.send_device_meta
    assert unknown == ["flex"]
    with pytest.raises(VersionMismatch, match=r"The server version \(3.3.4\) does not match "
                                              r"the client \(4.1\)"):
        parse_server_args(["4.1", "scid=1"], "3.3.4")
    with pytest.raises(ProtocolError, match="Invalid key=value"):
        parse_server_args(["3.3.4", "audio"], "3.3.4")
    with pytest.raises(ProtocolError, match="at least one"):
        parse_server_args(["3.3.4", "video=false", "audio=false", "control=false"], "3.3.4")
