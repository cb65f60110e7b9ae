"""The persona contract: who the agent plays, and the behaviour statistics it is held to."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bubblescope.taxonomy import load_taxonomy


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TraceAction(_Model):
    type: Literal["like", "comment", "share"]
    text: str | None = None


class TraceRecord(_Model):
    """One video in a browsing session, in viewing order (PersonaAct's record, plus labels)."""

    timestamp: datetime = Field(description="UTC time the viewer left the video")
    viewing_duration: float = Field(ge=0, description="seconds on the video")
    actions: tuple[TraceAction, ...] = ()
    video_id: str | None = None
    video_duration_s: float | None = Field(default=None, ge=0)
    category: str | None = Field(default=None, description="'Main/Sub', when labelled")

    def did(self, kind: str) -> bool:
        return any(action.type == kind for action in self.actions)


class Session(_Model):
    session_id: str
    collector: str
    platform: str
    start_time: datetime = Field(description="UTC")
    records: tuple[TraceRecord, ...]


class DurationStats(_Model):
    mean: float
    median: float
    p10: float
    p25: float
    p75: float
    p90: float
    quick_skip_rate: float = Field(ge=0, le=1, description="share of views under 3 s")


class CategoryStats(_Model):
    n: int = Field(ge=1)
    share: float = Field(ge=0, le=1)
    like_rate: float = Field(ge=0, le=1)
    comment_rate: float = Field(ge=0, le=1)
    share_rate: float = Field(ge=0, le=1)
    durations: tuple[float, ...] = Field(description="every watch duration seen in the category")

    @model_validator(mode="after")
    def _sample_matches_count(self) -> CategoryStats:
        if len(self.durations) != self.n:
            raise ValueError(f"durations has {len(self.durations)} values but n is {self.n}")
        return self


class BehaviourStats(_Model):
    n_records: int = Field(ge=1)
    n_sessions: int = Field(ge=1)
    category_level: Literal["main"] = "main"
    categories: dict[str, CategoryStats] = Field(description="main category -> statistics")
    like_rate: float = Field(ge=0, le=1)
    comment_rate: float = Field(ge=0, le=1)
    share_rate: float = Field(ge=0, le=1)
    duration: DurationStats
    duration_sample: tuple[float, ...] = Field(
        min_length=1, description="training watch durations: the quantile reversal's F"
    )
    hour_histogram: tuple[int, ...] = Field(description="views per UTC hour of day")

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, value: dict[str, CategoryStats]) -> dict[str, CategoryStats]:
        unknown = sorted(set(value) - set(load_taxonomy().mains))
        if unknown:
            raise ValueError(f"unknown main categories {unknown}")
        return value

    @field_validator("hour_histogram")
    @classmethod
    def _24_hours(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if len(value) != 24:
            raise ValueError("needs 24 counts, one per hour")
        return value

    @field_validator("duration_sample")
    @classmethod
    def _non_negative(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if min(value) < 0:
            raise ValueError("watch durations cannot be negative")
        return value


class Persona(_Model):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="short, file-safe id")
    narrative: str = Field(min_length=1, description="self-narrative in the first or third person")
    traits: dict[str, str] = Field(default_factory=dict, description="named traits, in words")
    stats: BehaviourStats
    adapter: str | None = Field(default=None, description="LoRA adapter reference for the agent")
    source: dict[str, str] = Field(default_factory=dict, description="where the persona came from")
