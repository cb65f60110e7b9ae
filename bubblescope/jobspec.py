"""The audit job spec: what a user writes in JOB.yaml, validated at the edge.

Unknown keys and bad values are rejected with one line naming the file, the key and the fix.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bubblescope.agent.spec import AgentPolicySpec

JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DepthSpec(_Spec):
    """Bubble depth: cultivate an account as the persona, then browse as its reverse."""

    cultivation_steps: int = Field(default=400, ge=1, le=100_000, description="videos in phase 1")
    counterfactual_steps: int = Field(default=400, ge=1, le=100_000,
                                      description="videos in phase 2 (reversed persona)")


class BreadthSpec(_Spec):
    """Bubble breadth: one fresh account browsing as the persona."""

    steps: int = Field(default=800, ge=1, le=200_000, description="videos watched")


class ExperimentsSpec(_Spec):
    depth: DepthSpec | None = Field(default=None, description="run the depth experiment")
    breadth: BreadthSpec | None = Field(default=None, description="run the breadth experiment")

    @model_validator(mode="after")
    def _at_least_one(self) -> ExperimentsSpec:
        if self.depth is None and self.breadth is None:
            raise ValueError("name at least one experiment: depth and/or breadth")
        return self


class PolicySpec(_Spec):
    kind: Literal["persona-stats", "random", "agent"] = Field(
        default="persona-stats", description="which policy decides how each video is watched"
    )
    agent: AgentPolicySpec | None = Field(
        default=None, description="kind agent: the Qwen2.5-VL policy served by Ray Serve")

    @model_validator(mode="after")
    def _agent_section(self) -> PolicySpec:
        if self.kind == "agent" and self.agent is None:
            raise ValueError("kind agent needs policy.agent (base_model and adapters)")
        if self.kind != "agent" and self.agent is not None:
            raise ValueError(f"policy.agent is only read with kind agent, not {self.kind!r}")
        return self


class ScrcpySpec(_Spec):
    server_jar: str | None = Field(
        default=None, description="the scrcpy-server file (relative to the job file); default: "
        "the first of /usr/share/scrcpy/scrcpy-server, /usr/local/share/scrcpy/scrcpy-server, "
        "~/.local/share/bubblescope/scrcpy-server (where `farm up` puts the virtual one)")
    max_size: int = Field(default=640, ge=0, le=4096, description="longer video side, pixels")
    max_fps: float = Field(default=5.0, ge=0.5, le=120, description="video frames per second")
    sample_fps: float = Field(default=2.0, gt=0, le=60,
                              description="frames per second decoded into images")
    audio: bool = Field(default=True, description="stream the device's audio")
    audio_codec: Literal["opus", "raw"] = "opus"


class SpeechSpec(_Spec):
    enabled: bool = Field(default=True, description="voice activity + speech recognition")
    whisper_path: str | None = Field(
        default=None, description="local Whisper checkpoint folder (relative to the job file); "
        "default: a tiny model built locally on first use (tests and demos only)")


class AdbSpec(_Spec):
    """Phones on adb (backend adb): real ones, or the virtual farm's."""

    serials: list[str] | None = Field(
        default=None, description="devices to use; default: every device adb lists as online")
    host: str = Field(default="127.0.0.1", description="adb server host")
    port: int = Field(default=5037, ge=1, le=65535, description="adb server port")
    app: str = Field(default="bubblescope-sim",
                     description="app driver: bubblescope-sim, douyin, kuaishou or bilibili")
    glance_s: float = Field(default=1.5, ge=0, le=60,
                            description="device seconds of a video seen before deciding")
    online_timeout_s: float = Field(default=300, gt=0, le=86_400,
                                    description="how long to wait for a device that dropped off")
    scrcpy: ScrcpySpec = ScrcpySpec()
    speech: SpeechSpec = SpeechSpec()


class DevicesSpec(_Spec):
    backend: Literal["sim", "adb"] = Field(
        default="sim", description="sim: in-process simulated phones; adb: phones on adb")
    count: int = Field(default=4, ge=1, le=4096,
                       description="device actors run in parallel (backend sim)")
    cpus_per_device: float = Field(default=0.5, ge=0, le=64, description="Ray CPUs per actor")
    max_restarts: int = Field(default=5, ge=0, le=1000,
                              description="restarts of a failed device actor per run")
    classifier: Literal["sim-truth", "text-embedding"] | None = Field(
        default=None, description="category classifier; default sim-truth for backend sim, "
        "text-embedding for adb (sim-truth reads the simulator, so only backend sim may use it)")
    adb: AdbSpec = AdbSpec()
    sim_pace: float | None = Field(
        default=None, gt=0, le=1_000_000, description="backend sim: device seconds per wall-"
        "clock second (1 = real time, for load tests and demos); none: as fast as the CPU "
        "allows. Pacing never changes results")

    @model_validator(mode="after")
    def _classifier_fits_backend(self) -> DevicesSpec:
        if self.backend == "adb" and self.classifier == "sim-truth":
            raise ValueError("backend adb classifies what the device shows: use text-embedding")
        return self

    @property
    def classifier_kind(self) -> str:
        return self.classifier or ("sim-truth" if self.backend == "sim" else "text-embedding")


class WorldSpec(_Spec):
    """The simulated world (backend sim)."""

    catalogue_videos: int = Field(default=20_000, ge=12_000, le=2_000_000,
                                  description="videos in the simulated catalogue")
    creators: int = Field(default=2_500, ge=200, le=1_000_000, description="simulated creators")


class MetricsSpec(_Spec):
    port: int | None = Field(default=9464, ge=0, le=65535,
                             description="Prometheus exporter port; null disables, 0 picks one")
    host: str = Field(default="127.0.0.1", description="address the exporter listens on")
    category_level: Literal["main", "sub"] = Field(
        default="main", description="category granularity of diversity, entropy and BEP"
    )
    bootstrap: int = Field(default=1000, ge=50, le=100_000, description="bootstrap resamples")
    block: int = Field(default=10, ge=1, le=1000, description="bootstrap block length, steps")
    confidence: float = Field(default=0.95, gt=0.5, lt=1, description="CI level")


class JobSpec(_Spec):
    job_id: str | None = Field(default=None, pattern=JOB_ID_PATTERN,
                               description="results go to <storage_path>/<job_id>; default: file name")
    description: str = Field(default="", description="free text for the report")
    seed: int = Field(default=0, ge=0, description="the whole audit is deterministic under it")
    storage_path: str = Field(default="bubblescope-results",
                              description="local folder (relative to the job file) or URI")
    personas: list[str] = Field(min_length=1, description="persona files, relative to the job file")
    platforms: list[str | dict[str, Any]] = Field(
        min_length=1, description="named platform profiles or inline profile mappings"
    )
    experiments: ExperimentsSpec
    window: int = Field(default=50, ge=2, le=10_000, description="sliding window, videos")
    replicates: int = Field(default=3, ge=1, le=1000, description="repeats of every run")
    policy: PolicySpec = PolicySpec()
    devices: DevicesSpec = DevicesSpec()
    world: WorldSpec = WorldSpec()
    metrics: MetricsSpec = MetricsSpec()
    checkpoint_every: int = Field(default=1000, ge=1, le=100_000,
                                  description="most steps per committed chunk")
    checkpoint_seconds: float = Field(
        default=0.5, gt=0, le=3600,
        description="most wall-clock seconds per committed chunk (slow real devices commit "
                    "every step or so, fast simulated ones in bulk)")
