"""The job's policy specs, one per kind, and how an audit's agent is served: base model,
adapters, deployment, generation, prompt.

Declared once here (pydantic, `extra="forbid"`) and embedded in the job spec under `policy`
(the agent's settings under `policy.agent`); the Serve app, the client policy, the trainer
and job validation all read these schemas. `actors/loader.py` maps them to policy classes.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AutoscalingSpec(_Spec):
    """Serve's autoscaler on queue length: replicas are added while the requests waiting or
    running per replica stay above the target, and removed while they stay below it."""

    min_replicas: int = Field(default=1, ge=1, description="fewest replicas kept (one at least: "
                              "a decision never waits for a cold start)")
    max_replicas: int = Field(default=4, ge=1, description="most replicas started")
    target_ongoing_requests: float = Field(
        default=16, gt=0, description="requests queued or in flight per replica that the "
        "autoscaler aims at; a replica's batch size is a good start")
    upscale_delay_s: float = Field(default=10, ge=0, description="how long the queue must stay "
                                   "long before a replica is added")
    downscale_delay_s: float = Field(default=60, ge=0, description="how long the queue must "
                                     "stay short before a replica is removed")
    look_back_period_s: float = Field(default=30, gt=0, description="the queue length the "
                                      "autoscaler acts on is averaged over this window")
    metrics_interval_s: float = Field(default=10, gt=0, description="how often replicas report "
                                      "their queue length")

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"max_replicas {self.max_replicas} is below min_replicas "
                             f"{self.min_replicas}")
        return self

    def serve_config(self, replicas: int) -> dict[str, float]:
        """Serve's `autoscaling_config` of a deployment that starts with `replicas`."""
        initial = min(max(replicas, self.min_replicas), self.max_replicas)
        return {**self.model_dump(), "initial_replicas": initial}


class DeploymentSpec(_Spec):
    app_name: str = Field(default="bubblescope-policy", description="Ray Serve application name")
    replicas: int = Field(default=1, ge=1, description="policy replicas; with autoscaling, "
                          "the number it starts with (kept between its min and max)")
    autoscaling: AutoscalingSpec | None = Field(default=None, description="scale replicas on "
                                                "queue length between min and max instead of "
                                                "keeping `replicas`")
    max_adapters_per_replica: int = Field(
        default=8, ge=1, description="adapters a replica keeps loaded (least recently used go)")
    max_batch_size: int = Field(default=16, ge=1, description="decisions generated together")
    batch_wait_s: float = Field(default=0.02, ge=0, le=5,
                                description="longest wait for a batch to fill")
    cpus_per_replica: float = Field(default=1, gt=0)
    gpus_per_replica: float = Field(default=0, ge=0)
    max_ongoing_requests: int = Field(default=64, ge=1,
                                      description="requests a replica accepts at once")
    http_port: int | None = Field(default=8000, ge=1, le=65535, description="Serve's HTTP "
                                  "port on this cluster (POST /<app_name>); none: no HTTP")

    @model_validator(mode="after")
    def _replica_rules(self) -> Self:
        if self.autoscaling is None:
            return self
        if self.autoscaling.target_ongoing_requests > self.max_ongoing_requests:
            raise ValueError(f"autoscaling.target_ongoing_requests "
                             f"{self.autoscaling.target_ongoing_requests:g} is above "
                             f"max_ongoing_requests {self.max_ongoing_requests}: a replica never "
                             "queues that many, so it would never scale up")
        return self

    @property
    def most_replicas(self) -> int:
        """Replicas the deployment can reach: what the cluster must have room for."""
        return self.autoscaling.max_replicas if self.autoscaling else self.replicas


class GenerationSpec(_Spec):
    max_new_tokens: int = Field(default=64, ge=8, le=4096, description="answer length cap")
    temperature: float = Field(default=1.0, ge=0, le=2, description="sampling temperature; "
                               "0 is greedy, which collapses watch times onto their most "
                               "likely first digit, so audits sample")
    top_p: float = Field(default=1.0, gt=0, le=1, description="nucleus sampling: draw from the "
                         "smallest set of tokens holding this much probability; below 1 it "
                         "cuts the rare garbled tokens a small model's tail holds")
    constrain_watch: bool = Field(default=False, description="constrained decoding of the "
                                  "watch() argument to a well-formed number (transformers "
                                  "engine); the rest of the answer is sampled freely")


class PromptSpec(_Spec):
    """What a decision prompt holds; one schema for serving and training, so an adapter is
    served with the prompt it was trained on (its manifest records it)."""

    history: int = Field(default=5, ge=0, description="K: earlier videos (newest last) shown "
                         "with what was done on them")
    frames: int = Field(default=1, ge=0, description="screen frames of the current video, "
                        "the newest ones")
    frame_edge: int = Field(default=448, ge=28, description="frames are scaled so their "
                            "longer edge is at most this, in pixels")
    persona: bool = Field(default=True, description="false: the -Persona ablation (no profile "
                          "in the prompt)")
    instructions: bool = Field(default=True, description="false: leave out the task text and "
                               "the function list (a model trained from scratch needs neither)")
    screen_chars: int = Field(default=400, ge=0, description="on-screen text kept, from the "
                              "start")
    transcript_chars: int = Field(default=600, ge=0, description="transcript kept, from the "
                                  "start")


class AgentPolicySpec(_Spec):
    base_model: str = Field(description="folder of the Qwen2.5-VL checkpoint (relative to the "
                            "job file)")
    adapters: dict[str, str] = Field(
        default_factory=dict, description="persona id -> adapter folder (relative to the job "
        "file); a persona without one is played by the base model (LLM-Sim)")
    deployment: DeploymentSpec = DeploymentSpec()
    generation: GenerationSpec = GenerationSpec()
    prompt: PromptSpec = PromptSpec()
    decide_timeout_s: float = Field(default=120, gt=0, description="longest wait for one "
                                    "decision, retries after a replica failure included")
    classify: bool = Field(default=False, description="classify each video's category with "
                           "the base model (taxonomy-constrained prompt) instead of the "
                           "device's classifier")

    def adapter_key(self, persona: str) -> str:
        """The multiplexed model id Serve routes on: one per adapter, '' for the base model."""
        return persona if persona in self.adapters else ""


class PersonaStatsPolicySpec(_Spec):
    """The persona's own statistics: watch times drawn from its duration sample (baseline)."""

    kind: Literal["persona-stats"] = Field(
        default="persona-stats", description="which policy decides how each video is watched: "
        "persona-stats, random or agent")


class RandomPolicySpec(_Spec):
    """Watch times and engagement drawn at random, persona-blind (baseline)."""

    kind: Literal["random"] = Field(description="random: a persona-blind baseline")


class ServedAgentPolicySpec(_Spec):
    """The Qwen2.5-VL agent, one adapter per persona, served by Ray Serve."""

    kind: Literal["agent"] = Field(description="agent: the persona agents on Ray Serve")
    agent: AgentPolicySpec = Field(description="base model, adapters, deployment, generation "
                                   "and prompt of the served agent")


POLICY_KINDS = {"persona-stats": PersonaStatsPolicySpec, "random": RandomPolicySpec,
                "agent": ServedAgentPolicySpec}
