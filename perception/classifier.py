"""The category classifier interface: which 'Main/Sub' category the video on screen belongs to.

Classifiers read only what the device shows. The one exception is `SimTruthClassifier`, the
simulated world's oracle, which the coordinator allows only on simulated devices; the text
and VLM classifiers slot in behind the same interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from bubblescope.contracts import Observation, VideoTruth


class Classifier(ABC):
    name: str

    @abstractmethod
    def classify(self, observation: Observation) -> str | None:
        """'Main/Sub', or None when the category cannot be told."""


class SimTruthClassifier(Classifier):
    name = "sim-truth"

    def __init__(self, truth: Callable[[], VideoTruth | None]) -> None:
        self._truth = truth

    def classify(self, observation: Observation) -> str | None:
        truth = self._truth()
        if truth is None:
            raise RuntimeError("sim-truth classifier used on a device with no ground truth")
        if truth.video_id != observation.video_id:
            raise RuntimeError(f"ground truth is for {truth.video_id}, screen shows "
                               f"{observation.video_id}: the observation is stale")
        return truth.category
