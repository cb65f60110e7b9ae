"""Toybox's line filters for pipelines: `grep`, `head`, `tail`.

They read stdin line by line as it arrives, so `getevent -lt | grep ABS_MT` prints matches
while the producer keeps running, and `head` ends early (the shell then cancels the writer,
as SIGPIPE would).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import AsyncIterator, Callable

from bubblescope.sim.android.commands import CommandContext
from bubblescope.sim.android.filesystem import VirtualFileSystem

Resolve = Callable[[CommandContext, str], str]


async def iter_lines(ctx: CommandContext, fs: VirtualFileSystem, paths: list[str]
                     ) -> AsyncIterator[str]:
    """Lines (without their newline) of the given files, or of stdin when there are none."""
    if paths:
        for path in paths:
            for line in fs.read(path).decode("utf-8", errors="replace").splitlines():
                yield line
        return
    if ctx.stdin is None:
        return
    while raw := await ctx.stdin.readline():
        yield raw.decode("utf-8", errors="replace").rstrip("\n")


async def missing_files(ctx: CommandContext, fs: VirtualFileSystem, tool: str,
                        names: list[str], resolve: Resolve) -> bool:
    """Print toybox's error for each missing file; True when any is missing."""
    missing = [name for name in names if fs.stat(resolve(ctx, name)) is None]
    for name in missing:
        await ctx.stderr.write(f"{tool}: {name}: No such file or directory\n")
    return bool(missing)


def line_count(flags: set[str], args: list[str], default: int = 10) -> tuple[int, list[str]]:
    """`-n N` / `-N` for head and tail (split_flags has already eaten `-N` digits)."""
    digits = "".join(flag for flag in flags if flag.isdigit())
    if digits:
        return int(digits), args
    if "n" in flags and args:
        return int(args[0]), args[1:]
    return default, args


async def grep(ctx: CommandContext, fs: VirtualFileSystem, flags: set[str], args: list[str],
               resolve: Resolve) -> int:
    """`grep [-v] [-i] [-q] [-c] [-F] [-E] PATTERN [FILE...]`; Python regex syntax."""
    if not args:
        await ctx.stderr.write("grep: Needs 1 argument\n")
        return 2
    if await missing_files(ctx, fs, "grep", args[1:], resolve):
        return 2
    pattern = re.compile(re.escape(args[0]) if "F" in flags else args[0],
                         re.IGNORECASE if "i" in flags else 0)
    count = 0
    async for line in iter_lines(ctx, fs, [resolve(ctx, name) for name in args[1:]]):
        if bool(pattern.search(line)) == ("v" in flags):
            continue
        count += 1
        if "q" in flags:
            return 0
        if "c" not in flags:
            await ctx.stdout.write(line + "\n")
    if "c" in flags:
        await ctx.stdout.write(f"{count}\n")
    return 0 if count else 1


async def head(ctx: CommandContext, fs: VirtualFileSystem, flags: set[str], args: list[str],
               resolve: Resolve) -> int:
    wanted, names = line_count(flags, args)
    if await missing_files(ctx, fs, "head", names, resolve):
        return 1
    seen = 0
    if wanted <= 0:
        return 0
    async for line in iter_lines(ctx, fs, [resolve(ctx, name) for name in names]):
        await ctx.stdout.write(line + "\n")
        seen += 1
        if seen >= wanted:
            break  # without waiting for more input: a streaming writer may never end
    return 0


async def tail(ctx: CommandContext, fs: VirtualFileSystem, flags: set[str], args: list[str],
               resolve: Resolve) -> int:
    wanted, names = line_count(flags, args)
    if await missing_files(ctx, fs, "tail", names, resolve):
        return 1
    last: deque[str] = deque(maxlen=max(wanted, 0))
    async for line in iter_lines(ctx, fs, [resolve(ctx, name) for name in names]):
        last.append(line)
    await ctx.stdout.write("".join(line + "\n" for line in last))
    return 0
