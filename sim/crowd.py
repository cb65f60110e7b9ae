"""A crowd of synthetic humans: varied interests and habits, none of them an audit persona.

The tiny base model is pretrained on the crowd's traces, the way a real base model has seen
many people before it meets ours: it learns the answer format, what the simulated videos are
about, and to read a persona profile; the personas' own adapters then learn the persona. Each
member's behaviour is a random blend of the two calibrated humans, so it stays within what
real people (collectors a and b) do.
"""

from __future__ import annotations

import math

import numpy as np

from bubblescope.sim.human import HumanSpec, human_spec
from bubblescope.taxonomy import load_taxonomy

PLATFORMS = ("douyin-like", "kuaishou-like", "bilibili-like")
ATTENTION = {"short": (0.0, 0.4), "mixed": (0.4, 0.7), "long": (0.7, 1.0)}
SCALES = ("skip_median_s", "attention_s", "attention_sigma", "sub_spread")
LINEAR = ("skip_bias", "skip_slope", "attention_gain", "like_base", "comment_rate",
          "share_rate", "other_interest")


def _blend(low: HumanSpec, high: HumanSpec, weight: float) -> dict:
    """Habits between the two calibrated humans: log-blended scales, linear rates."""
    a, b = low.model_dump(), high.model_dump()
    values = {k: math.exp((1 - weight) * math.log(a[k]) + weight * math.log(b[k]))
              for k in SCALES}
    values |= {k: (1 - weight) * a[k] + weight * b[k] for k in LINEAR}
    values["session_length"] = round((1 - weight) * a["session_length"]
                                     + weight * b["session_length"])
    return values


def _attention_word(weight: float) -> str:
    return next(word for word, (lo, hi) in ATTENTION.items() if lo <= weight <= hi)


def crowd_member(index: int, seed: int = 0) -> HumanSpec:
    """Member `index` of the crowd drawn with `seed`; the same arguments, the same person."""
    rng = np.random.default_rng([seed, index, 0xC20D])
    mains = load_taxonomy().mains
    picked = rng.choice(len(mains), size=int(rng.integers(2, 6)), replace=False)
    interests = {mains[i]: round(float(rng.uniform(0.5, 1.0)), 2) for i in picked}
    weight = float(rng.uniform())
    favourites = sorted(interests, key=interests.get, reverse=True)
    platform = PLATFORMS[int(rng.integers(len(PLATFORMS)))]
    attention = _attention_word(weight)
    return HumanSpec(
        name=f"crowd-{seed}-{index}",
        narrative=(f"Someone who scrolls {platform.removesuffix('-like').capitalize()} and "
                   f"mostly watches {', '.join(favourites[:-1]) or favourites[0]}"
                   + (f" and {favourites[-1]}" if len(favourites) > 1 else "")
                   + f"; attention is {attention}."),
        traits={"attention": attention, "novelty_tolerance": "high" if weight > 0.5 else "low"},
        home_platform=platform, interests=interests,
        **_blend(human_spec("concentrated"), human_spec("dispersed"), weight),
    )
