"""The typed contracts that cross part boundaries (docs/architecture.md#contracts).

Keep these names stable: extend them, don't rename them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Phase = Literal["cultivation", "counterfactual", "breadth"]
Experiment = Literal["depth", "breadth"]
Stage = Literal["observe", "decide", "act", "record"]
STAGES: tuple[Stage, ...] = ("observe", "decide", "act", "record")


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Frame(_Contract):
    """One decoded screen frame as the policy sees it."""

    pts_s: float = Field(description="presentation time on the device clock, seconds")
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    format: Literal["rgb24", "jpeg", "png"] = "rgb24"
    data: bytes = Field(repr=False, description="pixels or the encoded image")


class Observation(_Contract):
    """What a device shows about the current video, and nothing the device does not show."""

    device_time: datetime = Field(description="device clock (UTC) when the video was observed")
    frames: tuple[Frame, ...] = Field(default=(), description="screen frames, oldest first")
    transcript: str = Field(default="", description="speech recognised from the audio")
    on_screen_text: str = Field(default="", description="title, creator, caption, counters")
    video_id: str | None = Field(default=None, description="platform video id when visible")
    video_duration_s: float | None = Field(default=None, ge=0, description="when the app shows it")
    category: str | None = Field(
        default=None, description="'Main/Sub' from the category classifier, never from the platform"
    )


class VideoTruth(_Contract):
    """What only a simulated platform knows about the video on screen: the ground truth."""

    video_id: str
    category: str = Field(description="'Main/Sub'")
    duration_s: float = Field(ge=0)


class Action(_Contract):
    """What the agent does with a video: watch for watch_s, then optionally engage."""

    watch_s: float = Field(ge=0, description="seconds to stay on the video before swiping")
    like: bool = False
    comment: str | None = Field(default=None, description="comment text, if commenting")
    share: str | None = Field(default=None, description="share target, if sharing")
    raw: str = Field(default="", description="the model's raw output, for audit")
    format_ok: bool = Field(default=True, description="False when raw output failed to parse")


class Performed(_Contract):
    """What the device did of an action. On a real platform the text the model writes (a
    comment, a share to someone) is only posted when the job opts in; a like always is."""

    like: bool = False
    comment: bool = False
    share: bool = False


class Served(_Contract):
    """Which policy replica decided a step, and the adapter churn it reports with the answer:
    the adapters it loaded and evicted since its previous answer (to any device), so summing
    a job's rows counts each load and eviction once."""

    replica: str = Field(description="the replica that answered (its process id)")
    adapter_loads: int = Field(default=0, ge=0)
    adapter_evictions: int = Field(default=0, ge=0)


class StageLatency(_Contract):
    """Wall-clock seconds spent in each stage of one step."""

    observe: float = 0.0
    decide: float = 0.0
    act: float = 0.0
    record: float = 0.0


class StepRecord(_Contract):
    """One row per step, appended once, never rewritten."""

    job_id: str
    run_id: str
    persona: str
    platform: str
    experiment: Experiment
    replicate: int = Field(ge=0)
    device: str
    node: str | None = Field(default=None, description="Ray node id (hex) the device actor "
                             "ran on: the node whose adb server holds the phone")
    account: str
    phase: Phase
    step: int = Field(ge=0, description="index within the run, over all its phases")
    phase_step: int = Field(ge=0, description="index within the phase")
    device_time: datetime
    video_id: str | None = None
    video_duration_s: float | None = None
    category: str | None = Field(default=None, description="classified category")
    category_truth: str | None = Field(default=None, description="simulated platforms only")
    decided_watch_s: float = Field(ge=0, description="the policy's watch time before reversal")
    reversed: bool = Field(description="True in the counterfactual phase (quantile reversal)")
    action: Action = Field(description="what the policy decided (after reversal in the "
                           "counterfactual phase)")
    performed: Performed = Field(default_factory=Performed,
                                 description="what the device did of it")
    served: Served | None = Field(default=None, description="the policy replica that decided, "
                                  "for served policies; none for in-process ones")
    latency: StageLatency
    recorded_at: datetime = Field(description="wall clock (UTC) when the step was recorded")

    def to_row(self) -> dict:
        row = self.model_dump(exclude={"action", "performed", "served", "latency"})
        row.update({f"action_{k}": v for k, v in self.action.model_dump().items()})
        row.update({f"performed_{k}": v for k, v in self.performed.model_dump().items()})
        served = self.served.model_dump() if self.served else dict.fromkeys(Served.model_fields)
        row.update({f"served_{k}": v for k, v in served.items()})
        row.update({f"latency_{k}_s": v for k, v in self.latency.model_dump().items()})
        return row

    @classmethod
    def from_row(cls, row: dict) -> StepRecord:
        nested = ("action_", "performed_", "served_", "latency_")
        fields = {k: v for k, v in row.items() if not k.startswith(nested)}
        action = {k[7:]: v for k, v in row.items() if k.startswith("action_")}
        # rows written before `performed` was recorded hold nulls there
        performed = {k[10:]: v for k, v in row.items()
                     if k.startswith("performed_") and v is not None}
        served = {k[7:]: v for k, v in row.items() if k.startswith("served_")}
        latency = {k[8:-2]: v for k, v in row.items() if k.startswith("latency_")}
        return cls(**fields, action=Action(**action), performed=Performed(**performed),
                   served=Served(**served) if served.get("replica") is not None else None,
                   latency=StageLatency(**latency))
