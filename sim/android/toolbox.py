"""The OS-level programs every Android device has (toybox's), over the virtual file system,
the device's property table and its clock.

Outputs and error texts mimic toybox on Android 14 where clients might parse them: `getprop`
prints `[key]: [value]` lines, an unknown property is an empty line, `date +%s` is the device
clock's epoch second. Phone programs (`input`, `am`, `uiautomator`...) are not here: the phone
registers them in the ProgramRegistry, which the shell searches first.
"""

from __future__ import annotations

import asyncio
import posixpath
import re
import stat
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime

from bubblescope.sim.android import toolbox_text
from bubblescope.sim.android.commands import CommandContext, Program
from bubblescope.sim.android.filesystem import VirtualFileSystem

ID_TEXT = ("uid=2000(shell) gid=2000(shell) groups=2000(shell),1004(input),1007(log),"
           "1011(adb),1015(sdcard_rw),1028(sdcard_r),3003(inet) context=u:r:shell:s0")
_ECHO_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
                 "\\": "\\", "e": "\x1b"}


def split_flags(args: list[str]) -> tuple[set[str], list[str]]:
    """Single-letter flags (`-rf` = r, f) before the operands; `--` ends them."""
    flags: set[str] = set()
    index = 0
    while index < len(args) and args[index].startswith("-") and len(args[index]) > 1:
        if args[index] == "--":
            index += 1
            break
        flags.update(args[index][1:])
        index += 1
    return flags, args[index:]


def resolve(ctx: CommandContext, path: str) -> str:
    return posixpath.normpath(posixpath.join(ctx.env.get("PWD", "/"), path))


def is_dir(fs: VirtualFileSystem, path: str) -> bool:
    found = fs.stat(path)
    return found is not None and stat.S_ISDIR(found[0])


class Toolbox:
    def __init__(self, fs: VirtualFileSystem, props: MutableMapping[str, str],
                 clock: Callable[[], float]) -> None:
        self.fs = fs
        self.props = props  # the device's live property table (setprop writes here)
        self.clock = clock
        self._programs: dict[str, Program] = {
            "echo": self.echo, "true": self.true, "false": self.false, "cat": self.cat,
            "ls": self.ls, "rm": self.rm, "mkdir": self.mkdir, "sleep": self.sleep,
            "getprop": self.getprop, "setprop": self.setprop, "date": self.date, "id": self.id,
            "whoami": self.whoami, "grep": self.grep, "head": self.head, "tail": self.tail,
        }

    def get(self, name: str) -> Program | None:
        return self._programs.get(name)

    def names(self) -> list[str]:
        return sorted(self._programs)

    async def true(self, ctx: CommandContext) -> int:
        return 0

    async def false(self, ctx: CommandContext) -> int:
        return 1

    async def echo(self, ctx: CommandContext) -> int:
        args = ctx.argv[1:]
        newline, escapes = True, False
        while args and re.fullmatch(r"-[neE]+", args[0]):
            newline = newline and "n" not in args[0]
            escapes = "e" in args[0] if "E" not in args[0] else False
            args = args[1:]
        text = " ".join(args)
        if escapes:
            text, stop = _unescape(text)
            newline = newline and not stop
        await ctx.stdout.write(text + ("\n" if newline else ""))
        return 0

    async def cat(self, ctx: CommandContext) -> int:
        status = 0
        for name in ctx.argv[1:] or ["-"]:
            if name == "-":
                await _copy_stdin(ctx)
                continue
            try:
                await ctx.stdout.write(self.fs.read(resolve(ctx, name)))
            except IsADirectoryError:
                await ctx.stderr.write(f"cat: {name}: Is a directory\n")
                status = 1
            except (FileNotFoundError, ValueError):
                await ctx.stderr.write(f"cat: {name}: No such file or directory\n")
                status = 1
        return status

    async def ls(self, ctx: CommandContext) -> int:
        flags, names = split_flags(ctx.argv[1:])
        status = 0
        for index, name in enumerate(names or ["."]):
            path = resolve(ctx, name)
            found = self.fs.stat(path)
            if found is None:
                await ctx.stderr.write(f"ls: {name}: No such file or directory\n")
                status = 1
                continue
            if len(names) > 1 and stat.S_ISDIR(found[0]):
                await ctx.stdout.write(("\n" if index else "") + f"{name}:\n")
            entries = self._entries(path, name, flags) if stat.S_ISDIR(found[0]) else [(name, path)]
            for shown, full in entries:
                await ctx.stdout.write(self._ls_line(shown, full, "l" in flags) + "\n")
        return status

    def _entries(self, path: str, name: str, flags: set[str]) -> list[tuple[str, str]]:
        if "d" in flags:
            return [(name, path)]
        children = [(child, posixpath.join(path, child)) for child in self.fs.listdir(path)]
        if "a" in flags:
            children = [(".", path), ("..", posixpath.dirname(path)), *children]
        return children

    def _ls_line(self, shown: str, path: str, long: bool) -> str:
        if not long:
            return shown
        mode, size, mtime = self.fs.stat(path) or (0, 0, 0)
        when = datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%d %H:%M")
        return f"{stat.filemode(mode)} 1 shell shell {size:>8} {when} {shown}"

    async def rm(self, ctx: CommandContext) -> int:
        flags, names = split_flags(ctx.argv[1:])
        if not names and "f" not in flags:
            await ctx.stderr.write("rm: Needs 1 argument\n")
            return 1
        status = 0
        for name in names:
            error = self._remove(resolve(ctx, name), recursive=bool(flags & {"r", "R"}))
            if error and not (error == "No such file or directory" and "f" in flags):
                await ctx.stderr.write(f"rm: {name}: {error}\n")
                status = 1
        return status

    def _remove(self, path: str, recursive: bool) -> str | None:
        found = self.fs.stat(path)
        if found is None:
            return "No such file or directory"
        if stat.S_ISDIR(found[0]):
            if not recursive:
                return "Is a directory"
            for child in self.fs.listdir(path):
                self._remove(posixpath.join(path, child), recursive=True)
        self.fs.remove(path)
        return None

    async def mkdir(self, ctx: CommandContext) -> int:
        flags, names = split_flags(ctx.argv[1:])
        status = 0
        for name in names:
            path = resolve(ctx, name)
            error = None
            if self.fs.stat(path) is not None:
                error = None if "p" in flags and is_dir(self.fs, path) else "File exists"
            elif "p" not in flags and not is_dir(self.fs, posixpath.dirname(path)):
                error = "No such file or directory"
            if error is None:
                error = self._make_dir(path)
            if error:
                await ctx.stderr.write(f"mkdir: '{name}': {error}\n")
                status = 1
        return status

    def _make_dir(self, path: str) -> str | None:
        try:
            self.fs.mkdir(path, mtime=int(self.clock()))
        except NotADirectoryError:
            return "Not a directory"
        return None

    async def sleep(self, ctx: CommandContext) -> int:
        try:
            seconds = sum(float(arg) for arg in ctx.argv[1:])
        except ValueError:
            await ctx.stderr.write(f"sleep: invalid number '{' '.join(ctx.argv[1:])}'\n")
            return 1
        await asyncio.sleep(seconds)
        return 0

    async def getprop(self, ctx: CommandContext) -> int:
        args = ctx.argv[1:]
        if not args:
            lines = "".join(f"[{key}]: [{self.props[key]}]\n" for key in sorted(self.props))
            await ctx.stdout.write(lines)
            return 0
        default = args[1] if len(args) > 1 else ""
        await ctx.stdout.write(self.props.get(args[0], default) + "\n")
        return 0

    async def setprop(self, ctx: CommandContext) -> int:
        if len(ctx.argv) != 3:
            await ctx.stderr.write("setprop: Need 2 arguments\n")
            return 1
        self.props[ctx.argv[1]] = ctx.argv[2]
        return 0

    async def date(self, ctx: CommandContext) -> int:
        """The device clock in UTC: plain `date`, or `date +FORMAT` (`%s` and toybox's `%N`
        nanoseconds included)."""
        now = self.clock()
        moment = datetime.fromtimestamp(now, UTC)
        formats = [arg[1:] for arg in ctx.argv[1:] if arg.startswith("+")]
        if formats:
            pattern = formats[0].replace("%s", str(int(now)))
            pattern = pattern.replace("%N", f"{int(round(now % 1 * 1e9)) % 1_000_000_000:09d}")
            text = moment.strftime(pattern)
        else:
            text = f"{moment:%a %b} {moment.day:2d} {moment:%H:%M:%S} UTC {moment:%Y}"
        await ctx.stdout.write(text + "\n")
        return 0

    async def id(self, ctx: CommandContext) -> int:
        await ctx.stdout.write(ID_TEXT + "\n")
        return 0

    async def whoami(self, ctx: CommandContext) -> int:
        await ctx.stdout.write("shell\n")
        return 0

    async def grep(self, ctx: CommandContext) -> int:
        flags, args = split_flags(ctx.argv[1:])
        return await toolbox_text.grep(ctx, self.fs, flags, args, resolve)

    async def head(self, ctx: CommandContext) -> int:
        flags, args = split_flags(ctx.argv[1:])
        return await toolbox_text.head(ctx, self.fs, flags, args, resolve)

    async def tail(self, ctx: CommandContext) -> int:
        flags, args = split_flags(ctx.argv[1:])
        return await toolbox_text.tail(ctx, self.fs, flags, args, resolve)


async def _copy_stdin(ctx: CommandContext) -> None:
    if ctx.stdin is None:
        return
    while chunk := await ctx.stdin.read(65536):
        await ctx.stdout.write(chunk)


def _unescape(text: str) -> tuple[str, bool]:
    """echo -e: backslash escapes; `\\c` stops output (and the newline)."""
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        nxt = text[index + 1:index + 2]
        if char != "\\" or not nxt:
            out.append(char)
            index += 1
        elif nxt == "c":
            return "".join(out), True
        else:
            out.append(_ECHO_ESCAPES.get(nxt, "\\" + nxt))
            index += 2
    return "".join(out), False
