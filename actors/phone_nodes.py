"""Which Ray nodes hold phones, and where each node's adb server listens.

A node declares that it holds phones with Ray node labels set when it starts
(`ray start --labels bubblescope.io/phones=true,bubblescope.io/adb-port=5037`, or the KubeRay
worker group's `rayStartParams`). Labels, not custom resources: a label says what a node *is*
and costs nothing to schedule against, while a resource would be consumed by each actor and
would have to be sized to the number of phones. A DeviceActor is then pinned to the exact node
that holds its phone by node affinity (hard), because only that node's adb server sees it.

A cluster where no node carries the label (a laptop, `bubblescope audit` with a local Ray) has
one phone node: the coordinator's own, with the job's `devices.adb` host and port.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PHONES_LABEL = "bubblescope.io/phones"
ADB_PORT_LABEL = "bubblescope.io/adb-port"
DEFAULT_ADB_PORT = 5037


@dataclass(frozen=True)
class PhoneNode:
    node_id: str  # Ray's hex node id; a restarted raylet comes back under a new one
    address: str  # the node's IP, as Ray reports it
    adb_host: str
    adb_port: int
    labelled: bool  # False for the coordinator's node standing in on an unlabelled cluster

    @property
    def short(self) -> str:
        return self.node_id[:12]


def labelled_phone_nodes(nodes: list[dict[str, Any]]) -> list[PhoneNode]:
    """The alive nodes of `ray.nodes()` that carry the phones label."""
    found = []
    for node in nodes:
        labels = node.get("Labels") or {}
        if not node.get("Alive") or labels.get(PHONES_LABEL, "").lower() != "true":
            continue
        port = labels.get(ADB_PORT_LABEL, str(DEFAULT_ADB_PORT))
        found.append(PhoneNode(node["NodeID"], node.get("NodeManagerAddress", ""), "127.0.0.1",
                               int(port) if port.isdigit() else DEFAULT_ADB_PORT, True))
    return found


def alive_node_ids(nodes: list[dict[str, Any]]) -> set[str]:
    return {node["NodeID"] for node in nodes if node.get("Alive")}
