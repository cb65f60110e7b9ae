"""A farm of virtual phones on this machine: one process per phone, each attached to the adb
server with `adb connect`, each logged into its own account on a simulated platform.

The farm's record (`farm.json` in its folder) lists the phones, their ports and processes, so
`farm list` and `farm down` work from any later shell. The virtual scrcpy-server file that the
production client pushes to the phones is written beside it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import adbutils

from bubblescope.errors import ConfigError
from bubblescope.sim.android.errors import FarmError
from bubblescope.sim.android.server_jar import build_server_jar

DEFAULT_DIR = Path("~/.local/share/bubblescope").expanduser()
SCRCPY_VERSION = "3.3.4"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class FarmPhone:
    serial: str  # what adb calls it: 127.0.0.1:PORT
    name: str  # ro.serialno
    port: int
    pid: int
    platform: str
    account: str
    log: str


@dataclass(frozen=True)
class FarmRecord:
    phones: tuple[FarmPhone, ...]
    adb_port: int
    jar: str
    time_warp: float
    seed: int = 0
    catalogue_videos: int = 20_000

    def save(self, folder: Path) -> None:
        data = {**asdict(self), "phones": [asdict(p) for p in self.phones]}
        temporary = folder / "farm.json.tmp"
        temporary.write_text(json.dumps(data, indent=1), encoding="utf-8")
        temporary.replace(folder / "farm.json")

    @classmethod
    def load(cls, folder: Path) -> FarmRecord | None:
        path = folder / "farm.json"
        if not path.is_file():
            return None
        data = json.loads(path.read_text("utf-8"))
        data["phones"] = tuple(FarmPhone(**p) for p in data["phones"])
        return cls(**data)


def write_server_jar(folder: Path, version: str = SCRCPY_VERSION) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "scrcpy-server"
    path.write_bytes(build_server_jar(version))
    return path


def _start_phone(folder: Path, index: int, platform: str, seed: int, time_warp: float,
                 catalogue_videos: int, port: int = 0) -> tuple[subprocess.Popen, Path, str, Path]:
    name = f"bubble-{index:02d}"
    port_file = folder / "phones" / f"{name}.port"
    port_file.unlink(missing_ok=True)
    log = folder / "phones" / f"{name}.log"
    account = f"{name}-account"
    command = [sys.executable, "-m", "bubblescope.sim.android.phone_device", "--serial", name,
               "--port-file", str(port_file), "--platform", platform, "--account", account,
               "--seed", str(seed), "--time-warp", str(time_warp),
               "--catalogue-videos", str(catalogue_videos),
               "--state-dir", str(folder / "platform-state"), "--port", str(port)]
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    return process, port_file, account, log


def _wait_port(process: subprocess.Popen, port_file: Path, log: Path) -> int:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not port_file.is_file():
        if process.poll() is not None:
            raise FarmError(f"virtual phone exited with {process.returncode}; see {log}")
        if time.monotonic() > deadline:
            process.kill()
            raise FarmError(f"virtual phone did not start within {START_TIMEOUT_S:g} s; see {log}")
        time.sleep(0.05)
    return int(port_file.read_text().strip())


def adb_client(adb_port: int) -> adbutils.AdbClient:
    """The adb server on `adb_port`, started with the system adb if it is not running."""
    client = adbutils.AdbClient(host="127.0.0.1", port=adb_port, socket_timeout=15)
    try:
        client.server_version()
    except (adbutils.AdbError, OSError):
        try:
            subprocess.run(["adb", "-P", str(adb_port), "start-server"], check=True,
                           capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            raise FarmError(f"no adb server on port {adb_port} and `adb start-server` failed "
                            f"({exc}); install Debian's adb") from exc
    return client


def farm_up(folder: Path, devices: int, platform: str = "douyin-like", seed: int = 0,
            time_warp: float = 1.0, adb_port: int = 5037,
            catalogue_videos: int = 20_000) -> FarmRecord:
    if devices < 1:
        raise ConfigError("a farm needs at least one device", key="--devices")
    if FarmRecord.load(folder) is not None:
        raise FarmError(f"a farm is already up in {folder}; `bubblescope farm down` first")
    (folder / "phones").mkdir(parents=True, exist_ok=True)
    jar = write_server_jar(folder)
    client = adb_client(adb_port)
    started = [_start_phone(folder, i, platform, seed, time_warp, catalogue_videos)
               for i in range(devices)]
    phones = []
    for index, (process, port_file, account, log) in enumerate(started):
        port = _wait_port(process, port_file, log)
        serial = f"127.0.0.1:{port}"
        client.connect(serial, timeout=10)
        phones.append(FarmPhone(serial, f"bubble-{index:02d}", port, process.pid, platform,
                                account, str(log)))
    record = FarmRecord(tuple(phones), adb_port, str(jar), time_warp, seed, catalogue_videos)
    record.save(folder)
    _wait_online(client, [p.serial for p in phones])
    return record


def _wait_online(client: adbutils.AdbClient, serials: list[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        states = {d.serial: d.state for d in client.list()}
        missing = [s for s in serials if states.get(s) != "device"]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise FarmError(f"adb does not list {missing} as online")
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def farm_status(folder: Path) -> list[dict]:
    record = FarmRecord.load(folder)
    if record is None:
        return []
    try:
        states = {d.serial: d.state for d in adb_client(record.adb_port).list()}
    except (adbutils.AdbError, OSError, FarmError):
        states = {}
    return [{**asdict(p), "process": "running" if _alive(p.pid) else "dead",
             "adb": states.get(p.serial, "absent")} for p in record.phones]


def farm_down(folder: Path) -> int:
    record = FarmRecord.load(folder)
    if record is None:
        return 0
    try:
        client = adb_client(record.adb_port)
        for phone in record.phones:
            client.disconnect(phone.serial)
    except (adbutils.AdbError, OSError, FarmError):
        pass  # the adb server is gone: nothing to disconnect
    for phone in record.phones:
        _stop(phone.pid)
    (folder / "farm.json").unlink(missing_ok=True)
    return len(record.phones)


def _stop(pid: int) -> None:
    if not _alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


def restart_phone(folder: Path, name: str, kill: bool = True) -> FarmPhone:
    """Kill a phone's process (as a crash would) and start it again on the same port; adb
    reattaches it. The platform's account state survives in the farm's state folder."""
    record = FarmRecord.load(folder)
    if record is None:
        raise FarmError(f"no farm in {folder}")
    index, phone = next(((i, p) for i, p in enumerate(record.phones) if p.name == name),
                        (None, None))
    if phone is None:
        raise FarmError(f"no phone {name!r} in the farm; see `bubblescope farm list`")
    if kill and _alive(phone.pid):
        os.kill(phone.pid, signal.SIGKILL)
    process, port_file, _, log = _start_phone(folder, index, phone.platform, record.seed,
                                              record.time_warp, record.catalogue_videos,
                                              port=phone.port)
    _wait_port(process, port_file, log)
    adb_client(record.adb_port).connect(phone.serial, timeout=10)
    revived = FarmPhone(phone.serial, phone.name, phone.port, process.pid, phone.platform,
                        phone.account, phone.log)
    phones = tuple(revived if p.name == name else p for p in record.phones)
    dataclasses.replace(record, phones=phones).save(folder)
    return revived
