"""Baseline policies behind the one Policy interface."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bubblescope.actors.loader import make_policy
from bubblescope.agent.policy import Policy
from bubblescope.agent.spec import POLICY_KINDS
from bubblescope.contracts import Observation
from bubblescope.personas.loader import load_persona

PERSONA = load_persona(Path(__file__).resolve().parents[2] / "examples" / "personas"
                       / "concentrated.yaml")


def build_policy(kind: str, persona, seed: int) -> Policy:
    return make_policy(POLICY_KINDS[kind](kind=kind), persona, seed)


def observe(category: str | None, duration: float = 30.0) -> Observation:
    return Observation(device_time=datetime(2026, 1, 1, tzinfo=UTC), video_id="v",
                       video_duration_s=duration, category=category)


def mean_watch(policy_kind: str, category: str | None, n: int = 400) -> float:
    policy = build_policy(policy_kind, PERSONA, seed=1)
    return float(np.mean([policy.decide(observe(category), ()).watch_s for _ in range(n)]))


def test_persona_stats_replays_the_personas_own_category_behaviour() -> None:
    stats = PERSONA.stats.categories
    liked = max(stats, key=lambda c: np.mean(stats[c].durations) * (stats[c].n > 30))
    disliked = min(stats, key=lambda c: np.mean(stats[c].durations) if stats[c].n > 10 else 1e9)
    assert mean_watch("persona-stats", f"{liked}/x") > 1.5 * mean_watch("persona-stats",
                                                                         f"{disliked}/x")


def test_unclassified_videos_fall_back_to_the_overall_behaviour() -> None:
    overall = float(np.mean(PERSONA.stats.duration_sample))
    assert abs(mean_watch("persona-stats", None, 2000) - overall) < 0.2 * overall


def test_watch_time_is_capped_at_two_plays() -> None:
    policy = build_policy("persona-stats", PERSONA, seed=3)
    assert all(policy.decide(observe(None, duration=2.0), ()).watch_s <= 4.0 for _ in range(300))


def test_policies_resume_their_random_stream() -> None:
    one = build_policy("persona-stats", PERSONA, seed=5)
    for _ in range(10):
        one.decide(observe("Food/x"), ())
    snapshot = one.snapshot()
    ahead = [one.decide(observe("Food/x"), ()) for _ in range(5)]
    two = build_policy("persona-stats", PERSONA, seed=99)
    two.restore(snapshot)
    assert [two.decide(observe("Food/x"), ()) for _ in range(5)] == ahead
