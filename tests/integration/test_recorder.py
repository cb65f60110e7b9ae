"""`bubblescope record`: the getevent reader and gesture recogniser on hand-written lines, the
media writer and the clock on synthetic streams, and a whole recording of a scripted person
(a synthetic human deciding watch times and likes) browsing a virtual phone through the real
adb server, checked against what the phone's app saw."""

from __future__ import annotations

import shutil
import threading
import time
import wave
from datetime import UTC
from pathlib import Path

import av
import numpy as np
import pytest

from bubblescope.cluster.cli import main as cli_main
from bubblescope.devices.app_drivers import app_driver
from bubblescope.devices.scrcpy.protocol import PacketHeader
from bubblescope.devices.ui_tree import parse_ui_dump
from bubblescope.personas.dataset import read_dataset
from bubblescope.recorder.device_uptime import StreamClock
from bubblescope.recorder.gestures import (
    AxisRange,
    GestureRecogniser,
    GeteventParser,
    TouchPanel,
    find_touch_panel,
)
from bubblescope.recorder.media_writer import SAMPLE_RATE, MediaWriter
from bubblescope.recorder.recorder import Recorder, RecorderConfig
from bubblescope.sim.android.farm import write_server_jar
from bubblescope.sim.android.media import VideoEncoder
from bubblescope.sim.android.phone_device import PhoneSpec, run_in_thread
from bubblescope.sim.human import SyntheticHuman, human_spec
from bubblescope.taxonomy import load_taxonomy
from tests.support.adb_server import private_adb_server
from tests.support.wait import wait_for

PANEL = TouchPanel("/dev/input/event2", AxisRange(0, 4095), AxisRange(0, 4095))
SCREEN = (1080, 2400)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line]


def recognise(text: str, panel: TouchPanel = PANEL) -> tuple[list, GeteventParser]:
    parser, recogniser, gestures = GeteventParser(), GestureRecogniser(panel, SCREEN), []
    for line in lines(text):
        event = parser.feed(line)
        gesture = recogniser.feed(event) if event else None
        if gesture is not None:
            gestures.append(gesture)
    return gestures, parser


TAP = """\
add device 1: /dev/input/event2
  name:     "synaptics_dsx"
could not get driver version for /dev/input/mice, Not a typewriter
[   51234.567890] /dev/input/event2: EV_ABS       ABS_MT_TRACKING_ID   0000002a
[   51234.567890] /dev/input/event2: EV_KEY       BTN_TOUCH            DOWN
[   51234.567890] /dev/input/event2: EV_ABS       ABS_MT_TOOL_TYPE     MT_TOOL_FINGER
[   51234.567890] /dev/input/event2: EV_ABS       ABS_MT_POSITION_X    00000800
[   51234.567890] /dev/input/event2: EV_ABS       ABS_MT_POSITION_Y    00000400
[   51234.567890] /dev/input/event2: EV_SYN       SYN_REPORT           00000000
[   51234.601122] /dev/input/event2: EV_ABS       ABS_MT_POSITION_X    00000803
[   51234.601122] /dev/input/event2: EV_SYN       SYN_REPORT           00000000
[   51234.651122] /dev/input/event2: EV_ABS       ABS_MT_TRACKING_ID   ffffffff
[   51234.651122] /dev/input/event2: EV_KEY       BTN_TOUCH            UP
[   51234.651122] /dev/input/event2: EV_SYN       SYN_REPORT           00000000
"""


def test_a_tap_is_scaled_from_axis_units_to_pixels() -> None:
    (tap,), parser = recognise(TAP)
    assert tap.kind == "tap"
    assert (tap.x1, tap.y1) == pytest.approx((0x800 * 1080 / 4096, 0x400 * 2400 / 4096))
    assert (tap.start, tap.end) == pytest.approx((51234.567890, 51234.651122))
    assert (parser.events, parser.headers, parser.malformed) == (11, 3, 0)
    # getevent pads its columns: trailing spaces (and a PTY's CR) are part of the line
    padded = "[   51234.601122] /dev/input/event2: EV_KEY       BTN_TOUCH            UP"
    event = parser.feed(padded + " " * 18 + "\r\n")
    assert event is not None and (event.code, event.value) == ("BTN_TOUCH", 0)


SWIPE = """\
[  100.000000] /dev/input/event2: EV_ABS       ABS_MT_TRACKING_ID   00000001
[  100.000000] /dev/input/event2: EV_ABS       ABS_MT_POSITION_X    00000800
[  100.000000] /dev/input/event2: EV_ABS       ABS_MT_POSITION_Y    00000c00
[  100.000000] /dev/input/event2: EV_SYN       SYN_REPORT           00000000
[  100.020000] /dev/input/event2: EV_ABS       ABS_MT_POSITION_Y    00000900
[  100.020000] /dev/input/event2: EV_SYN       SYN_REPORT           00000000
this line is garbage
[  100.040000] /dev/input/event2: EV_ABS       ABS_MT_POSITION_Y
[  100.04000
[  100.040000] /dev/input/event2: EV_ABS       ABS_MT_POSITION_X    0000zz00
[  100.040000] /dev/input/event2: EV_ABS       ABS_MT_POSITION_Y    00000400
[  100.040000] /dev/input/event2: EV_SYN       SYN_REPORT           00000000
[  100.060000] /dev/input/event2: EV_ABS       ABS_MT_TRACKING_ID   ffffffff
[  100.060000] /dev/input/event2: EV_SYN       SYN_REPORT           00000000
"""


def test_a_swipe_up_and_malformed_lines_ignored_and_counted() -> None:
    (swipe,), parser = recognise(SWIPE)
    assert swipe.kind == "swipe" and swipe.seconds == pytest.approx(0.06)
    assert swipe.y2 < swipe.y1 and swipe.is_swipe_up(SCREEN[1], 0.15)
    assert not swipe.is_swipe_up(SCREEN[1], 0.9)
    assert parser.malformed == 4 and parser.events == 10


def test_plain_hex_lines_without_labels_and_other_devices() -> None:
    text = """\
[  200.000000] /dev/input/event2: 0003 0039 00000005
[  200.000000] /dev/input/event2: 0003 0035 00000010
[  200.000000] /dev/input/event2: 0003 0036 00000010
[  200.000000] /dev/input/event2: 0000 0000 00000000
[  200.010000] /dev/input/event0: 0001 0074 00000001
[  200.010000] /dev/input/event0: 0000 0000 00000000
[  200.100000] /dev/input/event2: 0003 0039 ffffffff
[  200.100000] /dev/input/event2: 0000 0000 00000000
"""
    (tap,), parser = recognise(text)
    assert tap.kind == "tap" and parser.malformed == 0  # the power key's events left out


def test_two_fingers_in_two_slots_make_one_multi_gesture() -> None:
    text = """\
[  300.000000] /dev/input/event2: EV_ABS       ABS_MT_TRACKING_ID   00000010
[  300.000000] /dev/input/event2: EV_ABS       ABS_MT_POSITION_X    00000100
[  300.000000] /dev/input/event2: EV_ABS       ABS_MT_POSITION_Y    00000100
[  300.000000] /dev/input/event2: EV_SYN       SYN_REPORT           00000000
[  300.050000] /dev/input/event2: EV_ABS       ABS_MT_SLOT          00000001
[  300.050000] /dev/input/event2: EV_ABS       ABS_MT_TRACKING_ID   00000011
[  300.050000] /dev/input/event2: EV_ABS       ABS_MT_POSITION_X    00000900
[  300.050000] /dev/input/event2: EV_ABS       ABS_MT_POSITION_Y    00000900
[  300.050000] /dev/input/event2: EV_SYN       SYN_REPORT           00000000
[  300.100000] /dev/input/event2: EV_ABS       ABS_MT_TRACKING_ID   ffffffff
[  300.100000] /dev/input/event2: EV_SYN       SYN_REPORT           00000000
[  300.150000] /dev/input/event2: EV_ABS       ABS_MT_SLOT          00000000
[  300.150000] /dev/input/event2: EV_ABS       ABS_MT_TRACKING_ID   ffffffff
[  300.150000] /dev/input/event2: EV_SYN       SYN_REPORT           00000000
[  301.000000] /dev/input/event2: EV_ABS       ABS_MT_TRACKING_ID   00000012
[  301.000000] /dev/input/event2: EV_SYN       SYN_REPORT           00000000
[  301.700000] /dev/input/event2: EV_ABS       ABS_MT_TRACKING_ID   ffffffff
[  301.700000] /dev/input/event2: EV_SYN       SYN_REPORT           00000000
"""
    (multi, press), _ = recognise(text)
    assert multi.kind == "multi" and multi.end == pytest.approx(300.15)
    # slot 0 kept its last position: the kernel does not repeat unchanged values
    assert press.kind == "press" and press.x1 == pytest.approx(0x100 * 1080 / 4096)


def test_the_touchscreen_is_found_in_getevent_lp() -> None:
    text = """\
add device 1: /dev/input/event0
  name:     "gpio-keys"
  events:
    KEY (0001): KEY_VOLUMEDOWN        KEY_VOLUMEUP          KEY_POWER
add device 2: /dev/input/event3
  name:     "fts_ts"
  events:
    KEY (0001): BTN_TOUCH
    ABS (0003): ABS_MT_SLOT           : value 0, min 0, max 9, fuzz 0, flat 0, resolution 0
                ABS_MT_POSITION_X     : value 0, min 0, max 10799, fuzz 0, flat 0, resolution 0
                ABS_MT_POSITION_Y     : value 0, min 0, max 23999, fuzz 0, flat 0, resolution 0
"""
    panel = find_touch_panel(text)
    assert panel == TouchPanel("/dev/input/event3", AxisRange(0, 10799), AxisRange(0, 23999))
    assert panel.to_screen(10799, 0, (1080, 2400)) == pytest.approx((1079.9, 0))
    assert find_touch_panel("add device 1: /dev/input/event0\n") is None


def test_media_are_muxed_aligned_and_readable_before_close(tmp_path: Path) -> None:
    """Video muxed without re-encoding, audio placed by PTS (a gap filled, the part before
    the first key frame cut), and the files readable while still being written."""
    writer = MediaWriter("raw")
    encoder = VideoEncoder(320, 240, max_fps=10)
    origin = 5_000_000
    tone = (np.sin(np.arange(4800) / 8) * 8000).astype(np.int16).repeat(2).reshape(-1, 2)
    writer("audio", PacketHeader(len(tone) * 4, pts_us=origin - 50_000), tone[:2400].tobytes())
    for i in range(30):
        image = np.full((240, 320, 3), i * 8, np.uint8)
        for packet in encoder.encode(image, origin + i * 100_000):
            writer("video", PacketHeader(len(packet.payload), packet.pts_us, packet.config,
                                         packet.key), packet.payload)
        if i == 2:
            writer.open(tmp_path)
        if i < 20 or i >= 25:  # a half-second gap in the audio
            writer("audio", PacketHeader(19200, pts_us=origin + i * 100_000), tone.tobytes()[
                :19200])
        if i == 26:
            shutil.copy(tmp_path / "screen.mp4", tmp_path / "crashed.mp4")
    writer.close()
    assert writer.origin_us == origin and writer.error is None
    with av.open(str(tmp_path / "screen.mp4")) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 30 and frames[-1].time == pytest.approx(2.9)
    with av.open(str(tmp_path / "crashed.mp4")) as container:
        assert len(list(container.decode(video=0))) >= 20
    with wave.open(str(tmp_path / "audio.wav")) as audio:
        assert (audio.getframerate(), audio.getnchannels()) == (SAMPLE_RATE, 2)
        assert audio.getnframes() == 30 * 4800
    assert writer.stats()["audio_filled"] == 5 * 4800 and writer.stats()["audio_cut"] == 2400


def test_the_clock_offset_is_bounded_by_the_least_delayed_packet() -> None:
    """Device epoch = host + 1000 s, monotonic = host - 50 s, so the offset is 1050 s;
    packets arrive 20-60 ms after capture."""
    clock = StreamClock(rate=1.0)
    stop = threading.Event()
    rng = np.random.default_rng(1)
    sent: list[int] = []

    def stream() -> None:
        while not stop.is_set():
            latency = 0.02 + 0.04 * rng.random()
            sent.append(int((time.monotonic() - latency - 50.0) * 1e6))
            clock.observe(sent[-1])
            time.sleep(0.01)  # paced: a 100 packets/s stream, not a wait

    feeder = threading.Thread(target=stream, daemon=True)
    feeder.start()
    try:
        wait_for(lambda: len(sent) >= 10, 5, what="ten packets on the stream")
        estimate = clock.calibrate(lambda: time.monotonic() + 1000.0, rounds=3, settle_s=0.1)
    finally:
        stop.set()
        feeder.join(2)
    assert 1050.0 < estimate.offset_s < 1050.03 and 1 <= estimate.rounds <= 3
    assert abs(clock.now() - (time.monotonic() - 50.0)) < 0.1


def test_the_record_command_refuses_bad_arguments_before_touching_adb(tmp_path, capsys) -> None:
    jar = write_server_jar(tmp_path)
    base = ["record", "--device", "nowhere:1", "--out", str(tmp_path), "--adb-port", "1"]
    assert cli_main([*base, "--participant", "p 1", "--server-jar", str(jar)]) == 2
    assert "cannot name a folder" in capsys.readouterr().err
    assert cli_main([*base, "--participant", "p1", "--server-jar", str(tmp_path / "no")]) == 2
    assert "no scrcpy server file" in capsys.readouterr().err
    assert cli_main([*base, "--participant", "p1", "--server-jar", str(jar), "--views",
                     "0"]) == 2


# -- a whole recording on a virtual phone ------------------------------------------------------
WARP = 2.0
SWIPE_MS = 200  # device milliseconds of the scripted swipe


class ScriptedPerson:
    """Watches, likes, comments, shares and swipes with `adb shell input`, where the app's UI
    says the buttons are (its eyes are the phone's own view tree)."""

    def __init__(self, device, phone) -> None:
        self.device, self.phone = device, phone
        self.driver = app_driver("bubblescope-sim")
        self.view_start = phone.monotonic()

    def _point(self, role: str, text: str | None = None) -> tuple[float, float]:
        nodes = parse_ui_dump(self.phone.dump_ui())
        if text is not None:
            return next(n.center for n in nodes if n.text == text)
        located = self.driver.locate(role, nodes, (self.phone.width, self.phone.height))
        assert located is not None, role
        return located.point

    def tap(self, role: str, text: str | None = None) -> None:
        x, y = self._point(role, text)
        self.device.shell(f"input tap {x:.0f} {y:.0f}")

    def _sheet(self, sheet: str | None, timeout_s: float = 5.0) -> None:
        wait_for(lambda: self.phone.app_state().sheet == sheet, timeout_s, every_s=0.02,
                 what=f"sheet {sheet}")

    def comment(self, text: str) -> None:
        self.tap("comment_button")
        self._sheet("comment")
        self.device.shell("input text " + text.replace(" ", "%s"))
        # the person reads what they typed (the recorder's dumps see it); then a condition
        time.sleep(0.6)  # paced: a person's pace, not a wait (the tap waits for the sheet)
        self.tap("comment_send")
        self._sheet(None)

    def share(self, target: str) -> None:
        self.tap("share_button")
        self._sheet("share")
        time.sleep(0.3)  # paced: the person finds the target on the sheet
        self.tap("share_target", text=target)
        self._sheet(None)

    def view(self, watch_s: float, like: bool, comment: str | None, share: str | None) -> float:
        """One video, watched `watch_s` device seconds from its appearance to the lift (or as
        long as the actions took, on a slow machine); returns the time it meant to watch."""
        time.sleep(0.5 / WARP)  # paced: the person looks at the new video before acting
        if like:
            self.tap("like_button")
        if comment:
            self.comment(comment)
        if share:
            self.share(share)
        left = self.view_start + watch_s - SWIPE_MS / 1000 - self.phone.monotonic()
        time.sleep(max(0.0, left) / WARP)  # paced: the person watches for watch_s
        watched = self.phone.monotonic() + SWIPE_MS / 1000 - self.view_start
        self.device.shell(f"input swipe 360 1000 360 300 {SWIPE_MS}")
        self.view_start = self.phone.monotonic()
        return watched


SCRIPT = [(3.0, True, None, None), (4.5, False, "so good", None), (4.0, False, None, "Moments")]


def decide(human: SyntheticHuman, phone) -> tuple[float, bool, str | None, str | None]:
    """A synthetic human's reaction to the video on screen, its watch time kept short."""
    truth = phone.truth()
    reaction = human.react(truth.category, truth.duration_s)
    engaged = bool(reaction.comment or reaction.share)
    watch = float(np.clip(reaction.watch_s, 4.5 if engaged else 1.5, 4.5))
    return watch, reaction.like, reaction.comment, "Friends" if reaction.share else None


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recorder")
    jar = write_server_jar(folder / "jar")
    thread, phone = run_in_thread(PhoneSpec("rec", time_warp=WARP))
    try:
        with private_adb_server(folder) as adb:
            serial = adb.connect(thread.port)
            device = adb.client().device(serial)
            device.shell("am start -n org.bubblescope.shortvideo/.FeedActivity")
            yield folder, jar, adb, device, phone
    finally:
        thread.stop()


@pytest.mark.slow
def test_a_scripted_person_is_recorded_into_the_dataset(rig) -> None:
    folder, jar, _, device, phone = rig
    views = 6
    out = folder / "dataset"
    config = RecorderConfig(out=out, participant="p01", server_jar=jar, views=views,
                            max_size=640, max_fps=5, duration_s=60)
    recorder = Recorder(device, config)
    recorder.start()
    results: list = []
    running = threading.Thread(target=lambda: results.append(recorder.run()), daemon=True)
    running.start()
    person = ScriptedPerson(device, phone)
    human = SyntheticHuman(human_spec("concentrated"), load_taxonomy(), seed=3)
    steps = []
    try:
        for i in range(views):  # three scripted views (like, comment, share), then the human's
            watch, like, comment, share = SCRIPT[i] if i < len(SCRIPT) else decide(human, phone)
            steps.append((person.view(watch, like, comment, share), like, comment, share))
            if i == 2:
                check_crash_safe(out, records=3)
    finally:
        running.join(timeout=30)
        recorder.stop()  # only if the views never completed
        running.join(timeout=30)
    assert results, "the recorder did not stop after its views"
    result = results[0]
    truth_offset = phone.clock() - phone.monotonic()
    print(f"clock offset error {1000 * (result.clock.offset_s - truth_offset):+.1f} ms "
          f"(read uncertainty {1000 * result.clock.read_uncertainty_s:.1f} ms, "
          f"spread {1000 * result.clock.spread_s:.1f} ms); stats {result.stats}")
    assert result.stop_reason == "views" and result.views == views
    # late by the least packet latency, give or take half the `date` round trip (which a
    # loaded machine lengthens): within 50 ms plus twice that
    assert abs(result.clock.offset_s - truth_offset) < 0.05 + 2 * result.clock.read_uncertainty_s
    (session,) = read_dataset(out)
    assert len(session.records) == views and session.collector == "p01"
    check_records(session, steps, phone)
    check_media(out / "p01" / session.session_id, session, result)


def check_crash_safe(out: Path, records: int, timeout_s: float = 5.0) -> None:
    """Mid-recording, what a crash would leave: a session.json with every completed view,
    and media that open as they are."""
    wait_for(lambda: len(read_dataset(out)[0].records) >= records, timeout_s,
             what=f"{records} views in the partial session.json")
    folder = out / "p01" / read_dataset(out)[0].session_id / "media"
    shutil.copy(folder / "screen.mp4", folder.parent / "crashed.mp4")
    with av.open(str(folder.parent / "crashed.mp4")) as container:
        assert next(container.decode(video=0)) is not None
    (folder.parent / "crashed.mp4").unlink()
    with wave.open(str(folder / "audio.wav")) as audio:
        assert audio.getnframes() > 0


def check_records(session, steps, phone) -> None:
    feedback = phone.app_state().feedback
    assert len(feedback) == len(steps)
    previous = session.start_time
    for i, (record, step, sent) in enumerate(zip(session.records, steps, feedback, strict=True)):
        watch, like, comment, share = step
        assert record.started_at.tzinfo == UTC and record.timestamp.tzinfo == \
            UTC
        assert previous <= record.started_at <= record.timestamp
        previous = record.timestamp
        assert record.viewing_duration == pytest.approx(watch, abs=0.5), (i, record, step)
        if i:  # the app counts from the video's appearance, as the recorder does
            assert record.viewing_duration == pytest.approx(sent.watch_s, abs=0.05)
        assert record.video_id == phone.catalogue.video_id(sent.video)
        assert record.did("like") == like == sent.like
        comments = [a.text for a in record.actions if a.type == "comment"]
        shares = [a.text for a in record.actions if a.type == "share"]
        assert comments == ([comment] if comment else []) and sent.comment == bool(comment)
        assert shares == ([share] if share else []) and sent.share == bool(share)
    assert session.end_time >= previous


def check_media(folder: Path, session, result) -> None:
    seconds = (session.end_time - session.start_time).total_seconds()  # device time
    with av.open(str(folder / session.records[0].video_file)) as container:
        frames = list(container.decode(video=0))
    assert abs(frames[-1].time - seconds) < 1.0
    assert len(frames) >= 0.8 * seconds / WARP * 5 and len(frames) == result.stats["video_frames"]
    with wave.open(str(folder / session.records[0].audio_file)) as audio:
        assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == \
            (48_000, 2, 2)
        assert abs(audio.getnframes() / 48_000 - seconds) < 0.5
    for record in session.records:
        nodes = parse_ui_dump((folder / record.ui_dump).read_text("utf-8"))
        assert any(n.resource_id.endswith(":id/like_button") for n in nodes)


@pytest.mark.slow
def test_the_record_command_writes_a_session(rig, capsys) -> None:
    folder, jar, adb, device, phone = rig
    out = folder / "cli-dataset"
    code: list[int] = []
    args = ["record", "--device", device.serial, "--participant", "cli", "--out", str(out),
            "--adb-port", str(adb.port), "--server-jar", str(jar), "--views", "1",
            "--duration", "30"]
    running = threading.Thread(target=lambda: code.append(cli_main(args)), daemon=True)
    running.start()
    wait_for(lambda: list(out.glob("cli/*/session.json")), 20, every_s=0.1,
             what="the recording to begin")
    # the person watches the first video a moment; what follows waits on the recorder itself
    time.sleep(1.0)  # paced: a person's pace, not a wait (the join and the record count follow)
    device.shell(f"input swipe 360 1000 360 300 {SWIPE_MS}")
    running.join(timeout=20)
    assert code == [0], capsys.readouterr()
    (session,) = read_dataset(out)
    assert len(session.records) == 1 and session.platform == "douyin-like"
    assert "recorded 1 views (views)" in capsys.readouterr().out
