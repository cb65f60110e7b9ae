"""The phone's programs, called as the device shell calls them, with outputs checked against
what adbutils and Android tooling parse (docs/architecture.md#adbutils, docs/architecture.md#uiautomator-dump, docs/architecture.md#getevent)."""

from __future__ import annotations

import asyncio
import io
import re
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from bubblescope.sim.android.commands import CommandContext, OutputStream
from bubblescope.sim.android.layout import PACKAGE, View
from bubblescope.sim.android.phone import VirtualPhone
from bubblescope.sim.android.ui_dump import HEADER, dump_hierarchy
from bubblescope.sim.in_process_device import SimWorld

ATTRIBUTES = ["index", "text", "resource-id", "class", "package", "content-desc", "checkable",
              "checked", "clickable", "enabled", "focusable", "focused", "scrollable",
              "long-clickable", "password", "selected", "bounds"]


class Result:
    def __init__(self, status: int, chunks: list[bytes], err: bytes) -> None:
        self.status, self.chunks, self.err = status, chunks, err
        self.out = b"".join(chunks)

    @property
    def text(self) -> str:
        return self.out.decode()


async def run_async(phone: VirtualPhone, *argv: str, cancelled: asyncio.Event | None = None,
                    chunks: list[bytes] | None = None) -> Result:
    """Run a program; its stdout writes land in `chunks` as they happen (one per flush)."""
    chunks = [] if chunks is None else chunks
    err: list[bytes] = []

    async def out(data: bytes) -> None:
        chunks.append(data)

    async def error(data: bytes) -> None:
        err.append(data)

    ctx = CommandContext(list(argv), {"PWD": "/"}, OutputStream(out), OutputStream(error))
    if cancelled is not None:
        ctx.cancelled = cancelled
    program = phone.programs().get(argv[0])
    assert program is not None, argv[0]
    return Result(await program(ctx), chunks, b"".join(err))


def run(phone: VirtualPhone, *argv: str) -> Result:
    return asyncio.run(run_async(phone, *argv))


@pytest.fixture
def phone() -> VirtualPhone:
    phone = VirtualPhone("sim-2", SimWorld(), "kuaishou-like", "acct-2", seed=5, time_warp=20)
    assert run(phone, "am", "start", "-n", f"{PACKAGE}/.FeedActivity").status == 0
    return phone


def dump(phone: VirtualPhone) -> str:
    result = run(phone, "uiautomator", "dump", "/data/local/tmp/uidump.xml")
    assert result.text == "UI hierchary dumped to: /data/local/tmp/uidump.xml\n"
    return phone.fs.read("/data/local/tmp/uidump.xml").decode("utf-8")


def bounds_of(xml: str, name: str) -> tuple[int, int, int, int]:
    node = next(n for n in ET.fromstring(xml.split("?>", 1)[1]).iter("node")
                if n.get("resource-id") == f"{PACKAGE}:id/{name}")
    x1, y1, x2, y2 = map(int, re.findall(r"\d+", node.get("bounds", "")))
    return x1, y1, x2, y2


def test_uiautomator_dump_format_and_tap_at_dumped_bounds(phone: VirtualPhone) -> None:
    xml = dump(phone)
    assert xml.startswith(HEADER + '<hierarchy rotation="0"><node index="0" text=""')
    assert "\n" not in xml and xml.endswith("</node></hierarchy>")
    for attributes in re.findall(r"<node ([^>]*?)/?>", xml):
        assert re.findall(r'([\w-]+)="', attributes) == ATTRIBUTES
    assert ' />' in xml  # leaves are self-closed
    like = re.search(r'<node [^>]*resource-id="org.bubblescope.shortvideo:id/like_button"[^>]*/>',
                     xml).group(0)
    assert 'content-desc="Like"' in like and 'checked="false"' in like
    x1, y1, x2, y2 = bounds_of(xml, "like_button")
    assert run(phone, "input", "tap", str((x1 + x2) // 2), str((y1 + y2) // 2)).status == 0
    assert phone.app_state().liked
    assert 'checked="true"' in re.search(r'<node [^>]*id/like_button"[^>]*/>', dump(phone))[0]
    assert run(phone, "uiautomator", "dump").text.endswith("/sdcard/window_dump.xml\n")


def test_dump_escapes_like_kxml() -> None:
    leaf = View("android.widget.TextView", "p", (-5, 10, 50, 2000), name="t",
                text='a&b<c>"d"\n\te\x01\x84f😀', desc="ok")
    hidden = View("android.widget.TextView", "p", (900, 10, 950, 20))
    root = View("android.widget.FrameLayout", "p", (0, 0, 100, 100), children=[hidden, leaf])
    xml = dump_hierarchy(root, 100, 100)
    assert 'text="a&amp;b&lt;c&gt;&quot;d&quot;&#10;&#9;e..f&#128512;"' in xml
    assert 'index="1"' in xml and 'bounds="[0,10][50,100]"' in xml  # clipped; hidden left out
    assert ET.fromstring(xml.split("?>", 1)[1]).find("node/node").get("text").endswith("😀")


def test_input_swipe_keyevent_and_text(phone: VirtualPhone) -> None:
    first = phone.app_state().video
    assert run(phone, "input", "swipe", "360", "1000", "360", "300", "150").status == 0
    assert phone.app_state().video != first and len(phone.app_state().feedback) == 1
    assert run(phone, "input", "touchscreen", "draganddrop", "360", "1000", "360", "300",
               "100").status == 0
    assert len(phone.app_state().feedback) == 2
    comment = phone.view_tree().find("comment_button")
    run(phone, "input", "tap", *map(str, comment.center))
    assert run(phone, "input", "text", "hello%sworld").status == 0
    run(phone, "input", "keyevent", "KEYCODE_DEL")
    assert phone.app_state().draft == "hello worl"
    run(phone, "input", "keyevent", "ENTER")
    assert phone.app_state().comments == ("hello worl",)
    run(phone, "input", "keyevent", "BACK")
    assert phone.foreground()[0] != PACKAGE
    bad = run(phone, "input", "keyevent", "NOPE")
    assert bad.status != 0 and b"Unknown keycode" in bad.err
    assert run(phone, "input", "tap", "1").status != 0


def test_am_monkey_and_app_current_like_adbutils(phone: VirtualPhone) -> None:
    focus = re.compile(r"mCurrentFocus=Window{.*\s+(?P<package>[^\s]+)/(?P<activity>[^\s]+)\}")
    resumed = re.compile(r"mResumedActivity: ActivityRecord\{.*?\s+(?P<package>[^\s]+)/"
                         r"(?P<activity>[^\s]+)\s.*?\}")
    top = re.compile(r"ACTIVITY (?P<package>[^\s]+)/(?P<activity>[^/\s]+) \w+ pid=(?P<pid>\d+)")
    match = focus.search(run(phone, "dumpsys", "window", "windows").text)
    assert match["package"] == PACKAGE and match["activity"].endswith(".FeedActivity")
    assert resumed.search(run(phone, "dumpsys", "activity", "activities").text)["package"] \
        == PACKAGE
    assert top.search(run(phone, "dumpsys", "activity", "top").text)["package"] == PACKAGE
    assert run(phone, "am", "force-stop", PACKAGE).status == 0
    assert not phone.app_state().running
    assert focus.search(run(phone, "dumpsys", "window", "windows").text)["package"] != PACKAGE
    started = run(phone, "monkey", "-p", PACKAGE, "-c", "android.intent.category.LAUNCHER", "1")
    assert started.status == 0 and "Events injected: 1" in started.text
    assert phone.app_state().running
    # adbutils app_start passes the activity that app_current returned: the full class name
    full = run(phone, "am", "start", "-W", "-n", f"{PACKAGE}/{match['activity']}")
    assert full.status == 0 and "Status: ok" in full.text
    assert run(phone, "am", "start", "-n", f"{PACKAGE}/.Nope").status != 0
    assert run(phone, "monkey", "-p", "no.such.app", "1").status != 0


def test_pm_wm_dumpsys_settings_like_adbutils(phone: VirtualPhone) -> None:
    packages = re.findall(r"^package:([^\s]+)\r?$", run(phone, "pm", "list", "packages").text,
                          re.M)
    assert PACKAGE in packages and "com.android.settings" in packages
    assert re.findall(r"^package:(\S+)$", run(phone, "pm", "list", "packages", "-3").text,
                      re.M) == [PACKAGE]
    assert run(phone, "pm", "list", "packages", "bubble").text == f"package:{PACKAGE}\n"
    assert run(phone, "pm", "path", PACKAGE).text.startswith("package:/data/app/")
    assert run(phone, "pm", "path", "no.such").status != 0
    size = re.search(r"Physical size: (\d+)x(\d+)", run(phone, "wm", "size").text)
    assert size.groups() == ("720", "1280")
    display = run(phone, "dumpsys", "display").text
    first = next(m for m in map(re.compile(r".*?orientation=(?P<o>\d+)").search,
                                display.splitlines()) if m)
    assert first["o"] == "0"
    assert "mHoldingDisplaySuspendBlocker=true" in run(phone, "dumpsys", "power").text
    battery = dict(line.strip().split(":", 1) for line in
                   run(phone, "dumpsys", "battery").text.splitlines() if ":" in line)
    assert int(battery["level"]) == 87 and battery["AC powered"].strip() == "false"
    assert "versionName=1.0.0" in run(phone, "dumpsys", "package", PACKAGE).text
    assert run(phone, "settings", "get", "system", "screen_brightness").text == "128\n"
    run(phone, "settings", "put", "system", "screen_brightness", "40")
    assert run(phone, "settings", "get", "system", "screen_brightness").text == "40\n"
    assert run(phone, "settings", "get", "global", "nothing").text == "null\n"


@pytest.mark.parametrize("argv", [("am", "frobnicate"), ("pm", "frob"), ("wm", "frob"),
                                  ("dumpsys", "nope"), ("uiautomator", "frob"),
                                  ("input", "frob"), ("settings", "frob"),
                                  ("getevent", "/dev/input/event9")])
def test_unknown_subcommands_fail(phone: VirtualPhone, argv: tuple[str, ...]) -> None:
    result = run(phone, *argv)
    assert result.status != 0 and result.err


def test_screencap_png_and_raw(phone: VirtualPhone) -> None:
    png = run(phone, "screencap", "-p")
    image = Image.open(io.BytesIO(png.out))
    assert image.format == "PNG" and image.size == (720, 1280) and image.mode == "RGB"
    raw = run(phone, "screencap").out
    assert [int.from_bytes(raw[i:i + 4], "little") for i in (0, 4, 8)] == [720, 1280, 1]
    assert len(raw) == 16 + 720 * 1280 * 4
    run(phone, "screencap", "-p", "/sdcard/s.png")
    assert phone.fs.read("/sdcard/s.png").startswith(b"\x89PNG")


TAP_LINES = [
    "EV_ABS       ABS_MT_TRACKING_ID   0000002a            ",
    "EV_KEY       BTN_TOUCH            DOWN                ",
    "EV_ABS       ABS_MT_POSITION_X    00000064            ",
    "EV_ABS       ABS_MT_POSITION_Y    000000c8            ",
    "EV_SYN       SYN_REPORT           00000000            ",
    "EV_ABS       ABS_MT_TRACKING_ID   ffffffff            ",
    "EV_KEY       BTN_TOUCH            UP                  ",
    "EV_SYN       SYN_REPORT           00000000            ",
]


async def _getevent_tap(phone: VirtualPhone) -> Result:
    cancelled, chunks = asyncio.Event(), []
    task = asyncio.create_task(run_async(phone, "getevent", "-lt", cancelled=cancelled,
                                         chunks=chunks))
    for _ in range(400):  # until the header is out: events from then on are streamed
        await asyncio.sleep(0.005)
        if len(chunks) >= 2:
            break
    assert (await run_async(phone, "input", "tap", "100", "200")).status == 0
    for _ in range(400):
        await asyncio.sleep(0.005)
        if len(chunks) >= 2 + len(TAP_LINES):
            break
    cancelled.set()
    return await asyncio.wait_for(task, 5)


def test_getevent_lt_lines_byte_for_byte(phone: VirtualPhone) -> None:
    result = asyncio.run(_getevent_tap(phone))
    assert result.status == 0
    assert result.chunks[0] == b'add device 1: /dev/input/event2\n'
    assert result.chunks[1] == b'  name:     "bubble_touchscreen"\n'
    events = result.chunks[2:]
    assert all(chunk.endswith(b"\n") and chunk.count(b"\n") == 1 for chunk in events)
    line = re.compile(r"\[( *\d+)\.(\d{6})\] /dev/input/event2: (.{54})\n")
    matches = [line.fullmatch(chunk.decode()) for chunk in events]
    assert all(m is not None and len(m[1]) == 8 for m in matches), events  # "%8ld.%06ld"
    assert [m[3] for m in matches] == TAP_LINES
    stamps = [float(chunk[1:15]) for chunk in events]
    assert stamps == sorted(stamps) and abs(stamps[0] - phone.monotonic()) < 60


def test_getevent_count_device_and_ranges(phone: VirtualPhone) -> None:
    async def scenario() -> Result:
        task = asyncio.create_task(run_async(phone, "getevent", "-c", "3", "/dev/input/event2"))
        await asyncio.sleep(0.05)
        phone.touch_down(10, 20)
        phone.touch_up()
        return await asyncio.wait_for(task, 5)

    counted = asyncio.run(scenario())
    assert counted.status == 0
    assert counted.text.splitlines() == ["0003 0039 0000002a", "0001 014a 00000001",
                                         "0003 0035 0000000a"]
    ranges = run(phone, "getevent", "-lp").text
    assert "add device 1: /dev/input/event2\n" in ranges
    assert "ABS_MT_POSITION_X     : value 0, min 0, max 719, fuzz 0, flat 0, resolution 0" \
        in ranges
    assert "ABS_MT_POSITION_Y     : value 0, min 0, max 1279" in ranges
    assert ranges.endswith("  input props:\n    INPUT_PROP_DIRECT\n")


def test_am_start_with_account_extras_switches_account_and_platform(phone: VirtualPhone) -> None:
    result = run(phone, "am", "start", "-S", "-n", f"{PACKAGE}/.FeedActivity",
                 "--es", "bubblescope.account", "acct-9", "--es", "bubblescope.platform", "null",
                 "--ei", "bubblescope.seed", "7")
    assert result.status == 0, result.err
    assert phone.props["bubblescope.account"] == "acct-9"
    assert phone.props["bubblescope.platform"] == "null"
    assert phone.app.account == "acct-9" and phone.store.platform.profile.name == "null"
    assert phone.foreground()[0] == PACKAGE and phone.truth() is not None
    bad = run(phone, "am", "start", "-n", f"{PACKAGE}/.FeedActivity",
              "--es", "bubblescope.account", "x", "--es", "bubblescope.platform", "nope")
    assert bad.status == 1 and b"no simulated platform" in bad.err
