"""The audit job spec: what a user writes in JOB.yaml, validated at the edge.

Unknown keys and bad values are rejected with one line naming the file, the key and the fix.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bubblescope.agent.spec import (
    POLICY_KINDS,
    PersonaStatsPolicySpec,
    RandomPolicySpec,
    ServedAgentPolicySpec,
)
from bubblescope.devices.spec import AdbDevicesSpec
from bubblescope.sim.spec import SimDevicesSpec, WorldSpec

JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

# Each part owns its specs; the job composes them into unions by their tag.
DevicesSpec = Annotated[SimDevicesSpec | AdbDevicesSpec, Field(discriminator="backend")]
PolicySpec = Annotated[PersonaStatsPolicySpec | RandomPolicySpec | ServedAgentPolicySpec,
                       Field(discriminator="kind")]
BACKENDS: dict[str, type[BaseModel]] = {"sim": SimDevicesSpec, "adb": AdbDevicesSpec}


def _tagged(data: Any, section: str, tag: str, default: str, variants: dict) -> Any:
    """`data` with its tag filled in (`default` when left out); a key only another variant
    reads is refused naming it, so `devices.adb` with backend sim says what to change."""
    if not isinstance(data, dict):
        return data
    data = {tag: default, **data}
    own = variants.get(data[tag])
    if own is None:
        return data  # the union names the allowed tags
    for key in data:
        owners = [name for name, model in variants.items()
                  if key not in own.model_fields and key in model.model_fields]
        if owners:
            raise ValueError(f"{section}.{key} is only read with {tag} {owners[0]}, not "
                             f"{data[tag]!r}; remove it or set {section}.{tag}: {owners[0]}")
    return data


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
    policy: PolicySpec = Field(default=PersonaStatsPolicySpec(), description="who decides how "
                               "each video is watched, by kind (default persona-stats)")
    devices: DevicesSpec = Field(default=SimDevicesSpec(), description="the phones the audit "
                                 "runs on, by backend (default sim)")
    world: WorldSpec = Field(default=WorldSpec(), description="the simulated world (backend sim)")
    metrics: MetricsSpec = Field(default=MetricsSpec(), description="live metrics and "
                                 "confidence intervals")
    checkpoint_every: int = Field(default=1000, ge=1, le=100_000,
                                  description="most steps per committed chunk")
    checkpoint_seconds: float = Field(
        default=0.5, gt=0, le=3600,
        description="most wall-clock seconds per committed chunk (slow real devices commit "
                    "every step or so, fast simulated ones in bulk)")

    @field_validator("policy", mode="before")
    @classmethod
    def _policy_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kind") == "agent" and "agent" not in data:
            raise ValueError("kind agent needs policy.agent (base_model and adapters)")
        return _tagged(data, "policy", "kind", "persona-stats", POLICY_KINDS)

    @field_validator("devices", mode="before")
    @classmethod
    def _devices_backend(cls, data: Any) -> Any:
        return _tagged(data, "devices", "backend", "sim", BACKENDS)
