"""The device agent: one Ray actor per phone node, following that node's adb server.

It holds a `track-devices` connection to its own node's adb server (adb pushes the whole
device list on every change: a phone plugged in, unplugged, authorised or gone offline), looks
each new phone up once (model, Android version, screen size, which platform apps it has) and
sends the node's full phone list to the registry on every change and on a heartbeat. The
heartbeat is what rebuilds the registry after it restarts; the registry needs no store.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import adbutils

from bubblescope.actors.phone_nodes import PhoneNode

log = logging.getLogger(__name__)

HEARTBEAT_S = 2.0  # how stale the registry can be after it restarts
RETRY_S = 1.0  # pause before reconnecting to an adb server that dropped the connection
SOCKET_TIMEOUT_S = 10.0


@dataclass
class PhoneReport:
    serial: str
    state: str  # adb's: device, offline, unauthorized, ...
    model: str = ""
    android: str = ""
    screen: str = ""  # WIDTHxHEIGHT
    apps: list[str] = field(default_factory=list)  # app drivers whose package is installed


def parse_device_list(text: str) -> dict[str, str]:
    """adb's `serial<TAB>state` lines as {serial: state}."""
    found = {}
    for line in text.splitlines():
        serial, _, state = line.partition("\t")
        if serial.strip() and state.strip():
            found[serial.strip()] = state.strip()
    return found


def installed_apps(packages_output: str, app_packages: dict[str, str]) -> list[str]:
    """App drivers (name -> package) whose package `pm list packages` shows."""
    installed = {line.removeprefix("package:").strip() for line in packages_output.splitlines()}
    return sorted(name for name, package in app_packages.items() if package in installed)


def describe(client: adbutils.AdbClient, serial: str, app_packages: dict[str, str]) -> PhoneReport:
    device = client.device(serial)
    size = device.shell("wm size", timeout=SOCKET_TIMEOUT_S).strip()
    return PhoneReport(
        serial, "device", model=device.prop.model or "",
        android=device.getprop("ro.build.version.release") or "",
        screen=size.rsplit(":", 1)[-1].strip() if size else "",
        apps=installed_apps(device.shell("pm list packages", timeout=SOCKET_TIMEOUT_S),
                            app_packages))


class DeviceAgent:
    """Follows one node's adb server and reports its phones to the registry."""

    def __init__(self, node: PhoneNode, registry: Any, app_packages: dict[str, str]) -> None:
        self.node, self.registry, self.app_packages = node, registry, app_packages
        self.client = adbutils.AdbClient(host=node.adb_host, port=node.adb_port,
                                         socket_timeout=SOCKET_TIMEOUT_S)
        self._phones: dict[str, PhoneReport] = {}
        self._lock = threading.Lock()
        self._adb_error = ""
        self._stop = threading.Event()
        self._changed = threading.Event()
        threading.Thread(target=self._track, name="track-devices", daemon=True).start()
        threading.Thread(target=self._report, name="report", daemon=True).start()

    def phones(self) -> list[dict]:
        with self._lock:
            return [asdict(report) for report in self._phones.values()]

    def status(self) -> dict:
        return {"node": self.node.node_id, "adb": f"{self.node.adb_host}:{self.node.adb_port}",
                "adb_error": self._adb_error, "phones": len(self._phones)}

    def stop(self) -> None:
        self._stop.set()

    # -- following adb ------------------------------------------------------------------
    def _track(self) -> None:
        while not self._stop.is_set():
            try:
                with self.client.make_connection() as connection:
                    connection.send_command("host:track-devices")
                    connection.check_okay()
                    self._adb_error = ""
                    while not self._stop.is_set():
                        self._update(parse_device_list(self._read_list(connection)))
            except (adbutils.AdbError, OSError) as exc:
                message = f"adb server {self.node.adb_host}:{self.node.adb_port}: {exc}"
                if message != self._adb_error:
                    log.warning("node %s: %s", self.node.short, message)
                self._adb_error = message
                self._update({})  # an adb server that does not answer shows no phones
                self._stop.wait(RETRY_S)

    @staticmethod
    def _read_list(connection: Any) -> str:
        # track-devices sends nothing while nothing changes: an idle socket is not an error
        while True:
            try:
                return connection.read_string_block()
            except (adbutils.AdbTimeout, TimeoutError):
                continue

    def _update(self, states: dict[str, str]) -> None:
        with self._lock:
            known = dict(self._phones)
        # a phone that left stays listed, offline, so its run and the metrics can say so
        reports = {serial: replace(report, state="offline") for serial, report in known.items()
                   if serial not in states}
        for serial, state in states.items():
            report = known.get(serial)
            if state == "device" and (report is None or report.state != "device"):
                report = self._describe(serial)
            elif report is None or report.state != state:
                report = PhoneReport(serial, state, *(
                    (report.model, report.android, report.screen, report.apps) if report
                    else ()))
            reports[serial] = report
        with self._lock:
            changed = reports != self._phones
            self._phones = reports
        if changed:
            self._changed.set()

    def _describe(self, serial: str) -> PhoneReport:
        try:
            return describe(self.client, serial, self.app_packages)
        except (adbutils.AdbError, OSError) as exc:
            log.warning("node %s: cannot look up %s yet: %s", self.node.short, serial, exc)
            return PhoneReport(serial, "device")

    # -- reporting ----------------------------------------------------------------------
    def _report(self) -> None:
        while not self._stop.is_set():
            self._changed.wait(HEARTBEAT_S)
            self._changed.clear()
            try:
                self.registry.report.remote(self.node.node_id, self.node.address,
                                            f"{self.node.adb_host}:{self.node.adb_port}",
                                            self.phones(), time.time())
            except Exception as exc:  # noqa: BLE001 - a restarting registry: next beat retries
                log.warning("node %s: registry unreachable: %s", self.node.short, exc)
