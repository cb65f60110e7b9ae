"""Synthetic humans: hidden interests and a behaviour model fitted to real browsing traces.

A human reacts to a video of known category and length: a quick skip, or a watch whose length
grows with interest, and sometimes a like, comment or share. The parameters of each human are
data (`sim/data/humans.yaml`), fitted by `sim/calibrate.py` to one real collector's trace.
"""

from __future__ import annotations

import math
from functools import cache
from importlib import resources

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field

from bubblescope.errors import ConfigError
from bubblescope.taxonomy import Taxonomy


class HumanSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    narrative: str = Field(description="who this person is, in prose")
    traits: dict[str, str] = Field(default_factory=dict)
    calibrated_on: str | None = Field(default=None, description="real collector id fitted to")
    home_platform: str = Field(description="platform profile their traces are recorded on")
    interests: dict[str, float] = Field(description="main category -> hidden interest in [0,1]")
    other_interest: float = Field(ge=0, le=1, description="interest in every other main")
    sub_spread: float = Field(ge=0, description="log-scale spread of subcategory interests")
    skip_bias: float = Field(description="log-odds of a quick skip at zero interest")
    skip_slope: float = Field(ge=0, description="how much interest lowers those log-odds")
    skip_median_s: float = Field(gt=0, description="typical length of a quick skip")
    attention_s: float = Field(gt=0, description="typical watch when not skipping, no interest")
    attention_gain: float = Field(ge=0, description="log-scale gain of watch time per interest")
    attention_sigma: float = Field(gt=0, description="log-scale spread of watch time")
    like_base: float = Field(ge=0, le=1, description="like probability at full interest")
    comment_rate: float = Field(ge=0, le=1)
    share_rate: float = Field(ge=0, le=1)
    session_length: int = Field(gt=0, description="typical videos per session")


class Reaction(BaseModel):
    model_config = ConfigDict(frozen=True)

    watch_s: float
    like: bool
    comment: str | None
    share: str | None


class SyntheticHuman:
    def __init__(self, spec: HumanSpec, taxonomy: Taxonomy, seed: int) -> None:
        unknown = set(spec.interests) - set(taxonomy.mains)
        if unknown:
            raise ConfigError(f"unknown main categories {sorted(unknown)}",
                              source="humans.yaml", key=f"{spec.name}.interests")
        self.spec = spec
        self.taxonomy = taxonomy
        self.rng = np.random.default_rng(seed)
        self.sub_interest = self._sub_interests(np.random.default_rng([seed, 0x5AB]))

    def _sub_interests(self, rng: np.random.Generator) -> np.ndarray:
        main = np.array([self.spec.interests.get(m, self.spec.other_interest)
                         for m in self.taxonomy.mains])
        spread = rng.lognormal(0.0, self.spec.sub_spread, len(self.taxonomy.subs))
        return np.clip(main[np.array(self.taxonomy.sub_main)] * spread, 0.0, 1.0)

    def interest(self, category: str) -> float:
        return float(self.sub_interest[self.taxonomy.subs.index(category)])

    def react(self, category: str, duration_s: float) -> Reaction:
        spec, rng = self.spec, self.rng
        interest = self.interest(category)
        p_skip = 1.0 / (1.0 + math.exp(-(spec.skip_bias - spec.skip_slope * interest)))
        if rng.random() < p_skip:
            watch = min(duration_s, rng.lognormal(math.log(spec.skip_median_s), 0.45))
            engaged = 0.0
        else:
            log_mean = math.log(spec.attention_s) + spec.attention_gain * interest
            watch = min(2.0 * duration_s, rng.lognormal(log_mean, spec.attention_sigma))
            engaged = interest
        like = rng.random() < spec.like_base * engaged**2
        comment = "haha, so true" if rng.random() < spec.comment_rate * engaged else None
        share = "friend" if rng.random() < spec.share_rate * engaged else None
        return Reaction(watch_s=round(max(watch, 0.1), 2), like=like, comment=comment, share=share)


@cache
def _entries() -> dict:
    text = resources.files("bubblescope.sim").joinpath("data/humans.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def human_names() -> list[str]:
    return sorted(_entries())


def human_spec(name: str) -> HumanSpec:
    if name not in _entries():
        raise ConfigError(f"unknown synthetic human {name!r}; known: {human_names()}")
    return HumanSpec(name=name, **_entries()[name])
