"""The one way a test stops a process it started: by its PID, SIGTERM first, then SIGKILL.

Never by name (pkill, killall): other people's processes share the machine. With `group=True`
the process (one started with `start_new_session=True`) is stopped first, so it can stop its
own children, and then whatever is left of the process group it leads is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
from contextlib import suppress

from tests.support.wait import wait_for

Process = subprocess.Popen | int


def stop_process(process: Process, timeout_s: float = 10.0, *, group: bool = False) -> int | None:
    """Stop `process` (a Popen or a PID): SIGTERM, wait up to `timeout_s`, then SIGKILL and wait
    again. Returns the exit status where it is known (a Popen, or a child PID)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if _exited(process):
            break
        _signal(process, sig, group=False)
        with suppress(AssertionError):
            wait_for(lambda: _exited(process), timeout_s, what=f"pid {_pid(process)} to exit")
    if not _exited(process):
        raise AssertionError(f"pid {_pid(process)} survived SIGKILL for {timeout_s:g} s")
    if group:  # the leader is gone; what it started may not be
        _signal(process, signal.SIGKILL, group=True)
    return process.returncode if isinstance(process, subprocess.Popen) else None


def _pid(process: Process) -> int:
    return process.pid if isinstance(process, subprocess.Popen) else process


def _signal(process: Process, sig: signal.Signals, group: bool) -> None:
    with suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(_pid(process), sig)
        else:
            os.kill(_pid(process), sig)


def _exited(process: Process) -> bool:
    if isinstance(process, subprocess.Popen):
        return process.poll() is not None
    with suppress(ChildProcessError):  # our child: reap it, or it lingers as a zombie
        if os.waitpid(process, os.WNOHANG)[0] == process:
            return True
    try:
        os.kill(process, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
