"""The phone's programs, as the device shell runs them: `input`, `uiautomator`, `am`, `monkey`,
`pm`, `wm`, `screencap`, `settings`, and (from phone_inspect) `dumpsys` and `getevent`.

Outputs follow Android 13 where clients parse them (docs/architecture.md#adbutils, docs/architecture.md#uiautomator-dump, docs/architecture.md#getevent): adbutils' regexes,
uiautomator's "UI hierchary dumped to:" (sic), getevent's fixed columns. Errors go to stderr
with a non-zero status, as Android's shell commands do (cmd-based tools exit 255).
"""

from __future__ import annotations

import asyncio
import io
import logging
import posixpath
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from PIL import Image

from bubblescope.sim.android.commands import CommandContext, ProgramRegistry
from bubblescope.sim.android.errors import UsageError
from bubblescope.sim.android.layout import ACTIVITY, LAUNCHER_PACKAGE, PACKAGE
from bubblescope.sim.android.phone_inspect import PACKAGES, Inspect, package_path

if TYPE_CHECKING:
    from bubblescope.sim.android.phone import VirtualPhone

log = logging.getLogger(__name__)

INPUT_SOURCES = {"keyboard", "mouse", "joystick", "touchnavigation", "touchpad", "trackball",
                 "dpad", "stylus", "gamepad", "touchscreen", "rotaryencoder"}
LONG_PRESS_S = 0.5  # draganddrop holds this long before moving (ViewConfiguration)
SWIPE_STEP_S = 0.016  # one move event per frame of a 60 Hz panel
KEYCODES = {
    "UNKNOWN": 0, "SOFT_LEFT": 1, "SOFT_RIGHT": 2, "HOME": 3, "BACK": 4, "CALL": 5,
    "ENDCALL": 6, **{str(d): 7 + d for d in range(10)}, "STAR": 17, "POUND": 18,
    "DPAD_UP": 19, "DPAD_DOWN": 20, "DPAD_LEFT": 21, "DPAD_RIGHT": 22, "DPAD_CENTER": 23,
    "VOLUME_UP": 24, "VOLUME_DOWN": 25, "POWER": 26, "CAMERA": 27, "CLEAR": 28,
    **{chr(ord("A") + i): 29 + i for i in range(26)}, "COMMA": 55, "PERIOD": 56, "TAB": 61,
    "SPACE": 62, "ENTER": 66, "DEL": 67, "MENU": 82, "SEARCH": 84, "MEDIA_PLAY_PAUSE": 85,
    "PAGE_UP": 92, "PAGE_DOWN": 93, "ESCAPE": 111, "FORWARD_DEL": 112, "VOLUME_MUTE": 164,
    "APP_SWITCH": 187, "SLEEP": 223, "WAKEUP": 224, "CUT": 277, "COPY": 278, "PASTE": 279,
}

# What `am start -W` and `monkey` print after their work, as Android 13's tools print it.
AM_WAIT_REPORT = (f"Status: ok\nLaunchState: {{launch}}\nActivity: {PACKAGE}/{ACTIVITY}\n"
                  "TotalTime: 412\nWaitTime: 415\nComplete\n")
MONKEY_REPORT = ("Events injected: {events}\n## Network stats: elapsed time=18ms (0ms mobile, "
                 "0ms wifi, 18ms not connected)\n")


def keycode(name: str) -> int:
    """Android's KeyEvent.keyCodeFromString: a number first, then a name with or without
    the KEYCODE_ prefix."""
    if name.isdigit():
        return int(name)
    code = KEYCODES.get(name.upper().removeprefix("KEYCODE_"))
    if code is None:
        raise UsageError(f"Unknown keycode: {name}")
    return code


def input_text(args: list[str]) -> str:
    """`input text` turns each `%s` into a space (InputShellCommand.sendText)."""
    return " ".join(args).replace("%s", " ")


def _numbers(args: list[str], count: int) -> list[float]:
    """The first `count` arguments as coordinates; [] when missing or not numbers."""
    try:
        return [float(a) for a in args[:count]] if len(args) >= count else []
    except ValueError:
        return []


def _component(name: str) -> tuple[str, str]:
    package, _, activity = name.partition("/")
    if activity.startswith(package + "."):
        activity = activity[len(package):]
    return package, activity


class PhonePrograms:
    def __init__(self, phone: VirtualPhone) -> None:
        self.phone = phone
        self.inspect = Inspect(phone)

    def registry(self) -> ProgramRegistry:
        registry = ProgramRegistry()
        for name in ("input", "uiautomator", "am", "monkey", "pm", "wm", "screencap",
                     "settings"):
            registry.register(name, getattr(self, name))
        registry.register("dumpsys", self.inspect.dumpsys)
        registry.register("getevent", self.inspect.getevent)
        registry.register(TRUTH_PROGRAM, self.truth)
        registry.register(PHASE_PROGRAM, self.phase)
        return registry

    # the simulated world's side channel ----------------------------------------------------
    async def truth(self, ctx: CommandContext) -> int:
        """Harness only: the platform's ground truth of the video on screen, as JSON. Real
        phones have no such program; drivers call it only to fill category_truth."""
        truth = self.phone.truth()
        await ctx.stdout.write((truth.model_dump_json() if truth else "null") + "\n")
        return 0

    async def phase(self, ctx: CommandContext) -> int:
        """Harness only: an experiment phase begins (the `frozen` profile stops learning)."""
        self.phone.begin_phase()
        return 0

    # input -------------------------------------------------------------------------------
    async def input(self, ctx: CommandContext) -> int:
        args = list(ctx.argv[1:])
        if args and args[0] in INPUT_SOURCES:
            args = args[1:]
        if len(args) >= 2 and args[0] == "-d":
            args = args[2:]
        if not args:
            await ctx.stderr.write("Usage: input [<source>] [-d DISPLAY_ID] <command> [<arg>...]\n")
            return 1
        commands: dict[str, Callable[[CommandContext, list[str]], Awaitable[None]]] = {
            "tap": self._tap, "swipe": self._swipe, "draganddrop": self._drag,
            "keyevent": self._keyevent, "text": self._text, "motionevent": self._motion}
        handler = commands.get(args[0])
        log.debug("%s: input %s", self.phone.serial, " ".join(args))
        if handler is None:
            await ctx.stderr.write(f"Error: Unknown command: {args[0]}\n")
            return 255
        try:
            await handler(ctx, args[1:])
        except UsageError as error:
            await ctx.stderr.write(f"Error: {error}\n")
            return 255
        return 0

    async def _tap(self, ctx: CommandContext, args: list[str]) -> None:
        xy = _numbers(args, 2)
        if len(args) != 2 or not xy:
            raise UsageError("Invalid arguments for command: tap")
        self.phone.touch_down(*xy)
        self.phone.touch_up(*xy)

    async def _stroke(self, ctx: CommandContext, args: list[str], command: str,
                      hold_s: float) -> None:
        points = _numbers(args, 4)
        if len(args) not in (4, 5) or not points:
            raise UsageError(f"Invalid arguments for command: {command}")
        try:
            seconds = (int(args[4]) if len(args) == 5 else 300) / 1000
        except ValueError as error:
            raise UsageError(f"Invalid arguments for command: {command}") from error
        x1, y1, x2, y2 = points
        self.phone.touch_down(x1, y1)
        await self.phone.device_sleep(hold_s)
        steps = max(1, min(120, round(max(seconds, 0) / SWIPE_STEP_S)))
        for step in range(1, steps + 1):
            if ctx.cancelled.is_set():
                break
            await self.phone.device_sleep(seconds / steps)
            f = step / steps
            self.phone.touch_move(x1 + (x2 - x1) * f, y1 + (y2 - y1) * f)
        self.phone.touch_up(x2, y2)

    async def _swipe(self, ctx: CommandContext, args: list[str]) -> None:
        await self._stroke(ctx, args, "swipe", 0.0)

    async def _drag(self, ctx: CommandContext, args: list[str]) -> None:
        await self._stroke(ctx, args, "draganddrop", LONG_PRESS_S)

    async def _keyevent(self, ctx: CommandContext, args: list[str]) -> None:
        codes = [keycode(a) for a in args if not a.startswith("--")]
        if not codes:
            raise UsageError("Invalid arguments for command: keyevent")
        for code in codes:
            self.phone.keyevent(code)

    async def _text(self, ctx: CommandContext, args: list[str]) -> None:
        if not args:
            raise UsageError("Invalid arguments for command: text")
        self.phone.inject_text(input_text(args))

    async def _motion(self, ctx: CommandContext, args: list[str]) -> None:
        xy = _numbers(args[1:], 2)
        actions = {"DOWN": 0, "UP": 1, "MOVE": 2, "CANCEL": 3}
        if len(args) != 3 or not xy or args[0].upper() not in actions:
            raise UsageError("Invalid arguments for command: motionevent")
        self.phone.inject_touch(actions[args[0].upper()], 0, *xy)

    # apps ------------------------------------------------------------------------------------
    async def uiautomator(self, ctx: CommandContext) -> int:
        args = [a for a in ctx.argv[1:] if not a.startswith("--")]
        if not args or args[0] != "dump" or len(args) > 2:
            await ctx.stderr.write("Usage: uiautomator dump [--compressed] [file]\n")
            return 1
        path = posixpath.join(ctx.env.get("PWD", "/"), args[1]) if len(args) == 2 \
            else "/sdcard/window_dump.xml"
        xml = self.phone.dump_ui()
        if path in ("/dev/tty", "/dev/stdout"):
            await ctx.stdout.write(xml)
        else:
            self.phone.fs.write(posixpath.normpath(path), xml.encode("utf-8"))
        await ctx.stdout.write(f"UI hierchary dumped to: {path}\n")
        return 0

    async def am(self, ctx: CommandContext) -> int:
        args = ctx.argv[1:]
        if args[:1] == ["start"]:
            return await self._am_start(ctx, args[1:])
        if args[:1] == ["force-stop"] and len(args) >= 2:
            self.phone.force_stop(args[-1])
            return 0
        if args[:1] == ["broadcast"]:
            await ctx.stdout.write("Broadcasting: Intent { }\nBroadcast completed: result=0\n")
            return 0
        await ctx.stderr.write(f"Unknown command: {' '.join(args[:1])}\n")
        return 255

    def _parse_intent(self, args: list[str]) -> dict[str, str]:
        """-n component, -a action, -d data, -c category; `--es/--ei/--ez KEY VALUE` extras
        stored under `extra:KEY`; flags without values skipped."""
        intent: dict[str, str] = {}
        takes_value = {"-n", "-a", "-d", "-c", "-t", "-f", "--user", "-p"}
        index = 0
        while index < len(args):
            arg = args[index]
            if arg in ("--es", "--ei", "--ez") and index + 2 < len(args):
                intent[f"extra:{args[index + 1]}"] = args[index + 2]
                index += 3
                continue
            if arg in takes_value and index + 1 < len(args):
                intent.setdefault(arg, args[index + 1])
                index += 2
                continue
            if arg.startswith("-"):
                intent.setdefault(arg, "")  # a flag such as -W or -S
            elif "/" in arg and ":" not in arg:
                intent["-n"] = arg  # `am start pkg/.Activity`
            index += 1
        return intent

    async def _am_start(self, ctx: CommandContext, args: list[str]) -> int:
        intent = self._parse_intent(args)
        component = intent.get("-n")
        if component is None:
            description = " ".join(f"{k[1:]}={v}" for k, v in intent.items() if v)
            await ctx.stderr.write("Error: Activity not started, unable to resolve Intent "
                                   f"{{ {description} flg=0x10000000 }}\n")
            return 1
        package, activity = _component(component)
        await ctx.stdout.write(f"Starting: Intent {{ cmp={package}/{activity} }}\n")
        if "-S" in intent:
            self.phone.force_stop(package)
        if package == LAUNCHER_PACKAGE:
            self.phone.keyevent(3)
            return 0
        if (package, activity) != (PACKAGE, ACTIVITY):
            await ctx.stdout.write(f"Error type 3\nError: Activity class {{{package}/{activity}}}"
                                   " does not exist.\n")
            return 1
        if "extra:bubblescope.account" in intent:  # the simulated app's account switch
            try:
                self.phone.login(intent.get("extra:bubblescope.platform",
                                            self.phone.props["bubblescope.platform"]),
                                 intent["extra:bubblescope.account"],
                                 int(intent.get("extra:bubblescope.seed", "0")))
            except ValueError as exc:
                await ctx.stderr.write(f"Error: {exc}\n")
                return 1
        on_top = self.phone.foreground() == (PACKAGE, ACTIVITY)
        self.phone.start_app()
        if on_top:
            await ctx.stdout.write("Warning: Activity not started, intent has been delivered to "
                                   "currently running top-most instance.\n")
        if "-W" in intent:
            await ctx.stdout.write(AM_WAIT_REPORT.format(launch="HOT" if on_top else "COLD"))
        return 0

    async def monkey(self, ctx: CommandContext) -> int:
        args = ctx.argv[1:]
        packages = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "-p"]
        for arg in args:
            await ctx.stdout.write(f"  bash arg: {arg}\n")
        if PACKAGE not in packages:
            await ctx.stderr.write("** No activities found to run, monkey aborted.\n")
            return 251
        quoted = "".join(f' arg: "{a}"\n' for a in args)
        data = "".join(f'data="{args[i + 1]}"\n' for i, a in enumerate(args[:-1])
                       if a in ("-p", "-c"))
        self.phone.start_app()
        events = args[-1] if args and args[-1].isdigit() else "0"
        await ctx.stdout.write(f"args: [{', '.join(args)}]\n{quoted}{data}"
                               + MONKEY_REPORT.format(events=events))
        return 0

    async def pm(self, ctx: CommandContext) -> int:
        args = ctx.argv[1:]
        if args[:2] == ["list", "packages"]:
            options = {a for a in args[2:] if a.startswith("-")}
            filters = [a for a in args[2:] if not a.startswith("-")]
            for name, system in sorted(PACKAGES.items()):
                if ("-3" in options and system) or ("-s" in options and not system):
                    continue
                if filters and filters[-1] not in name:
                    continue
                path = f"{package_path(name)}=" if "-f" in options else ""
                await ctx.stdout.write(f"package:{path}{name}\n")
            return 0
        if args[:1] == ["path"] and len(args) == 2:
            if args[1] not in PACKAGES:
                return 1
            await ctx.stdout.write(f"package:{package_path(args[1])}\n")
            return 0
        if args[:1] == ["clear"] and len(args) == 2:
            self.phone.force_stop(args[1])
            await ctx.stdout.write("Success\n")
            return 0
        await ctx.stderr.write(f"Unknown command: {' '.join(args[:1])}\n")
        return 255

    async def wm(self, ctx: CommandContext) -> int:
        args = ctx.argv[1:]
        if args == ["size"]:
            await ctx.stdout.write(f"Physical size: {self.phone.width}x{self.phone.height}\n")
            return 0
        if args == ["density"]:
            await ctx.stdout.write(f"Physical density: {self.phone.props['ro.sf.lcd_density']}\n")
            return 0
        await ctx.stderr.write(f"Unknown command: {' '.join(args[:1])}\n")
        return 255

    async def settings(self, ctx: CommandContext) -> int:
        args = list(ctx.argv[1:])
        if len(args) >= 2 and args[0] == "--user":
            args = args[2:]
        verb, rest = (args[0], args[1:]) if args else ("", [])
        if verb == "get" and len(rest) == 2:
            await ctx.stdout.write(self.phone.settings.get((rest[0], rest[1]), "null") + "\n")
            return 0
        if verb == "put" and len(rest) >= 3:
            self.phone.settings[(rest[0], rest[1])] = rest[2]
            return 0
        if verb == "list" and len(rest) == 1:
            for (namespace, key), value in sorted(self.phone.settings.items()):
                if namespace == rest[0]:
                    await ctx.stdout.write(f"{key}={value}\n")
            return 0
        await ctx.stderr.write("usage:  settings [--user <USER_ID>] get namespace key\n"
                               "        settings [--user <USER_ID>] put namespace key value\n")
        return 255

    # screen and touch ---------------------------------------------------------------------
    async def screencap(self, ctx: CommandContext) -> int:
        args = [a for a in ctx.argv[1:] if a not in ("-p", "-h")]
        if len(args) >= 2 and args[0] == "-d":
            args = args[2:]
        png = "-p" in ctx.argv[1:] or bool(args and args[0].endswith(".png"))
        # rendering and PNG encoding take milliseconds: keep them off the shell's event loop
        data = await asyncio.get_running_loop().run_in_executor(None, self._capture, png)
        if args:
            self.phone.fs.write(posixpath.join(ctx.env.get("PWD", "/"), args[0]), data)
        else:
            await ctx.stdout.write(data)
        return 0

    def _capture(self, png: bool) -> bytes:
        frame = self.phone.render_frame()
        if png:
            buffer = io.BytesIO()
            Image.fromarray(frame).save(buffer, "PNG", compress_level=1)
            return buffer.getvalue()
        # raw: width, height, format RGBA_8888, dataspace (Android 12+), then the pixels
        h, w = frame.shape[:2]
        header = b"".join(v.to_bytes(4, "little") for v in (w, h, 1, 0))
        return header + Image.fromarray(frame).convert("RGBA").tobytes()


TRUTH_PROGRAM = "bubblescope-truth"
PHASE_PROGRAM = "bubblescope-phase"


def build_programs(phone: VirtualPhone) -> ProgramRegistry:
    return PhonePrograms(phone).registry()
