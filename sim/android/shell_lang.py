"""The device's `/system/bin/sh`: runs parsed command lines against the device's programs.

Programs are found by name, first among the phone's programs (the ProgramRegistry), then in
the toolbox; the caller passes that lookup in. A few things must be builtins because they act
on the shell itself: `exit`, `cd`, `export`, `which`, `sh`. Error texts and statuses follow
Android's mksh: an unknown program prints `/system/bin/sh: NAME: inaccessible or not found`
and gives 127; a syntax error gives 1.
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace

from bubblescope.sim.android.commands import CommandContext, OutputStream, Program
from bubblescope.sim.android.errors import ShellSyntaxError, StreamClosedError
from bubblescope.sim.android.filesystem import VirtualFileSystem
from bubblescope.sim.android.shell_io import SH, ShellIO, redirected
from bubblescope.sim.android.shell_parse import AndOr, Command, Pipeline, Word, parse

logger = logging.getLogger(__name__)

BIN_DIRS = frozenset({"/system/bin", "/system/xbin", "/vendor/bin", "/bin", "/sbin"})
DEFAULT_ENV = {"PATH": "/product/bin:/apex/com.android.runtime/bin:/system/bin:/system/xbin",
               "HOME": "/", "PWD": "/", "USER": "shell", "SHELL": SH, "TMPDIR": "/data/local/tmp",
               "ANDROID_DATA": "/data", "ANDROID_ROOT": "/system", "EXTERNAL_STORAGE": "/sdcard"}
FAKE_PID = "4242"

Lookup = Callable[[str], "Program | None"]
Builtin = Callable[[list[str], "ShellIO"], Awaitable[int]]


class ShellExit(Exception):
    """`exit N`: unwinds the script; Shell.run turns it into the status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class Shell:
    def __init__(self, lookup: Lookup, fs: VirtualFileSystem | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self._lookup = lookup
        self.fs = fs
        self.vars: dict[str, str] = {**DEFAULT_ENV, **(env or {})}
        self.status = 0
        self.exited = False  # set once `exit` ran: an interactive loop stops reading
        self._builtins: dict[str, Builtin] = {
            "exit": self._exit, "cd": self._cd, "export": self._export, "which": self._which,
            "sh": self._sh,
        }

    async def run(self, script: str, io: ShellIO) -> int:
        """Run a whole command line; the status is that of the last command run (`$?`)."""
        try:
            items = parse(script)
        except ShellSyntaxError as error:
            await io.stderr.write(f"{SH}: {error}\n")
            self.status = 1
            return 1
        try:
            for item in items:
                await self._run_and_or(item, io)
        except ShellExit as done:
            self.status = done.status & 0xFF
            self.exited = True
        return self.status

    async def _run_and_or(self, item: AndOr, io: ShellIO) -> None:
        self.status = await self._run_pipeline(item.first, io)
        for op, pipeline in item.rest:
            if (op == "&&") == (self.status == 0):
                self.status = await self._run_pipeline(pipeline, io)

    async def _run_pipeline(self, pipeline: Pipeline, io: ShellIO) -> int:
        if len(pipeline.commands) == 1:
            status = await self._run_command(pipeline.commands[0], io)
        else:
            status = await self._run_piped(pipeline.commands, io)
        return int(status == 0) if pipeline.negate else status

    async def _run_piped(self, commands: list[Command], io: ShellIO) -> int:
        """`a | b`: stages run concurrently; when the last ends, earlier ones are cancelled
        (the way SIGPIPE ends a writer whose reader has gone)."""
        pipes = [asyncio.StreamReader() for _ in commands[:-1]]
        tasks = []
        for index, command in enumerate(commands):
            stage_io = replace(io, stdin=pipes[index - 1] if index else io.stdin)
            if index < len(pipes):
                stage_io.stdout = OutputStream(_feeder(pipes[index]))
            tasks.append(asyncio.create_task(self._stage(command, stage_io, pipes, index)))
        try:
            return await tasks[-1]
        finally:
            for task in tasks[:-1]:
                task.cancel()
            await asyncio.gather(*tasks[:-1], return_exceptions=True)

    async def _stage(self, command: Command, io: ShellIO, pipes: list[asyncio.StreamReader],
                     index: int) -> int:
        try:
            return await self._run_command(command, io)
        finally:
            if index < len(pipes):
                pipes[index].feed_eof()

    async def _run_command(self, command: Command, io: ShellIO) -> int:
        argv = [arg for word in command.words for arg in self.expand(word)]
        env = {name: self.expand_joined(word) for name, word in command.assignments}
        targets = [(r.fd, r.op, self.expand_joined(r.target)) for r in command.redirects]
        async with redirected(targets, io, self.fs, self.vars["PWD"]) as cio:
            if cio is None:
                return 1
            if not argv:
                self.vars.update(env)
                return 0
            return await self._invoke(argv, env, cio)

    async def _invoke(self, argv: list[str], env: dict[str, str], io: ShellIO) -> int:
        builtin = self._builtins.get(argv[0])
        if builtin is not None:
            return await builtin(argv, io)
        program = self.find(argv[0])
        if program is None:
            await io.stderr.write(f"{SH}: {argv[0]}: inaccessible or not found\n")
            return 127
        ctx = CommandContext(argv=argv, env={**self.vars, **env}, stdout=io.stdout,
                             stderr=io.stderr, stdin=io.stdin, cancelled=io.cancelled)
        try:
            status = await program(ctx)
        except (StreamClosedError, ShellExit):
            raise
        except Exception as error:
            logger.exception("program %r failed", argv[0])
            await io.stderr.write(f"{argv[0]}: {error}\n")
            return 1
        return int(status or 0) & 0xFF

    def find(self, name: str) -> Program | None:
        """A program by bare name or by its path in a bin directory (`/system/bin/ls`)."""
        if "/" in name:
            directory, name = posixpath.split(posixpath.normpath(name))
            if directory not in BIN_DIRS:
                return None
        return self._lookup(name) if name else None

    # -- expansion -------------------------------------------------------------------------

    def variable(self, name: str) -> str:
        special = {"?": str(self.status), "$": FAKE_PID, "#": "0", "0": SH, "!": ""}
        if name in special:
            return special[name]
        return self.vars.get(name, "")

    def expand(self, word: Word) -> list[str]:
        """A word's fields: unquoted expansions are split on whitespace, and a word made only
        of empty unquoted expansions disappears (POSIX field splitting, IFS = blanks)."""
        fields: list[str] = []
        current, present = "", False
        for part in word:
            value = self.variable(part.text) if part.var else part.text
            if part.quoted or not part.var:
                current += value
                present = present or part.quoted or bool(value)
                continue
            pieces = value.split()
            if value[:1].isspace() and present:
                fields.append(current)
                current, present = "", False
            for index, piece in enumerate(pieces):
                if index:
                    fields.append(current)
                    current = ""
                current += piece
                present = True
            if value[-1:].isspace() and present:
                fields.append(current)
                current, present = "", False
        if present:
            fields.append(current)
        return fields

    def expand_joined(self, word: Word) -> str:
        """A word expanded without field splitting (assignments, redirection targets)."""
        return "".join(self.variable(p.text) if p.var else p.text for p in word)

    # -- builtins --------------------------------------------------------------------------

    async def _exit(self, argv: list[str], io: ShellIO) -> int:
        try:
            status = int(argv[1]) if len(argv) > 1 else self.status
        except ValueError:
            await io.stderr.write(f"{SH}: exit: {argv[1]}: bad number\n")
            status = 1
        raise ShellExit(status)

    async def _cd(self, argv: list[str], io: ShellIO) -> int:
        target = posixpath.join(self.vars["PWD"], argv[1] if len(argv) > 1 else "/")
        target = posixpath.normpath(target)
        found = self.fs.stat(target) if self.fs else None
        if found is None or not found[0] & 0o040000:
            await io.stderr.write(f"{SH}: cd: {target}: No such file or directory\n")
            return 1
        self.vars["PWD"] = target
        return 0

    async def _export(self, argv: list[str], io: ShellIO) -> int:
        for arg in argv[1:]:
            name, sep, value = arg.partition("=")
            if sep:
                self.vars[name] = value
        return 0

    async def _which(self, argv: list[str], io: ShellIO) -> int:
        status = 0
        for name in argv[1:]:
            if name in self._builtins or self.find(name) is not None:
                await io.stdout.write(f"/system/bin/{posixpath.basename(name)}\n")
            else:
                status = 1
        return status

    async def _sh(self, argv: list[str], io: ShellIO) -> int:
        """`sh -c SCRIPT`, `sh FILE`, or `sh` reading its script from stdin."""
        child = Shell(self._lookup, self.fs, self.vars)
        if len(argv) > 2 and argv[1] == "-c":
            return await child.run(argv[2], io)
        if len(argv) > 1:
            try:
                script = self.fs.read(posixpath.join(self.vars["PWD"], argv[1])) if self.fs \
                    else b""
            except OSError:
                await io.stderr.write(f"{SH}: {argv[1]}: No such file or directory\n")
                return 127
            return await child.run(script.decode("utf-8", errors="replace"), io)
        script = await io.stdin.read() if io.stdin is not None else b""
        return await child.run(script.decode("utf-8", errors="replace"), io)


def _feeder(pipe: asyncio.StreamReader) -> Callable[[bytes], Awaitable[None]]:
    async def feed(data: bytes) -> None:
        pipe.feed_data(data)
        await asyncio.sleep(0)  # let the reader run: a pipe, not an unbounded buffer

    return feed
