"""Reading `uiautomator dump` XML: the nodes an app driver finds its views among."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from bubblescope.devices.errors import UiTreeError

_BOUNDS = re.compile(r"\[(-?\d+),(-?\d+)\]\[(-?\d+),(-?\d+)\]")


@dataclass(frozen=True)
class Node:
    text: str
    resource_id: str
    class_name: str
    package: str
    content_desc: str
    bounds: tuple[int, int, int, int]
    clickable: bool
    checked: bool
    selected: bool
    enabled: bool

    @property
    def center(self) -> tuple[float, float]:
        x1, y1, x2, y2 = self.bounds
        return (x1 + x2) / 2, (y1 + y2) / 2

    @property
    def id_name(self) -> str:
        """The part of the resource id after ':id/'."""
        return self.resource_id.rsplit("/", 1)[-1]


def _node(element: ET.Element) -> Node:
    match = _BOUNDS.fullmatch(element.get("bounds", ""))
    if match is None:
        raise UiTreeError(f"node without valid bounds: {element.attrib}")
    return Node(
        text=element.get("text", ""), resource_id=element.get("resource-id", ""),
        class_name=element.get("class", ""), package=element.get("package", ""),
        content_desc=element.get("content-desc", ""),
        bounds=tuple(int(v) for v in match.groups()),  # type: ignore[arg-type]
        clickable=element.get("clickable") == "true", checked=element.get("checked") == "true",
        selected=element.get("selected") == "true", enabled=element.get("enabled") != "false")


def parse_ui_dump(xml: str) -> list[Node]:
    """Every node in document order; UiTreeError for an empty or malformed dump."""
    if not xml or not xml.lstrip().startswith("<?xml"):
        raise UiTreeError(f"UI dump is empty or not XML: {xml[:80]!r}")
    try:
        root = ET.fromstring(xml.encode("utf-8"))
    except ET.ParseError as exc:
        raise UiTreeError(f"UI dump does not parse: {exc}") from exc
    if root.tag != "hierarchy":
        raise UiTreeError(f"UI dump root is <{root.tag}>, not <hierarchy>")
    nodes = [_node(element) for element in root.iter("node")]
    if not nodes:
        raise UiTreeError("UI dump holds no nodes (screen off or app not drawn yet)")
    return nodes
