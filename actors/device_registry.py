"""The device registry: one named Ray actor per cluster that knows every phone.

Device agents send it their node's full phone list on every change and on a heartbeat; the
coordinator tells it which run holds which phone. It keeps nothing on disk: after a restart
the agents' next heartbeats rebuild the phone list and the coordinators re-state their runs,
so `bubblescope devices` is at most a heartbeat stale. A serial that two alive nodes both
report is a conflict: no run is placed on it until one of them lets go.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

REGISTRY_NAME = "bubblescope-device-registry"
NAMESPACE = "bubblescope"
STALE_S = 10.0  # a node whose agent has not reported for this long holds no online phone


@dataclass
class NodePhones:
    node_id: str
    address: str
    adb: str
    phones: dict[str, dict]  # serial -> the agent's PhoneReport as a dict
    reported_at: float
    alive: bool = True


@dataclass
class Assignment:
    job_id: str
    run_id: str
    account: str


@dataclass
class PhoneEntry:
    serial: str
    node_id: str
    address: str
    adb: str
    state: str  # online | offline | unauthorized | conflict | ...
    model: str = ""
    android: str = ""
    screen: str = ""
    apps: list[str] = field(default_factory=list)
    job_id: str = ""
    run_id: str = ""
    account: str = ""
    conflict: list[str] = field(default_factory=list)  # every node claiming the serial


def reporter(node_id: str, adb: str) -> str:
    return f"{node_id}|{adb}"


def _state(adb_state: str) -> str:
    return "online" if adb_state == "device" else adb_state


class DeviceRegistry:
    def __init__(self) -> None:
        # keyed by reporter (node and adb server): one node may run an adb server per port
        self.nodes: dict[str, NodePhones] = {}
        self.assignments: dict[str, Assignment] = {}  # serial -> the run on it

    def report(self, node_id: str, address: str, adb: str, phones: list[dict],
               at: float) -> None:
        # the registry's own clock, so nodes whose clocks drift are judged alike
        self.nodes[reporter(node_id, adb)] = NodePhones(
            node_id, address, adb, {p["serial"]: p for p in phones}, time.time())

    def node_gone(self, node_id: str) -> None:
        """The node died: its phones are offline until an agent reports them again."""
        for node in self.nodes.values():
            if node.node_id == node_id:
                node.alive = False

    def assign(self, serial: str, job_id: str, run_id: str, account: str) -> None:
        self.assignments[serial] = Assignment(job_id, run_id, account)

    def release(self, serial: str, job_id: str) -> None:
        held = self.assignments.get(serial)
        if held is not None and held.job_id == job_id:
            del self.assignments[serial]

    def phones(self) -> list[dict]:
        """Every phone any node reported, newest report first where a serial moved nodes."""
        claims: dict[str, list[tuple[str, NodePhones]]] = {}
        for node in self.nodes.values():
            for serial in node.phones:
                claims.setdefault(serial, []).append((node.node_id, node))
        return [asdict(self._entry(serial, holders)) for serial, holders in sorted(claims.items())]

    def _entry(self, serial: str, holders: list[tuple[str, NodePhones]]) -> PhoneEntry:
        now = time.time()
        for _, node in holders:
            if now - node.reported_at > STALE_S:
                node.alive = False  # its agent is gone (a dead raylet takes it along)
        alive = [(node_id, node) for node_id, node in holders if node.alive]
        online = [(node_id, node) for node_id, node in alive
                  if node.phones[serial]["state"] == "device"]
        node_id, node = max(online or alive or holders, key=lambda held: held[1].reported_at)
        report = node.phones[serial]
        state = _state(report["state"]) if node.alive else "offline"
        conflict = sorted(held for held, _ in online) if len(online) > 1 else []
        held = self.assignments.get(serial)
        return PhoneEntry(
            serial, node_id, node.address, node.adb, "conflict" if conflict else state,
            report.get("model", ""), report.get("android", ""), report.get("screen", ""),
            list(report.get("apps", [])), held.job_id if held else "",
            held.run_id if held else "", held.account if held else "", conflict)

    def reporters(self) -> list[str]:
        """The (node, adb server) pairs whose agents have reported lately."""
        now = time.time()
        return sorted(key for key, node in self.nodes.items()
                      if node.alive and now - node.reported_at <= STALE_S)

    def ping(self) -> float:
        return time.time()
