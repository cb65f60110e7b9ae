"""The device interface a DeviceActor drives: one phone (real or virtual) with one account.

Implementations: the in-process simulated device (`bubblescope.sim.in_process_device`) and the adb +
scrcpy phone (`adb_phone.py`). `actors/loader.py` is the one place that picks the class, by
the type of the job's devices spec.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from bubblescope.contracts import Action, Observation, Performed, VideoTruth


class Device(ABC):
    serial: str

    @abstractmethod
    def open_feed(self, platform: str, account: str, seed: int) -> None:
        """Log into `account` on `platform` and open its recommendation feed."""

    @abstractmethod
    def observe(self) -> Observation:
        """What the screen and speaker show of the current video."""

    @abstractmethod
    def act(self, action: Action) -> Performed:
        """Watch for action.watch_s, engage as asked, then swipe to the next video; returns
        what it did (a real platform gets the model's text only when the job allows it)."""

    def begin_phase(self, phase: str) -> None:  # noqa: B027 - optional hook
        """A phase of the experiment starts (simulated worlds use it; phones ignore it)."""

    def ground_truth(self) -> VideoTruth | None:
        """The simulated platform's label of the current video; None on real devices."""
        return None

    def snapshot(self) -> dict | None:
        """Full state, for devices whose world can be restored (simulated); else None."""
        return None

    def restore(self, snapshot: dict) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot restore a snapshot")

    def wait_online(self, timeout_s: float) -> None:  # noqa: B027 - optional hook
        """Block until the device is reachable again, at most `timeout_s` seconds; devices
        that cannot drop off (simulated ones) return at once."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the device."""
