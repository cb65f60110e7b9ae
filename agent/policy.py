"""The policy interface: how an agent playing a persona acts on what the device shows.

Baselines live in `baselines.py`; the Qwen2.5-VL agent on Ray Serve slots in behind the same
interface. `actors/loader.py` (`make_policy`) is the one place that picks the class, by the
type of the job's policy spec (`agent/spec.py`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from bubblescope.contracts import Action, Observation, Served


@dataclass(frozen=True)
class HistoryItem:
    """A video the agent already saw, and what it did; the prompt's context."""

    observation: Observation
    action: Action


class Policy(ABC):
    name: str

    @abstractmethod
    def decide(self, observation: Observation, history: Sequence[HistoryItem]) -> Action:
        """The persona's action on the current video."""

    def served(self) -> Served | None:
        """Who served the last decision, for policies served by replicas; None in-process."""
        return None

    def snapshot(self) -> dict:
        """State to resume from (e.g. a random generator), JSON-safe."""
        return {}

    def restore(self, snapshot: dict) -> None:  # noqa: B027 - stateless policies keep nothing
        """Resume from `snapshot`."""
