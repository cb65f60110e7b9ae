"""The optional GPU path: the persona policy served by vLLM through Ray Serve LLM.

Why a second serving path: the in-process policy (agent/policy.py) runs one forward pass per
call through transformers, which is right for CPU tests and small audits. On GPUs, vLLM batches
many agents' requests onto one Qwen2.5-VL and applies each persona's LoRA adapter per request
(multi-LoRA), so one base model serves every persona. Ray Serve LLM wraps vLLM as an
OpenAI-compatible Serve app; a request picks its persona with
`model="<model_id>:<persona>--<adapter name>"` (see `adapter_model_name`).

vLLM needs a GPU and `pip install "bubblescope[vllm]"`; without them `ray.serve.llm` cannot be
imported. So the configuration is built and checked here without it: `VllmPolicySpec` is our
own schema for the few knobs we use, `llm_config_dict` turns it into the exact keyword
arguments of Ray's `LLMConfig`, and `build_vllm_app` hands them to Ray only where Ray Serve LLM
imports. `check_against_ray` validates the dict against Ray's own `LLMConfig` model, whose module
imports without vLLM, so a bad deployment is caught on a laptop rather than on the GPU node.

Adapters: Ray Serve LLM loads LoRA adapters at request time from a cloud folder
(`dynamic_lora_loading_path`: s3://, gs://, abfss:// or azure://; a local folder is refused by
Ray) holding one sub-folder per adapter. Our registry is `<adapters_dir>/<persona>/<name>/`;
`export_adapters_for_vllm` lays the chosen adapters out flat as `<out>/<persona>--<name>/`
(checking what vLLM would only reject at the first request: rank, DoRA, modules_to_save), and
the folder is then uploaded, e.g. `aws s3 sync <out> s3://bucket/adapters`.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from bubblescope.agent.adapters import MANIFEST, PEFT_FILES, adapter_dir, check_adapter
from bubblescope.agent.errors import AdapterError
from bubblescope.config_files import read_mapping, validate
from bubblescope.serve.errors import VllmConfigError, VllmUnavailable

INSTALL_HINT = 'pip install "bubblescope[vllm]"'
# The ranks vLLM's LoRAConfig accepts for max_lora_rank (vllm/config/lora.py, MaxLoRARanks).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
# Where Ray Serve LLM can load adapters from (ray.llm ... cloud_utils.is_remote_path).
CLOUD_SCHEMES = ("s3://", "gs://", "abfss://", "azure://")
# Qwen2.5-VL: 14-pixel patches merged 2x2, so one visual token covers 28x28 pixels.
PIXELS_PER_TOKEN_EDGE = 28
ADAPTER_SEPARATOR = "--"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def image_tokens(frame_edge: int) -> int:
    """Most visual tokens one frame can take when its longer edge is `frame_edge` pixels."""
    return math.ceil(frame_edge / PIXELS_PER_TOKEN_EDGE) ** 2


class VllmPolicySpec(BaseModel):
    """What to serve: the base model, where the persona adapters are, and the GPU budget."""

    # Each field's docstring is its description in the JSON schema and in error messages.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    base_model: str = Field(min_length=1)
    """The Qwen2.5-VL base model: a local folder on the GPU nodes or a Hugging Face id such as
    Qwen/Qwen2.5-VL-7B-Instruct.
    """
    model_id: str = "bubblescope-policy"
    """The served name: requests use it as the OpenAI `model`, alone for the base model or as
    `<model_id>:<adapter id>`.
    """
    adapters_dir: str
    """The cloud folder of adapters laid out flat by export_adapters_for_vllm (s3://, gs://,
    abfss:// or azure://), one sub-folder per adapter.
    """
    max_lora_rank: int = 64
    """Largest LoRA rank a replica can hold; at least every adapter's r (PersonaAct's SFT uses 64)
    and one of vLLM's sizes.
    """
    max_loras_per_replica: int = Field(default=16, ge=1)
    """Adapters cached on one replica (Ray's max_num_adapters_per_replica) and batched together
    (vLLM's max_loras).
    """
    max_model_len: int = Field(default=8192, ge=512)
    """Context length in tokens: prompt, images and reply."""
    frame_edge: int = Field(default=448, ge=56)
    """Longest edge of a frame in pixels, as the agent prompt scales them; vLLM shrinks anything
    larger (max_pixels).
    """
    images_per_prompt: int = Field(default=6, ge=0)
    """Most images in one prompt: the current frames plus the history."""
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
    dtype: Literal["auto", "bfloat16", "float16"] = "bfloat16"
    """Weight and activation type (bfloat16 as trained)."""
    env_vars: dict[str, str] = Field(default_factory=dict)
    """Environment of the replicas, e.g. AWS_ENDPOINT_URL_S3 for an S3-compatible store; keep
    secrets out of this file.
    """

    @field_validator("model_id")
    @classmethod
    def _served_name(cls, value: str) -> str:
        if not _NAME.match(value):
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

    @field_validator("images_per_prompt")
    @classmethod
    def _images_fit(cls, value: int, info: ValidationInfo) -> int:
        length, edge = info.data.get("max_model_len"), info.data.get("frame_edge")
        if length is None or edge is None:
            return value
        tokens = value * image_tokens(edge)
        if tokens > length // 2:
            raise ValueError(f"{value} images of up to {image_tokens(edge)} tokens ({tokens}) "
                             f"take over half of max_model_len {length}; raise max_model_len "
                             "or lower images_per_prompt or frame_edge")
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


def _engine_kwargs(spec: VllmPolicySpec) -> dict[str, Any]:
    """vLLM's engine arguments: multi-LoRA on, images only (audits send still frames)."""
    return {
        "enable_lora": True,
        "max_lora_rank": spec.max_lora_rank,
        # Ray's docs: vLLM's max_loras must equal lora_config.max_num_adapters_per_replica.
        "max_loras": spec.max_loras_per_replica,
        "max_model_len": spec.max_model_len,
        "limit_mm_per_prompt": {"image": spec.images_per_prompt, "video": 0},
        "mm_processor_kwargs": {"max_pixels": spec.frame_edge * spec.frame_edge},
        "tensor_parallel_size": spec.tensor_parallel_size,
        "dtype": spec.dtype,
        "gpu_memory_utilization": spec.gpu_memory_utilization,
        # Qwen2.5-VL is built into vLLM and transformers: no code from the checkpoint runs.
        "trust_remote_code": False,
    }


def llm_config_dict(spec: VllmPolicySpec) -> dict[str, Any]:
    """The keyword arguments of Ray's `LLMConfig` for `spec` (plain data: YAML/JSON-able)."""
    config: dict[str, Any] = {
        "model_loading_config": {"model_id": spec.model_id, "model_source": spec.base_model},
        "engine_kwargs": _engine_kwargs(spec),
        "lora_config": {"dynamic_lora_loading_path": spec.adapters_dir,
                        "max_num_adapters_per_replica": spec.max_loras_per_replica},
        "deployment_config": {"autoscaling_config": {"min_replicas": spec.min_replicas,
                                                     "max_replicas": spec.max_replicas}},
    }
    if spec.accelerator_type:
        config["accelerator_type"] = spec.accelerator_type
    if spec.env_vars:
        config["runtime_env"] = {"env_vars": dict(spec.env_vars)}
    return config


def serve_config_dict(spec: VllmPolicySpec, name: str = "bubblescope-policy",
                      route_prefix: str = "/") -> dict[str, Any]:
    """A Ray Serve config file (`serve deploy`, KubeRay's serveConfigV2) serving `spec`."""
    return {"applications": [{
        "name": name, "route_prefix": route_prefix,
        "import_path": "ray.serve.llm:build_openai_app",
        "args": {"llm_configs": [llm_config_dict(spec)]},
    }]}


def adapter_id(persona: str, name: str) -> str:
    """The adapter's folder name under adapters_dir, and its id in requests."""
    for label, part in (("persona", persona), ("adapter name", name)):
        if not _NAME.match(part) or ADAPTER_SEPARATOR in part:
            raise AdapterError(f"{label} {part!r} cannot name a vLLM adapter; use letters, "
                               f"digits, '.', '_' or single '-' (no {ADAPTER_SEPARATOR!r})")
    return f"{persona}{ADAPTER_SEPARATOR}{name}"


def adapter_model_name(spec: VllmPolicySpec, persona: str, name: str) -> str:
    """The OpenAI `model` of a request to `persona`'s adapter `name`."""
    return f"{spec.model_id}:{adapter_id(persona, name)}"


def _check_vllm_compatible(folder: Path, persona: str, max_lora_rank: int | None) -> None:
    """Refuse what vLLM would only reject when the adapter is first requested."""
    config = json.loads((folder / "adapter_config.json").read_text("utf-8"))
    problem = ""
    if config.get("use_dora"):
        problem = "is a DoRA adapter, which vLLM cannot serve; retrain without use_dora"
    elif config.get("modules_to_save"):
        problem = (f"saves whole modules ({config['modules_to_save']}), which vLLM cannot "
                   "serve; retrain without modules_to_save")
    elif max_lora_rank is not None and int(config.get("r", 0)) > max_lora_rank:
        problem = (f"has rank {config['r']} above max_lora_rank {max_lora_rank}; raise "
                   "max_lora_rank")
    if problem:
        raise AdapterError(f"persona {persona!r}: adapter {folder} {problem}")


def _lay_out(source: Path, target: Path, link: bool) -> None:
    """`target` holding `source`'s adapter files, swapped in whole."""
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    for file_name in (*PEFT_FILES, MANIFEST):
        if not (source / file_name).is_file():
            continue
        if link:
            (staging / file_name).symlink_to((source / file_name).resolve())
        else:
            shutil.copy2(source / file_name, staging / file_name)
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)
    staging.rename(target)


def export_adapters_for_vllm(adapters_dir: str | Path, out_dir: str | Path,
                             personas: dict[str, str], *, max_lora_rank: int | None = None,
                             link: bool = False) -> dict[str, str]:
    """Lay `personas`' adapters ({persona: adapter name}) out flat for Ray Serve LLM.

    Each becomes `<out_dir>/<persona>--<name>/` with PEFT's files (and our manifest); copies by
    default, symlinks with `link` (cloud sync tools differ on following them). Returns
    {persona: adapter id}. Every adapter is checked before any is written.
    """
    out = Path(out_dir).expanduser()
    plan = {}
    for persona, name in personas.items():
        source = check_adapter(adapter_dir(adapters_dir, persona, name), persona)
        _check_vllm_compatible(source, persona, max_lora_rank)
        plan[persona] = (source, adapter_id(persona, name))
    out.mkdir(parents=True, exist_ok=True)
    for source, ident in plan.values():
        _lay_out(source, out / ident, link)
    return {persona: ident for persona, (_, ident) in plan.items()}


def load_vllm_spec(path: str | Path) -> VllmPolicySpec:
    """The spec in a YAML file, or a one-line VllmConfigError naming the file and key."""
    path = Path(path)
    data = read_mapping(path, VllmConfigError, "vLLM serving file")
    return validate(VllmPolicySpec, data, VllmConfigError, str(path))


def check_against_ray(spec: VllmPolicySpec) -> bool:
    """Validate `llm_config_dict(spec)` with Ray's own LLMConfig model, where it imports.

    The model lives in a private module of Ray that imports without vLLM (the public
    `ray.serve.llm` does not); False when this Ray has no such module, so nothing was checked.
    """
    try:
        from ray.llm._internal.serve.core.configs.llm_config import LLMConfig
    except ImportError:
        return False
    try:
        LLMConfig.model_validate(llm_config_dict(spec))
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        reason = " ".join(str(error).split())
        raise VllmConfigError(f"Ray's LLMConfig refuses the config: {reason}") from error
    return True


def build_vllm_app(spec: VllmPolicySpec):
    """The Ray Serve app (OpenAI API) serving `spec`; run it with `serve.run(app)`."""
    try:
        from ray.serve.llm import LLMConfig, build_openai_app
    except ImportError as error:
        reason = str(error).split(". ")[0].splitlines()[0] if str(error) else type(error).__name__
        raise VllmUnavailable(f"serving with vLLM needs Ray Serve LLM and vLLM on a GPU "
                              f"machine ({reason}); install them there with: "
                              f"{INSTALL_HINT}") from error
    llm_config = LLMConfig(**llm_config_dict(spec))
    return build_openai_app({"llm_configs": [llm_config]})
