"""The coordinator's view of the farm: the registry, one agent per phone node, usable phones.

`PhoneFarm` makes sure the cluster-wide registry exists and that every phone node runs its
device agent (a node that joins, or a raylet that restarts under a new node id, gets one on the
next `ensure_agents`), and answers which phones a job may use now and on which node each is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from bubblescope.actors.device_agent import DeviceAgent
from bubblescope.actors.device_registry import (
    NAMESPACE,
    REGISTRY_NAME,
    DeviceRegistry,
    reporter,
)
from bubblescope.actors.phone_nodes import PhoneNode, alive_node_ids, labelled_phone_nodes
from bubblescope.devices.app_drivers import app_drivers
from bubblescope.devices.errors import AdbServerUnreachable
from bubblescope.devices.spec import AdbDevicesSpec
from bubblescope.errors import ConfigError

log = logging.getLogger(__name__)

AGENT_PREFIX = "bubblescope-device-agent"
FIRST_REPORT_S = 30.0  # how long a job start waits for every phone node's first report

# Ray actor handles; Ray's stubs cannot type calls of their remote methods.
ActorHandle = Any


@dataclass(frozen=True)
class FarmPhone:
    serial: str
    node_id: str
    adb: str  # host:port of the node's adb server, as that node sees it
    state: str

    @property
    def adb_host(self) -> str:
        return self.adb.rsplit(":", 1)[0]

    @property
    def adb_port(self) -> int:
        return int(self.adb.rsplit(":", 1)[1])


def get_registry() -> ActorHandle:
    """The cluster's registry, created on this node if no one has created it yet."""
    here = ray.get_runtime_context().get_node_id()
    return ray.remote(DeviceRegistry).options(
        name=REGISTRY_NAME, namespace=NAMESPACE, get_if_exists=True, lifetime="detached",
        num_cpus=0, max_restarts=-1, max_task_retries=-1,
        scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=True)).remote()


class PhoneFarm:
    def __init__(self, devices: AdbDevicesSpec) -> None:
        self.devices = devices
        self.registry = get_registry()
        self.packages = {name: driver.package for name, driver in app_drivers().items()}
        self.here = ray.get_runtime_context().get_node_id()
        self.agents: dict[str, ActorHandle] = {}

    # -- nodes and agents ----------------------------------------------------------------
    def phone_nodes(self) -> list[PhoneNode]:
        """Labelled phone nodes matching the job's node labels; else this node alone."""
        nodes = ray.nodes()
        for node_id in {n["NodeID"] for n in nodes} - alive_node_ids(nodes):
            self.registry.node_gone.remote(node_id)
        labelled = labelled_phone_nodes(nodes)
        wanted = self.devices.adb.node_labels
        if not labelled and not wanted:
            adb = self.devices.adb
            address = ray.util.get_node_ip_address()
            return [PhoneNode(self.here, address, adb.host, adb.port, False)]
        by_id = {n["NodeID"]: n.get("Labels") or {} for n in nodes}
        return [node for node in labelled
                if all(by_id[node.node_id].get(k) == v for k, v in wanted.items())]

    def ensure_agents(self) -> list[PhoneNode]:
        nodes = self.phone_nodes()
        for node in nodes:
            name = f"{AGENT_PREFIX}-{node.node_id}-{node.adb_port}"
            if name not in self.agents:
                self.agents[name] = ray.remote(DeviceAgent).options(
                    name=name, namespace=NAMESPACE, get_if_exists=True, lifetime="detached",
                    num_cpus=0, max_restarts=-1, max_concurrency=4,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False),
                ).remote(node, self.registry, self.packages)
        return nodes

    # -- phones ------------------------------------------------------------------------
    async def phones(self, timeout_s: float = 30.0) -> list[FarmPhone]:
        """The phones this job may use (its serials, if it names them), with their nodes;
        a serial two nodes claim is listed as a conflict wherever it is."""
        entries = await self._ask(self.registry.phones, timeout_s)
        nodes = {node.node_id for node in self.phone_nodes()}
        wanted = set(self.devices.adb.serials or ())
        return [FarmPhone(e["serial"], e["node_id"], e["adb"], e["state"]) for e in entries
                if (not wanted or e["serial"] in wanted)
                and (e["node_id"] in nodes or e["state"] == "conflict")]

    async def _ask(self, method: Any, timeout_s: float, *args: Any) -> Any:
        """A registry call that rides out the registry's restart (Ray restarts it; a call in
        between is refused as unavailable, and the next one reaches the new instance)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return await asyncio.wait_for(method.remote(*args), timeout_s)
            except (ActorUnavailableError, RayActorError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def wait_for_reports(self, nodes: list[PhoneNode], timeout_s: float) -> None:
        """Until every node in `nodes` has reported once (or `timeout_s` has passed)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            reported = await self._ask(self.registry.reporters, timeout_s)
            if {reporter(node.node_id, f"{node.adb_host}:{node.adb_port}")
                    for node in nodes} <= set(reported):
                return
            await asyncio.sleep(0.2)

    async def survey(self, timeout_s: float = FIRST_REPORT_S) -> list[dict]:
        """Every phone of the cluster as the registry has it, once each phone node reported."""
        await self.wait_for_reports(self.ensure_agents(), timeout_s)
        return await self._ask(self.registry.phones, timeout_s)

    async def first_phones(self, timeout_s: float) -> list[FarmPhone]:
        """The phones online once every phone node's agent has reported, checked as a job
        start needs them: ConfigError (exit 2, nothing started) for what the user must fix."""
        nodes = self.ensure_agents()
        if not nodes:
            labels = ", ".join(f"{k}={v}" for k, v in self.devices.adb.node_labels.items())
            raise ConfigError(f"no phone node carries {labels}; fix devices.adb.node_labels or "
                              "label a node (ray start --labels ...)",
                              key="devices.adb.node_labels")
        await self.wait_for_reports(nodes, timeout_s)
        beats = await asyncio.wait_for(
            asyncio.gather(*(agent.status.remote() for agent in self.agents.values())), timeout_s)
        phones = await self.phones()
        check_first_phones(self.devices, phones, beats)
        return [phone for phone in phones if phone.state == "online"]

    def assign(self, serial: str, job_id: str, run_id: str, account: str) -> None:
        self.registry.assign.remote(serial, job_id, run_id, account)

    def release(self, serial: str, job_id: str) -> None:
        self.registry.release.remote(serial, job_id)


def check_first_phones(devices: AdbDevicesSpec, phones: list[FarmPhone],
                       beats: list[dict]) -> None:
    """What a job start refuses (exit 2, or 3 for an adb server nobody runs), in one line."""
    conflict = [p.serial for p in phones if p.state == "conflict"]
    if conflict:
        raise ConfigError(f"phone {conflict[0]} is reported by two nodes; unplug it from "
                          "one (each phone belongs to one node's adb server)",
                          key="devices.adb.serials")
    missing = sorted(set(devices.adb.serials or ()) - {p.serial for p in phones})
    if missing:
        raise ConfigError(f"phone {missing[0]} is on no phone node; plug it in, or drop it "
                          "from devices.adb.serials", key="devices.adb.serials")
    if not any(p.state == "online" for p in phones):
        errors = [b["adb_error"] for b in beats if b["adb_error"]]
        if errors and len(errors) == len(beats):
            raise AdbServerUnreachable(f"{errors[0]}; start one (adb start-server) or fix "
                                       "devices.adb.host and devices.adb.port")
        raise ConfigError("no device online on adb; plug in a phone or `bubblescope farm up`",
                          key="devices.adb.serials")
