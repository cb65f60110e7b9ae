"""Per-app drivers: package names, how to open the feed, and where each view is, found in the
UI tree (with a fallback position only where the tree does not say). Apps are data
(`devices/data/apps.yaml`); this module applies them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

from bubblescope.devices.ui_tree import Node
from bubblescope.errors import ConfigError

SIM_APP = "bubblescope-sim"


@dataclass(frozen=True)
class Matcher:
    id: str | None = None
    desc: str | None = None
    text: str | None = None
    at: tuple[float, float] | None = None  # fallback: fraction of the screen

    def finds(self, node: Node) -> bool:
        if self.id is not None:
            return node.id_name == self.id
        if self.desc is not None:
            return re.search(self.desc, node.content_desc) is not None
        if self.text is not None:
            return re.search(self.text, node.text) is not None
        return False


@dataclass(frozen=True)
class Located:
    """Where a view is: the node when the tree has it, else only a fallback point."""

    point: tuple[float, float]
    node: Node | None = None


@dataclass(frozen=True)
class AppDriver:
    name: str
    package: str
    activity: str | None
    account_switch: str  # "intent" (simulated app) or "none" (log in by hand)
    views: dict[str, tuple[Matcher, ...]]
    simulated: bool = False  # the simulated app: what the model writes harms no one there

    def launch_command(self, platform: str, account: str, seed: int) -> str:
        component = f"{self.package}/{self.activity}" if self.activity else self.package
        if self.account_switch == "intent":
            return (f"am start -S -n {component} --es bubblescope.platform {platform} "
                    f"--es bubblescope.account {account} --ei bubblescope.seed {seed}")
        if self.activity:
            return f"am start -n {component}"
        return f"monkey -p {self.package} -c android.intent.category.LAUNCHER 1"

    def locate(self, role: str, nodes: list[Node], screen: tuple[int, int]) -> Located | None:
        for matcher in self.views.get(role, ()):
            if matcher.at is not None:
                return Located((matcher.at[0] * screen[0], matcher.at[1] * screen[1]))
            found = next((n for n in nodes if n.package in (self.package, "") and
                          matcher.finds(n)), None)
            if found is not None:
                return Located(found.center, found)
        return None

    def text_of(self, role: str, nodes: list[Node]) -> str:
        located = self.locate(role, nodes, (0, 0))
        return located.node.text if located and located.node else ""


def _matchers(role: str, entries: list[dict], source: str) -> tuple[Matcher, ...]:
    matchers = []
    for entry in entries:
        if not isinstance(entry, dict) or len(entry) != 1 or \
                next(iter(entry)) not in ("id", "desc", "text", "at"):
            raise ConfigError("each matcher is one of {id|desc|text|at: ...}", source=source,
                              key=f"views.{role}")
        key, value = next(iter(entry.items()))
        matchers.append(Matcher(**{key: tuple(value) if key == "at" else value}))
    return tuple(matchers)


@cache
def app_drivers() -> dict[str, AppDriver]:
    text = resources.files("bubblescope.devices").joinpath("data/apps.yaml").read_text("utf-8")
    drivers = {}
    for name, entry in yaml.safe_load(text).items():
        source = f"devices/data/apps.yaml ({name})"
        drivers[name] = AppDriver(
            name=name, package=entry["package"], activity=entry.get("activity"),
            account_switch=entry.get("account_switch", "none"),
            simulated=bool(entry.get("simulated", False)),
            views={role: _matchers(role, matchers, source)
                   for role, matchers in entry["views"].items()})
    return drivers


def app_driver(name: str) -> AppDriver:
    drivers = app_drivers()
    if name not in drivers:
        raise ConfigError(f"no driver for app {name!r}; known: {sorted(drivers)}",
                          key="devices.app")
    return drivers[name]
