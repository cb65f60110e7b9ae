"""Baseline policies: persona-blind `random`, and `persona-stats`, which replays the persona's
own category-conditioned statistics."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import numpy as np

from bubblescope.agent.policy import HistoryItem, Policy
from bubblescope.contracts import Action, Observation
from bubblescope.personas.schema import CategoryStats, Persona
from bubblescope.taxonomy import load_taxonomy

REPLAY_LIMIT = 2.0  # nobody watches a video more than about twice through


def _cap(watch_s: float, observation: Observation) -> float:
    if observation.video_duration_s:
        watch_s = min(watch_s, REPLAY_LIMIT * observation.video_duration_s)
    return round(max(watch_s, 0.1), 2)


class _Seeded(Policy):
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def snapshot(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def restore(self, snapshot: dict) -> None:
        self.rng.bit_generator.state = copy.deepcopy(snapshot["rng"])


class RandomPolicy(_Seeded):
    """Persona-blind: watch time from the pooled real traces' shape, a 7% like rate."""

    name = "random"
    MEDIAN_S = 4.9  # median and mean of all PersonaAct records: 4.93 s and 20.85 s
    SIGMA = math.sqrt(2 * math.log(20.85 / 4.93))
    LIKE_RATE = 0.073

    def decide(self, observation: Observation, history: Sequence[HistoryItem]) -> Action:
        watch = self.rng.lognormal(math.log(self.MEDIAN_S), self.SIGMA)
        return Action(watch_s=_cap(watch, observation), like=bool(self.rng.random() < self.LIKE_RATE))


class PersonaStatsPolicy(_Seeded):
    """Draws the watch time and engagement from what the persona did in the same main category.

    Categories the persona rarely saw borrow from the persona's overall behaviour, in proportion
    to how little was seen (shrinkage with `prior_weight` pseudo-observations).
    """

    name = "persona-stats"

    def __init__(self, persona: Persona, seed: int, prior_weight: float = 5.0) -> None:
        super().__init__(seed)
        self.stats = persona.stats
        self.prior_weight = prior_weight
        self.taxonomy = load_taxonomy()

    def _rate(self, kind: str, category: CategoryStats | None) -> float:
        """The persona's rate of `kind` in the category, shrunk towards its overall rate."""
        overall = getattr(self.stats, f"{kind}_rate")
        if category is None:
            return overall
        own = getattr(category, f"{kind}_rate")
        return (own * category.n + overall * self.prior_weight) / (category.n + self.prior_weight)

    def decide(self, observation: Observation, history: Sequence[HistoryItem]) -> Action:
        stats = self.stats
        main = self.taxonomy.main_of(observation.category) if observation.category else None
        category = stats.categories.get(main) if main else None
        n = category.n if category else 0
        use_own = category is not None and self.rng.random() < n / (n + self.prior_weight)
        sample = category.durations if category is not None and use_own \
            else stats.duration_sample
        watch = float(sample[int(self.rng.integers(len(sample)))])
        return Action(
            watch_s=_cap(watch, observation),
            like=bool(self.rng.random() < self._rate("like", category)),
            comment="nice" if self.rng.random() < self._rate("comment", category) else None,
            share="friend" if self.rng.random() < self._rate("share", category) else None,
        )
