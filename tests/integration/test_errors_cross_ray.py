"""Every error class of the library, raised inside a real Ray actor, arrives as itself.

The coordinator matches DeviceOffline on a RayTaskError's cause, and the CLI reports an
actor's error by its own message and exit code: both rely on each class surviving the trip with
its type, message and code. The classes are discovered, not listed, so a new one is covered the
day it is written.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest
import ray
from ray.exceptions import RayTaskError

import bubblescope
from bubblescope.cluster.cli import exit_code, own_error
from bubblescope.errors import BubblescopeError

KNOWN_AT_LEAST = 50  # the classes there were when this test was written


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def error_classes() -> list[type[BubblescopeError]]:
    """BubblescopeError and every subclass defined anywhere in the package."""
    for module in pkgutil.walk_packages(bubblescope.__path__, "bubblescope."):
        importlib.import_module(module.name)
    classes = {BubblescopeError, *_subclasses(BubblescopeError)}
    mine = [c for c in classes if c.__module__.startswith("bubblescope")]
    return sorted(mine, key=lambda c: (c.__module__, c.__name__))


CLASSES = error_classes()


class Raiser:
    """Builds the error on the worker, from its module and name, and raises it there."""

    def raise_(self, module: str, name: str, message: str) -> None:
        raise getattr(importlib.import_module(module), name)(message)


@pytest.fixture(scope="module")
def raiser(ray_local):
    actor = ray.remote(num_cpus=0)(Raiser).remote()
    yield actor
    ray.kill(actor)


def test_discovery_finds_every_part() -> None:
    assert len(CLASSES) >= KNOWN_AT_LEAST
    modules = {c.__module__ for c in CLASSES}
    assert {"bubblescope.errors", "bubblescope.devices.errors",
            "bubblescope.sim.android.errors"} <= modules


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_error_crosses_an_actor_boundary(cls: type[BubblescopeError], raiser) -> None:
    message = f"{cls.__name__} raised in an actor"
    with pytest.raises(RayTaskError) as caught:
        ray.get(raiser.raise_.remote(cls.__module__, cls.__name__, message), timeout=60)
    cause = caught.value.cause
    assert isinstance(cause, cls) and type(cause) is cls
    assert str(cause) == message and cause.message == message
    assert cause.code == cls.code
    assert isinstance(caught.value, cls)  # so `except cls` catches what ray.get raises
    assert own_error(caught.value) is cause
    assert exit_code(own_error(caught.value)) == exit_code(cls(message))
