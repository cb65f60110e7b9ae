"""The phone's programs that report on it: `dumpsys` and `getevent`.

dumpsys texts carry the lines clients grep for (adbutils: `orientation=`, `mCurrentFocus=`,
`mResumedActivity:`, `ACTIVITY pkg/act ... pid=`, `mHoldingDisplaySuspendBlocker=`, battery
`key: value` lines, package `versionName=`...), in Android 13's layout, with the rest trimmed.
getevent follows toolbox/getevent.c (docs/architecture.md#getevent): its flags, its `add device` header,
its `-p` listing, and one line per event, flushed per line, until the stream is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bubblescope.sim.android.commands import CommandContext
from bubblescope.sim.android.layout import LAUNCHER_PACKAGE, PACKAGE
from bubblescope.sim.android.touch import InputEvent, format_event, possible_events

if TYPE_CHECKING:
    from bubblescope.sim.android.phone import VirtualPhone

TOUCH_DEVICE, TOUCH_NAME = "/dev/input/event2", "bubble_touchscreen"
PACKAGES = {  # name -> is a system package
    PACKAGE: False, "android": True, LAUNCHER_PACKAGE: True, "com.android.settings": True,
    "com.android.shell": True, "com.android.systemui": True,
    "com.android.providers.settings": True, "com.android.inputmethod.latin": True,
}
APP_PID, APP_UID, TASK_ID = 4321, 10123, 12


def package_path(name: str) -> str:
    if not PACKAGES.get(name, True):
        return f"/data/app/~~b1Ubb1e5c0pe==/{name}-Sh0rtV1de0==/base.apk"
    return f"/system/app/{name.rsplit('.', 1)[-1]}/{name.rsplit('.', 1)[-1]}.apk"


def _full_activity(package: str, activity: str) -> str:
    return package + activity if activity.startswith(".") else activity


class Inspect:
    def __init__(self, phone: VirtualPhone) -> None:
        self.phone = phone

    # dumpsys -------------------------------------------------------------------------------
    async def dumpsys(self, ctx: CommandContext) -> int:
        args = ctx.argv[1:]
        services = {"display": self._display, "window": self._window,
                    "activity": self._activity, "power": self._power,
                    "battery": self._battery, "package": self._package}
        if not args:
            await ctx.stdout.write("Currently running services:\n"
                                   + "".join(f"  {name}\n" for name in sorted(services)))
            return 0
        service = services.get(args[0])
        if service is None:
            await ctx.stderr.write(f"Can't find service: {args[0]}\n")
            return 1
        await ctx.stdout.write(service(args[1:]))
        return 0

    def _display(self, args: list[str]) -> str:
        w, h, on = self.phone.width, self.phone.height, self.phone.screen_on
        return (
            "DISPLAY MANAGER (dumpsys display)\n  mOnlyCode=false\n  mSafeMode=false\n"
            "  mViewports=[DisplayViewport{type=INTERNAL, valid=true, isActive=true, "
            "displayId=0, uniqueId='local:0', physicalPort=0, orientation=0, "
            f"logicalFrame=Rect(0, 0 - {w}, {h}), physicalFrame=Rect(0, 0 - {w}, {h}), "
            f"deviceWidth={w}, deviceHeight={h}}}]\n"
            "Display Devices: size=1\n"
            f'  DisplayDeviceInfo{{"Built-in Screen": uniqueId="local:0", {w} x {h}, '
            f"modeId 1, density {self.phone.props['ro.sf.lcd_density']}, rotation 0, "
            f"type INTERNAL, state {'ON' if on else 'OFF'}, FLAG_DEFAULT_DISPLAY}}\n"
            f"  mScreenState={'ON' if on else 'OFF'}\n")

    def _window(self, args: list[str]) -> str:
        package, activity = self.phone.foreground()
        window = f"Window{{5c1e2a0 u0 {package}/{_full_activity(package, activity)}}}"
        return ("WINDOW MANAGER WINDOWS (dumpsys window windows)\n"
                f"  Window #0 {window}:\n    mDisplayId=0 rootTaskId={TASK_ID}\n"
                f"    mHasSurface=true isReadyForDisplay()=true\n\n"
                "  mTopFocusedDisplayId=0\n  mInputMethodWindow=null\n"
                f"  mCurrentFocus={window}\n"
                f"  mFocusedApp=ActivityRecord{{8a1b3c4 u0 {package}/{activity} t{TASK_ID}}}\n")

    def _activity(self, args: list[str]) -> str:
        package, activity = self.phone.foreground()
        record = f"ActivityRecord{{8a1b3c4 u0 {package}/{activity} t{TASK_ID}}}"
        if args[:1] == ["top"]:
            return (f"TASK {APP_UID}:{package} id={TASK_ID} userId=0\n"
                    f"  ACTIVITY {package}/{activity} 8a1b3c4 pid={APP_PID}\n")
        return ("ACTIVITY MANAGER ACTIVITIES (dumpsys activity activities)\n"
                "Display #0 (activities from top to bottom):\n"
                f"  * Task{{a2b4c6 #{TASK_ID} type=standard A={APP_UID}:{package} U=0 "
                "visible=true}\n"
                f"    * Hist  #0: {record}\n\n  ResumedActivity: {record}\n\n"
                f"  mResumedActivity: {record}\n  mFocusedApp={record}\n")

    def _power(self, args: list[str]) -> str:
        on = self.phone.screen_on
        return ("POWER MANAGER (dumpsys power)\n\nPower Manager State:\n  mDirty=0x0\n"
                f"  mWakefulness={'Awake' if on else 'Asleep'}\n  mIsPowered=true\n"
                "  mPlugType=2\n  mBatteryLevel=87\n  mDisplayReady=true\n"
                "  mHoldingWakeLockSuspendBlocker=false\n"
                f"  mHoldingDisplaySuspendBlocker={'true' if on else 'false'}\n\n"
                f"Display Power: state={'ON' if on else 'OFF'}\n")

    def _battery(self, args: list[str]) -> str:
        return ("Current Battery Service state:\n  AC powered: false\n  USB powered: true\n"
                "  Wireless powered: false\n  Dock powered: false\n"
                "  Max charging current: 500000\n  Max charging voltage: 5000000\n"
                "  Charge counter: 2900000\n  status: 2\n  health: 2\n  present: true\n"
                "  level: 87\n  scale: 100\n  voltage: 4200\n  temperature: 250\n"
                "  technology: Li-ion\n")

    def _package(self, args: list[str]) -> str:
        name = args[0] if args else ""
        if name not in PACKAGES:
            return ""
        code_path = package_path(name).rsplit("/", 1)[0]
        return (f"Packages:\n  Package [{name}] (a1b2c3d):\n    userId={APP_UID}\n"
                f"    pkg=Package{{a1b2c3d {name}}}\n    codePath={code_path}\n"
                "    versionCode=1 minSdk=26 targetSdk=33\n    versionName=1.0.0\n"
                "    flags=[ HAS_CODE ALLOW_CLEAR_USER_DATA ALLOW_BACKUP ]\n"
                "    signatures=PackageSignatures{d4e5f6 version:2, signatures:[b0bb1e5], "
                "past signatures:[]}\n"
                "    pkgFlags=[ HAS_CODE ALLOW_CLEAR_USER_DATA ALLOW_BACKUP ]\n"
                "    firstInstallTime=2026-01-05 12:00:00\n"
                "    lastUpdateTime=2026-01-05 12:00:00\n")

    # getevent ------------------------------------------------------------------------------
    async def getevent(self, ctx: CommandContext) -> int:
        try:
            options = GeteventOptions.parse(ctx.argv[1:])
        except ValueError as error:
            await ctx.stderr.write(f"getevent: {error}\nUsage: getevent [-t] [-n] [-s "
                                   "switchmask] [-S] [-v [mask]] [-d] [-p] [-i] [-l] [-q] "
                                   "[-c count] [-r] [device]\n")
            return 1
        if options.device not in (None, TOUCH_DEVICE):
            await ctx.stderr.write(f"could not open {options.device}, No such file or "
                                   "directory\n")
            return 1
        queue = self.phone.events.subscribe()  # before the header: no event slips between
        try:
            for line in self._header(options).splitlines(keepends=True):  # flushed per line
                await ctx.stdout.write(line)
            if options.dont_block:
                return 0
            await self._stream(ctx, queue, options)
        finally:
            self.phone.events.unsubscribe(queue)
        return 0

    def _header(self, o: GeteventOptions) -> str:
        text = f"add device 1: {TOUCH_DEVICE}\n" if o.show_device else ""
        if o.info:
            text += "  bus:      0000\n  vendor    0000\n  product   0000\n  version   0000\n"
        text += f'  name:     "{TOUCH_NAME}"\n' if o.show_name else ""
        if o.info:
            text += '  location: ""\n  id:       ""\n  version:  1.0.1\n'
        return text + (possible_events(self.phone.touchscreen, o.labels) if o.possible else "")

    async def _stream(self, ctx: CommandContext, queue: asyncio.Queue,
                      o: GeteventOptions) -> None:
        cancelled = asyncio.create_task(ctx.cancelled.wait())
        remaining = o.count
        try:
            while True:
                getting = asyncio.create_task(queue.get())
                await asyncio.wait({getting, cancelled}, return_when=asyncio.FIRST_COMPLETED)
                if not getting.done():
                    getting.cancel()
                    return
                event: InputEvent = getting.result()
                line = format_event(event, o.labels, o.timestamps,
                                    TOUCH_DEVICE if o.prefix_device else None)
                await ctx.stdout.write(line if o.newline else line[:-1])
                remaining -= 1
                if remaining == 0:
                    return
        finally:
            cancelled.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cancelled


@dataclass
class GeteventOptions:
    device: str | None = None  # the one input device to read; None: all of them
    count: int = 0  # events to print; 0: until cancelled
    dont_block: bool = False
    # what the header shows before the events
    show_device: bool = False
    show_name: bool = False
    possible: bool = False
    info: bool = False
    # how each event line looks
    timestamps: bool = False
    labels: bool = False
    prefix_device: bool = False
    newline: bool = True

    @classmethod
    def parse(cls, args: list[str]) -> GeteventOptions:
        """getopt("tns:Sv::dpilqc:rh") as getevent_main reads it."""
        o, flags_set, block = cls(), False, None
        operands: list[str] = []
        index = 0
        while index < len(args):
            arg, index = args[index], index + 1
            if not arg.startswith("-") or arg == "-":
                operands.append(arg)
                continue
            letters = arg[1:]
            while letters:
                letter, letters = letters[0], letters[1:]
                if letter == "v":  # -v[mask]: an optional verbosity mask, attached
                    o.show_device = o.show_name = o.info = flags_set = True
                    letters = ""
                    continue
                if letter in "cs":  # takes a value: the rest of this arg or the next one
                    value = letters or (args[index] if index < len(args) else "")
                    index += 0 if letters else 1
                    letters = ""
                    if letter == "c":
                        o.count, block = int(value) if value.isdigit() else 0, False
                    continue
                flags_set, block = o._flag(letter, flags_set, block)
        if len(operands) > 1:
            raise ValueError("too many arguments")
        o.device = operands[0] if operands else None
        o.dont_block = bool(block)
        if not flags_set:
            o.show_device = o.show_name = o.device is None
        o.prefix_device = o.device is None
        return o

    def _flag(self, letter: str, flags_set: bool, block: bool | None) -> tuple[bool, bool | None]:
        simple = {"t": "timestamps", "l": "labels"}
        if letter in simple:
            setattr(self, simple[letter], True)
        elif letter == "n":
            self.newline = False
        elif letter in "pi":
            self.show_device = self.show_name = self.possible = True
            self.info = self.info or letter == "i"
            return True, True if block is None else block
        elif letter == "q":
            return True, block
        elif letter not in "Srd":
            raise ValueError(f"invalid option -{letter}")
        return flags_set, block
