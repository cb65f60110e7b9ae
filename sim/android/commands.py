"""The contract between the virtual device's shell and the programs it runs.

The ADB side (transport, services, the shell-language interpreter) knows nothing of the
phone; the phone (the simulated OS and short-video app) registers its programs here. A
program is an async callable taking a `CommandContext`; it writes to stdout/stderr as it
goes (streaming programs such as `getevent` or the scrcpy server run until cancelled or
until their input closes) and returns an exit status.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field


class OutputStream:
    """Where a program's stdout or stderr goes: bytes, in order, with back-pressure."""

    def __init__(self, sink: Callable[[bytes], Awaitable[None]]) -> None:
        self._sink = sink

    async def write(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        if data:
            await self._sink(data)


@dataclass
class CommandContext:
    argv: list[str]  # argv[0] is the program name, after quote removal and expansion
    env: Mapping[str, str]  # VAR=value prefixes and the shell's environment
    stdout: OutputStream
    stderr: OutputStream
    stdin: asyncio.StreamReader | None = None  # None when the shell service has no stdin
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)  # the stream was closed


Program = Callable[[CommandContext], Awaitable[int]]


@dataclass
class ProgramRegistry:
    """Programs by name (`getprop`, `input`, `uiautomator`, `app_process`, ...)."""

    programs: dict[str, Program] = field(default_factory=dict)

    def register(self, name: str, program: Program) -> None:
        self.programs[name] = program

    def get(self, name: str) -> Program | None:
        return self.programs.get(name)
