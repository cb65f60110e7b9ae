"""The persona contract: who the agent plays, and the behaviour statistics it is held to."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from bubblescope.taxonomy import load_taxonomy


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# Traces from devices, recorders and imports in other zones meet in one dataset: a time
# without a zone is ambiguous there, so it is refused, and every time is kept in UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class TraceAction(_Model):
    type: Literal["like", "comment", "share"]
    text: str | None = None


class TraceRecord(_Model):
    """One video in a browsing session, in viewing order (PersonaAct's record, plus labels)."""

    timestamp: UtcDatetime = Field(description="UTC time the viewer left the video")
    viewing_duration: float = Field(ge=0, description="seconds on the video")
    actions: tuple[TraceAction, ...] = ()
    video_id: str | None = None
    video_duration_s: float | None = Field(default=None, ge=0)
    category: str | None = Field(default=None, description="'Main/Sub', when labelled")
    started_at: UtcDatetime | None = Field(default=None, description="UTC time the view started")
    ui_dump: str | None = Field(
        default=None, description="UI dump (XML), relative to the session folder")
    video_file: str | None = Field(
        default=None, description="screen recording, relative to the session folder")
    audio_file: str | None = Field(
        default=None, description="audio recording, relative to the session folder")
    source_paths: dict[str, str] = Field(
        default_factory=dict,
        description="media paths as the source named them (ui_dump, video_file, audio_file), "
                    "kept when the media did not come along")
    platform: str | None = Field(default=None, description="app the video was watched in")

    @model_validator(mode="after")
    def _starts_before_it_ends(self) -> TraceRecord:
        if self.started_at is not None and self.started_at > self.timestamp:
            raise ValueError(f"started_at {self.started_at} is after timestamp {self.timestamp}")
        return self

    def did(self, kind: str) -> bool:
        return any(action.type == kind for action in self.actions)


class Session(_Model):
    session_id: str
    collector: str
    platform: str
    start_time: UtcDatetime = Field(description="UTC")
    records: tuple[TraceRecord, ...]
    end_time: UtcDatetime | None = Field(default=None, description="UTC, when recorded")
    device: str | None = Field(default=None, description="device the session was recorded on")
    app: str | None = Field(default=None, description="app package or name, when recorded")

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> Session:
        if self.end_time is not None and self.end_time < self.start_time:
            raise ValueError(f"end_time {self.end_time} is before start_time {self.start_time}")
        return self


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
