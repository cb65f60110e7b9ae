"""The error tree's shape: each part's classes in its errors.py under one root, one code style,
the tree drawn in each docstring, and exit codes that say whose fault a failure is."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import bubblescope
from bubblescope import errors as core
from bubblescope.cluster import cli, local
from bubblescope.cluster.errors import ClusterUnreachableError
from bubblescope.errors import BubblescopeError, ConfigError, UnreachableError

PARTS = ("actors", "agent", "cluster", "devices", "metrics", "perception", "personas",
         "recorder", "report", "serve", "sim.android", "sim", "trainer")  # longest match first
KIND = r"[a-z]+(-[a-z]+)*"


def _all_classes() -> list[type[BubblescopeError]]:
    for module in pkgutil.walk_packages(bubblescope.__path__, "bubblescope."):
        importlib.import_module(module.name)
    found, todo = set(), [BubblescopeError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found and sub.__module__.startswith("bubblescope"):
                found.add(sub)
                todo.append(sub)
    return sorted(found, key=lambda c: (c.__module__, c.__name__))


CLASSES = _all_classes()
CORE = {c for c in CLASSES if c.__module__ == "bubblescope.errors"}


def _part(cls: type) -> str:
    return cls.__module__.removeprefix("bubblescope.").removesuffix(".errors")


def _code_part(part: str) -> str:
    return part.replace(".", "-")


def test_every_class_lives_in_its_parts_errors_module() -> None:
    allowed = {f"bubblescope.{part}.errors" for part in PARTS} | {"bubblescope.errors"}
    strays = [f"{c.__module__}.{c.__name__}" for c in CLASSES if c.__module__ not in allowed]
    assert not strays


@pytest.mark.parametrize("part", PARTS)
def test_each_part_has_one_root_under_the_core(part: str) -> None:
    module = importlib.import_module(f"bubblescope.{part}.errors")
    mine = [c for c in CLASSES if c.__module__ == module.__name__]
    roots = [c for c in mine if not any(b in mine for b in c.__mro__[1:])]
    assert len(roots) == 1, roots
    root = roots[0]
    assert root.__bases__ == (BubblescopeError,) and root.code == _code_part(part)
    assert all(issubclass(c, root) for c in mine)
    assert root.__name__ in core.__doc__ and f"{part.replace('.', '/')}/errors.py" in core.__doc__


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_codes_follow_one_style(cls: type[BubblescopeError]) -> None:
    part = "bubblescope" if cls in CORE else _code_part(_part(cls))
    root = cls is BubblescopeError or cls.__bases__ == (BubblescopeError,) and cls not in CORE
    pattern = re.escape(part) if root else rf"{re.escape(part)}\.{KIND}"
    assert re.fullmatch(pattern, cls.code), cls.code
    assert "code" in vars(cls)  # its own, not inherited from its parent


def test_codes_are_unique() -> None:
    codes = [c.code for c in CLASSES]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize("module", sorted({c.__module__ for c in CLASSES}))
def test_each_errors_module_draws_its_tree(module: str) -> None:
    doc = importlib.import_module(module).__doc__ or ""
    assert "BubblescopeError" in doc and "└──" in doc
    for cls in CLASSES:
        if cls.__module__ == module:
            assert re.search(rf"\b{cls.__name__}\b", doc), cls.__name__


@pytest.mark.parametrize("cls, code", [
    (ConfigError, 2), (UnreachableError, 3), (BubblescopeError, 1), (core.StorageError, 1),
    *[(c, 2) for c in CLASSES if issubclass(c, ConfigError)],
    *[(c, 3) for c in CLASSES if issubclass(c, UnreachableError)],
], ids=str)
def test_exit_code_says_whose_fault_it_is(cls: type[BubblescopeError], code: int) -> None:
    assert cli.exit_code(cls("x")) == code


def test_exit_codes_are_documented() -> None:
    epilog = cli.build_parser().epilog
    for code in (cli.EXIT_FAILED, cli.EXIT_USAGE, cli.EXIT_UNREACHABLE, 130):
        assert re.search(rf"^\s+{code}\s", epilog, re.M), code
    for code in ("1", "2", "3", "130"):
        assert re.search(rf"^\s+{code}\s", cli.__doc__, re.M)


def test_an_unreachable_ray_address_exits_3(small_job, monkeypatch, capsys) -> None:
    def refuse(**kwargs):
        raise ConnectionError("Failed to connect to Ray cluster at 192.0.2.1:6379")

    monkeypatch.setattr(local.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(local.ray, "init", refuse)
    with pytest.raises(ClusterUnreachableError, match="192.0.2.1:6379"):
        local._start_ray("192.0.2.1:6379")
    code = cli.main(["audit", str(small_job), "--no-progress", "--no-metrics",
                     "--address", "192.0.2.1:6379"])
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after "starting job ..."
    assert code == 3 and last.startswith("error: ") and "--address 192.0.2.1:6379" in last


def test_an_unreachable_adb_server_is_not_the_users_file() -> None:
    from bubblescope.actors.phone_farm import check_first_phones
    from bubblescope.devices.errors import AdbServerUnreachable
    from bubblescope.devices.spec import AdbDevicesSpec

    devices = AdbDevicesSpec.model_validate({"backend": "adb", "adb": {"port": 5999}})
    beats = [{"node": "n1", "adb": "127.0.0.1:5999", "phones": 0,
              "adb_error": "adb server 127.0.0.1:5999: [Errno 111] Connection refused"}]
    with pytest.raises(AdbServerUnreachable, match="127.0.0.1:5999") as caught:
        check_first_phones(devices, [], beats)
    assert cli.exit_code(caught.value) == 3
    with pytest.raises(ConfigError, match="no device online"):  # adb answers, no phone on it
        check_first_phones(devices, [], [dict(beats[0], adb_error="")])
