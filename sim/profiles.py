"""Recommender profiles: the named ones shipped as data, and those a job defines inline."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from bubblescope.config_files import validate
from bubblescope.errors import ConfigError


class PlatformProfile(BaseModel):
    """How a simulated recommender learns and explores."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="profile name")
    description: str = Field(default="", description="one line for reports")
    personalization: float = Field(
        default=6.0, ge=0, le=20, description="sharpness of the feed around learned interests"
    )
    responsiveness: float = Field(
        default=0.1, ge=0, le=1, description="learning rate of interests per watched video"
    )
    exploration: float = Field(
        default=0.15, ge=0, le=1, description="share of the feed drawn from global popularity"
    )
    sub_weight: float = Field(
        default=0.5, ge=0, le=5, description="weight of subcategory interest beside main"
    )
    watch_pivot_s: float = Field(
        default=4.0, gt=0, description="seconds watched that count as neutral engagement"
    )
    completion_pivot: float = Field(
        default=0.3, gt=0, lt=1, description="watch ratio that counts as neutral engagement"
    )
    like_boost: float = Field(default=0.5, ge=0, le=5, description="engagement added by a like")
    baseline_rate: float = Field(
        default=0.02, gt=0, le=1, description="rate of the running mean that centres engagement"
    )
    cold_start_steps: float = Field(
        default=10.0, gt=0, description="videos watched until the feed is ~63% personalised"
    )
    learner: Literal["ema", "average"] = Field(
        default="ema", description="ema: forget at `responsiveness`; average: never forget"
    )
    prior_count: float = Field(
        default=3.0, ge=0, description="pseudo-signals of no interest the average learner starts from"
    )
    adapt_phases: int | None = Field(
        default=None, ge=1, description="phases of an account during which it learns; none = all"
    )


def _named_entries() -> dict[str, dict[str, Any]]:
    text = resources.files("bubblescope.sim").joinpath("data/profiles.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def _resolve(name: str, entry: dict[str, Any], known: dict[str, dict[str, Any]], source: str):
    entry = dict(entry)
    base = entry.pop("base", None)
    if base is not None:
        if not isinstance(base, str) or base not in known:
            raise ConfigError(
                f"unknown base profile {base!r}; use one of {sorted(known)}",
                source=source, key=f"platforms.{name}.base",
            )
        entry = {**{k: v for k, v in known[base].items() if k != "base"}, **entry}
    return validate(PlatformProfile, {"name": name, **entry}, ConfigError, source,
                    prefix=f"platforms.{name}.")


@cache
def named_profiles() -> dict[str, PlatformProfile]:
    entries = _named_entries()
    return {name: _resolve(name, entry, entries, "sim/data/profiles.yaml")
            for name, entry in entries.items()}


def inline_profile(entry: dict[str, Any], source: str) -> PlatformProfile:
    """A profile a job defines inline, e.g. ``{name: mine, base: douyin-like, exploration: 0.2}``."""
    entry = dict(entry)
    name = entry.pop("name", None)
    if not isinstance(name, str):
        raise ConfigError("an inline platform needs a `name`", source=source, key="platforms")
    if name in named_profiles():
        raise ConfigError(f"{name!r} is a named profile; pick another name for an inline one",
                          source=source, key=f"platforms.{name}")
    return _resolve(name, entry, _named_entries(), source)
