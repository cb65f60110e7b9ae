"""The device shell on its own: quoting, lists, `$?`, env prefixes, redirections, pipes,
unknown programs, and the toolbox programs clients parse."""

from __future__ import annotations

import asyncio
import shlex

from hypothesis import given, settings
from hypothesis import strategies as st

from bubblescope.sim.android.commands import CommandContext, ProgramRegistry
from bubblescope.sim.android.virtual_device import ShellResult, VirtualDevice

CLOCK = 1_767_614_400.0  # 2026-01-05 12:00:00 UTC


async def args_program(ctx: CommandContext) -> int:
    """Prints its arguments NUL-separated, so tests see exact word boundaries."""
    await ctx.stdout.write("\0".join(ctx.argv[1:]))
    return 0


async def env_program(ctx: CommandContext) -> int:
    await ctx.stdout.write("".join(f"{name}={ctx.env.get(name, '')}\n" for name in ctx.argv[1:]))
    return 0


async def uiautomator(ctx: CommandContext) -> int:
    """Stands in for the phone's uiautomator: writes the dump file through `sh`'s FS."""
    await ctx.stdout.write(f"UI hierchary dumped to: {ctx.argv[2]}\n")
    return 0


def make_device() -> VirtualDevice:
    programs = ProgramRegistry()
    programs.register("args", args_program)
    programs.register("showenv", env_program)
    programs.register("uiautomator", uiautomator)
    return VirtualDevice("shell-test", {"ro.product.model": "Pixel 7"}, programs,
                         clock=lambda: CLOCK)


def run(command: str, device: VirtualDevice | None = None) -> ShellResult:
    return asyncio.run((device or make_device()).run_shell(command))


def out(command: str, device: VirtualDevice | None = None) -> str:
    return run(command, device).stdout.decode()


def test_quotes_and_escapes() -> None:
    assert out("""args 'a b' "c \\"d\\" $HOME" e\\ f '' "" g'h'"i" """) == \
        "a b\0c \"d\" /\0e f\0\0\0ghi"


def test_backslash_in_double_quotes_keeps_unknown_escapes() -> None:
    assert out(r'args "a\nb" "\$x" "\\"') == "a\\nb\0$x\0\\"


@settings(max_examples=200, deadline=None)
@given(words=st.lists(st.text(st.characters(blacklist_characters="\0",
                                            blacklist_categories=("Cs",))), max_size=4))
def test_shlex_quote_round_trips(words: list[str]) -> None:
    """adbutils joins list arguments with shlex.quote: every word must come back intact."""
    assert out("args " + " ".join(shlex.quote(word) for word in words)) == "\0".join(words)


def test_lists_and_or() -> None:
    assert out("false && echo no; true || echo no2; false || echo yes; true && echo yes2") == \
        "yes\nyes2\n"
    assert out("echo a; echo b;") == "a\nb\n"
    assert out("echo a\necho b") == "a\nb\n"


def test_status_variable() -> None:
    assert out("false; echo $?; true; echo $?") == "1\n0\n"
    result = run("nosuch --flag; echo X4EXIT:$?")
    assert result.stdout == b"X4EXIT:127\n"
    assert result.stderr == b"/system/bin/sh: nosuch: inaccessible or not found\n"
    assert result.status == 0


def test_unknown_program_is_127() -> None:
    result = run("frobnicate")
    assert (result.status, result.stdout) == (127, b"")
    assert result.stderr == b"/system/bin/sh: frobnicate: inaccessible or not found\n"


def test_env_prefixes_reach_the_program_only() -> None:
    assert out("A=1 B='x y' showenv A B; echo \"[$A]\"") == "A=1\nB=x y\n[]\n"
    assert out("A=5; echo $A; export C=7; showenv C") == "5\nC=7\n"
    assert out("CLASSPATH=/data/local/tmp/s.jar showenv CLASSPATH") == \
        "CLASSPATH=/data/local/tmp/s.jar\n"


def test_field_splitting() -> None:
    assert out("X='a  b'; args $X \"$X\" ${X}c") == "a\0b\0a  b\0a\0bc"
    assert out("args a $UNSET \"$UNSET\" b") == "a\0\0b"  # the unquoted one disappears


def test_syntax_error_is_status_1() -> None:
    result = run("echo 'unterminated")
    assert result.status == 1
    assert result.stderr == b"/system/bin/sh: no closing quote\n"
    assert run("echo a &&").status == 1
    assert run("; ; echo a").stdout == b"a\n"


def test_exit_stops_the_script() -> None:
    result = run("echo a; exit 4; echo b")
    assert (result.status, result.stdout) == (4, b"a\n")
    assert run("false; exit").status == 1


def test_redirections() -> None:
    device = make_device()
    assert out("echo hi > /data/local/tmp/f; echo more >> /data/local/tmp/f; "
               "cat /data/local/tmp/f", device) == "hi\nmore\n"
    assert device.fs.read("/data/local/tmp/f") == b"hi\nmore\n"
    result = run("nosuch 2>&1; echo x >/dev/null; echo err >&2", device)
    assert result.stdout == b"/system/bin/sh: nosuch: inaccessible or not found\n"
    assert result.stderr == b"err\n"
    assert run("echo x > /nodir/f", device).status == 1
    assert out("cat < /data/local/tmp/f", device) == "hi\nmore\n"


def test_pipes() -> None:
    assert out("echo hello | grep ell") == "hello\n"
    assert run("echo x | grep -q y").status == 1
    assert out("getprop | grep -c ro.product.model") == "1\n"
    assert run("! false").status == 0
    assert out("getprop | head -n 2 | tail -1") == out("getprop").splitlines(True)[1]
    assert out("getprop | grep -v ro. | head -1").startswith("[persist.sys.timezone]")


def test_head_ends_a_streaming_pipeline() -> None:
    async def yes(ctx: CommandContext) -> int:
        while True:
            await ctx.stdout.write(b"y\n")

    device = make_device()
    device.programs.register("yes", yes)
    assert asyncio.run(asyncio.wait_for(device.run_shell("yes | head -3"), 5)).stdout == \
        b"y\ny\ny\n"


def test_adbutils_dump_hierarchy_line() -> None:
    device = make_device()
    device.fs.write("/data/local/tmp/uidump.xml", b"old")
    result = run("rm -f /data/local/tmp/uidump.xml; "
                 "uiautomator dump /data/local/tmp/uidump.xml && echo success", device)
    assert result.stdout.endswith(b"success\n")
    assert device.fs.stat("/data/local/tmp/uidump.xml") is None


def test_program_paths_and_which() -> None:
    assert out("/system/bin/echo hi") == "hi\n"
    assert run("/data/local/tmp/echo hi").status == 127
    assert out("which echo uiautomator") == "/system/bin/echo\n/system/bin/uiautomator\n"
    assert run("which nosuch").status == 1
    assert out("sh -c 'echo in; exit 3'; echo $?") == "in\n3\n"


def test_toolbox_getprop_and_props() -> None:
    device = make_device()
    listing = out("getprop", device)
    assert "[ro.product.model]: [Pixel 7]\n" in listing
    assert "[ro.serialno]: [shell-test]\n" in listing
    assert out("getprop ro.product.model; getprop no.such.prop", device) == "Pixel 7\n\n"
    assert out("setprop debug.x 5; getprop debug.x", device) == "5\n"


def test_props_are_a_live_view_of_the_phones_table() -> None:
    phone_props = {"ro.product.model": "Pixel 7"}
    device = VirtualDevice("live", phone_props, ProgramRegistry())
    run("setprop persist.x on", device)
    assert phone_props["persist.x"] == "on"
    phone_props["ro.product.model"] = "Pixel 8"
    assert out("getprop ro.product.model; getprop ro.serialno", device) == "Pixel 8\nlive\n"


def test_toolbox_date_uses_the_device_clock() -> None:
    assert out("date +%s") == f"{int(CLOCK)}\n"
    assert out("date") == "Mon Jan  5 12:00:00 UTC 2026\n"


def test_toolbox_files() -> None:
    device = make_device()
    assert run("mkdir /a/b", device).status == 1
    assert out("mkdir -p /a/b && echo x > /a/b/f && ls /a/b && ls /a", device) == "f\nb\n"
    result = run("rm /a", device)
    assert (result.status, result.stderr) == (1, b"rm: /a: Is a directory\n")
    assert run("rm -r /a && ls /a", device).stderr == b"ls: /a: No such file or directory\n"
    assert run("rm -f /nothing", device).status == 0
    assert run("rm /nothing", device).status == 1
    assert out("cat /nothing; echo $?", device) == "1\n"
    result = run("echo x > /data/f; mkdir -p /data/f/g", device)
    assert (result.status, result.stderr) == (1, b"mkdir: '/data/f/g': Not a directory\n")
    assert device.fs.stat("/data/f/g") is None


def test_toolbox_identity_and_echo() -> None:
    assert out("whoami") == "shell\n"
    assert out("id").startswith("uid=2000(shell) gid=2000(shell)")
    assert out("echo -n a; echo -e 'b\\tc'") == "ab\tc\n"


def test_a_running_program_is_cancellable() -> None:
    async def scenario() -> bool:
        device = make_device()
        ready = asyncio.Event()
        cancelled = asyncio.Event()

        async def forever(ctx: CommandContext) -> int:
            ready.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return 0

        device.programs.register("forever", forever)
        task = asyncio.create_task(device.run_shell("forever; echo never"))
        await asyncio.wait_for(ready.wait(), 5)
        task.cancel()
        await asyncio.wait({task}, timeout=5)
        return cancelled.is_set() and task.cancelled()

    assert asyncio.run(scenario())
