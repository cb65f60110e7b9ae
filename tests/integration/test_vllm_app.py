"""The vLLM serving config: our schema, Ray's own LLMConfig on the dict, adapters laid out flat."""

from __future__ import annotations

import importlib.util
import json
import pickle
import sys
import types
from pathlib import Path

import pytest
import yaml

from bubblescope.agent.errors import AdapterError
from bubblescope.errors import ConfigError
from bubblescope.serve.errors import ServeError, VllmConfigError, VllmUnavailable
from bubblescope.serve.vllm_app import (
    INSTALL_HINT,
    VllmPolicySpec,
    adapter_model_name,
    build_vllm_app,
    check_against_ray,
    export_adapters_for_vllm,
    llm_config_dict,
    load_vllm_spec,
    serve_config_dict,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "vllm" / "policy-llm.yaml"
BASE = {"base_model": "/models/Qwen2.5-VL-7B-Instruct", "adapters_dir": "s3://bucket/adapters/"}


@pytest.fixture(scope="module")
def ray_llm_config():
    """Ray's own LLMConfig model, from the module that imports without vLLM."""
    from ray.llm._internal.serve.core.configs import llm_config

    return llm_config.LLMConfig


def write_spec(folder: Path, **fields) -> Path:
    path = folder / "policy.yaml"
    path.write_text(yaml.safe_dump({**BASE, **fields}), "utf-8")
    return path


def test_defaults_enable_lora_and_images():
    config = llm_config_dict(VllmPolicySpec(**BASE))
    engine = config["engine_kwargs"]
    assert engine["enable_lora"] is True
    assert engine["max_lora_rank"] == 64
    assert engine["max_loras"] == config["lora_config"]["max_num_adapters_per_replica"] == 16
    assert engine["limit_mm_per_prompt"] == {"image": 6, "video": 0}
    assert engine["max_model_len"] == 8192
    assert engine["mm_processor_kwargs"] == {"max_pixels": 448 * 448}
    assert (engine["tensor_parallel_size"], engine["dtype"]) == (1, "bfloat16")
    assert engine["gpu_memory_utilization"] == 0.9
    assert config["model_loading_config"] == {"model_id": "bubblescope-policy",
                                              "model_source": BASE["base_model"]}
    assert config["lora_config"]["dynamic_lora_loading_path"] == "s3://bucket/adapters"
    assert config["deployment_config"] == {"autoscaling_config": {"min_replicas": 1,
                                                                  "max_replicas": 1}}
    assert "accelerator_type" not in config and "runtime_env" not in config
    assert json.loads(json.dumps(config)) == config  # plain data, fit for a YAML config


def test_every_field_is_described():
    for name, field in VllmPolicySpec.model_fields.items():
        assert field.description, name


def test_optional_parts_appear_when_set():
    spec = VllmPolicySpec(**BASE, accelerator_type="H100", env_vars={"A": "1"},
                          min_replicas=0, max_replicas=3)
    config = llm_config_dict(spec)
    assert config["accelerator_type"] == "H100"
    assert config["runtime_env"] == {"env_vars": {"A": "1"}}
    assert config["deployment_config"]["autoscaling_config"] == {"min_replicas": 0,
                                                                 "max_replicas": 3}


@pytest.mark.parametrize(("fields", "key", "hint"), [
    ({"min_replicas": 3, "max_replicas": 2}, "max_replicas", "below min_replicas 3"),
    ({"gpus": 2}, "gpus", "unknown key; allowed here:"),
    ({"max_lora_rank": 0}, "max_lora_rank", "use 1"),
    ({"max_lora_rank": 48}, "max_lora_rank", "use 64"),
    ({"max_lora_rank": 1024}, "max_lora_rank", "largest is 512"),
    ({"adapters_dir": "/data/adapters"}, "adapters_dir", "export_adapters_for_vllm"),
    ({"model_id": "policy:v1"}, "model_id", "no ':'"),
    ({"images_per_prompt": 40}, "images_per_prompt", "raise max_model_len"),
    ({"accelerator_type": "H1000"}, "accelerator_type", "H100"),
    ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization", "less than or equal to 1"),
    ({"dtype": "float64"}, "dtype", "bfloat16"),
    ({"adapters_dir": None}, "adapters_dir", ""),
])
def test_bad_specs_name_the_key(tmp_path, fields, key, hint):
    path = write_spec(tmp_path, **fields)
    with pytest.raises(VllmConfigError) as caught:
        load_vllm_spec(path)
    message = str(caught.value)
    assert f"{path}: {key}: " in message and hint in message
    assert "\n" not in message
    assert isinstance(caught.value, ConfigError) and isinstance(caught.value, ServeError)


def test_missing_and_unreadable_files(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({"adapters_dir": "s3://b/a"}), "utf-8")
    with pytest.raises(VllmConfigError, match="base_model: required key is missing"):
        load_vllm_spec(path)
    with pytest.raises(VllmConfigError, match="cannot read vLLM serving file"):
        load_vllm_spec(tmp_path / "absent.yaml")


def test_example_file_loads_and_passes_ray(ray_llm_config):
    spec = load_vllm_spec(EXAMPLE)
    assert spec.accelerator_type == "H100" and spec.max_replicas == 2
    assert spec.adapters_dir.startswith("s3://")
    assert check_against_ray(spec) is True


def test_ray_llm_config_accepts_the_dict(ray_llm_config):
    spec = VllmPolicySpec(**BASE, accelerator_type="A100-80G", env_vars={"X": "y"},
                          min_replicas=1, max_replicas=4, max_loras_per_replica=8)
    config = ray_llm_config.model_validate(llm_config_dict(spec))
    assert config.model_id == "bubblescope-policy"
    assert config.model_loading_config.model_source == BASE["base_model"]
    assert config.lora_config.dynamic_lora_loading_path == "s3://bucket/adapters"
    assert config.multiplex_config().max_num_models_per_replica == 8
    assert config.max_request_context_length == 8192
    assert config.accelerator_type == "A100-80G"
    assert config.runtime_env == {"env_vars": {"X": "y"}}
    assert config.deployment_config["autoscaling_config"]["max_replicas"] == 4


def test_ray_refuses_what_our_schema_refuses(ray_llm_config):
    """Our checks mirror Ray's: a local adapter folder, an unknown accelerator, bad replicas."""
    good = llm_config_dict(VllmPolicySpec(**BASE))
    bad = [
        {**good, "lora_config": {"dynamic_lora_loading_path": "/data/adapters"}},
        {**good, "accelerator_type": "H1000"},
        {**good, "deployment_config": {"autoscaling_config": {"min_replicas": 3,
                                                              "max_replicas": 2}}},
        {**good, "gpus": 2},
    ]
    for config in bad:
        with pytest.raises(ValueError):
            ray_llm_config.model_validate(config)


def test_check_against_ray_reports_one_line(ray_llm_config, monkeypatch):
    import bubblescope.serve.vllm_app as vllm_app

    spec = VllmPolicySpec(**BASE)
    monkeypatch.setattr(vllm_app, "llm_config_dict", lambda _: {"engine_kwargs": {}})
    with pytest.raises(VllmConfigError, match="Ray's LLMConfig refuses") as caught:
        check_against_ray(spec)
    assert "\n" not in str(caught.value)


def test_serve_config_file_passes_ray_schema():
    from ray.serve import schema

    spec = VllmPolicySpec(**BASE)
    config = serve_config_dict(spec)
    parsed = schema.ServeDeploySchema.model_validate(config)
    application = parsed.applications[0]
    assert application.import_path == "ray.serve.llm:build_openai_app"
    assert application.args == {"llm_configs": [llm_config_dict(spec)]}


def test_adapter_model_name_parses_as_ray_does():
    from ray.llm._internal.common.utils import lora_utils

    spec = VllmPolicySpec(**BASE)
    name = adapter_model_name(spec, "concentrated", "sft")
    assert name == "bubblescope-policy:concentrated--sft"
    assert lora_utils.get_base_model_id(name) == spec.model_id
    assert lora_utils.get_lora_id(name) == "concentrated--sft"
    for persona, adapter in (("a--b", "sft"), ("a", "x:y"), ("a", "../up")):
        with pytest.raises(AdapterError, match="cannot name a vLLM adapter"):
            adapter_model_name(spec, persona, adapter)


def test_build_without_vllm_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray.serve.llm", None)  # as if Ray Serve LLM were absent
    with pytest.raises(VllmUnavailable) as caught:
        build_vllm_app(VllmPolicySpec(**BASE))
    error = caught.value
    assert INSTALL_HINT in str(error) and "\n" not in str(error)
    assert error.code == "serve.vllm" and isinstance(error, ServeError)
    assert str(pickle.loads(pickle.dumps(error))) == str(error)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")
def test_build_here_raises_the_install_hint():
    """The real import: this machine has Ray but no vLLM."""
    with pytest.raises(VllmUnavailable, match='pip install "bubblescope\\[vllm\\]"') as caught:
        build_vllm_app(VllmPolicySpec(**BASE))
    assert "\n" not in str(caught.value)


def test_build_hands_the_dict_to_ray(monkeypatch):
    calls = {}
    fake = types.ModuleType("ray.serve.llm")

    class FakeLLMConfig:
        def __init__(self, **kwargs):
            calls["config"] = kwargs

    def fake_build(builder_config):
        calls["builder"] = builder_config
        return "app"

    fake.LLMConfig, fake.build_openai_app = FakeLLMConfig, fake_build
    monkeypatch.setitem(sys.modules, "ray.serve.llm", fake)
    spec = VllmPolicySpec(**BASE)
    assert build_vllm_app(spec) == "app"
    assert calls["config"] == llm_config_dict(spec)
    (config,) = calls["builder"]["llm_configs"]
    assert isinstance(config, FakeLLMConfig) and list(calls["builder"]) == ["llm_configs"]


def fake_adapter(root: Path, persona: str, name: str, **config) -> Path:
    folder = root / persona / name
    folder.mkdir(parents=True)
    adapter_config = {"r": 64, "lora_alpha": 128, "target_modules": "q_proj", **config}
    (folder / "adapter_config.json").write_text(json.dumps(adapter_config), "utf-8")
    (folder / "adapter_model.safetensors").write_bytes(f"weights {persona}".encode())
    (folder / "bubblescope-adapter.json").write_text(json.dumps({"persona": persona}), "utf-8")
    (folder / "trainer_state.json").write_text("{}", "utf-8")  # not served: left behind
    return folder


def test_export_lays_adapters_out_flat(tmp_path):
    registry, out = tmp_path / "adapters", tmp_path / "flat"
    fake_adapter(registry, "concentrated", "sft")
    fake_adapter(registry, "dispersed", "grpo")
    fake_adapter(registry, "dispersed", "sft")
    ids = export_adapters_for_vllm(registry, out, {"concentrated": "sft", "dispersed": "grpo"},
                                   max_lora_rank=64)
    assert ids == {"concentrated": "concentrated--sft", "dispersed": "dispersed--grpo"}
    assert sorted(p.name for p in out.iterdir()) == sorted(ids.values())  # Ray lists these
    folder = out / "dispersed--grpo"
    assert sorted(p.name for p in folder.iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors", "bubblescope-adapter.json"]
    assert (folder / "adapter_model.safetensors").read_bytes() == b"weights dispersed"
    assert not (folder / "adapter_model.safetensors").is_symlink()
    # Again, as symlinks: replaces the folders, leaves no staging behind.
    export_adapters_for_vllm(registry, out, {"dispersed": "grpo"}, link=True)
    linked = out / "dispersed--grpo" / "adapter_model.safetensors"
    assert linked.is_symlink()
    assert linked.resolve() == (registry / "dispersed/grpo/adapter_model.safetensors").resolve()
    assert sorted(p.name for p in out.iterdir()) == sorted(ids.values())


@pytest.mark.parametrize(("config", "hint"), [
    ({"use_dora": True}, "DoRA"),
    ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
    ({"r": 128}, "rank 128 above max_lora_rank 64"),
])
def test_export_refuses_what_vllm_cannot_serve(tmp_path, config, hint):
    fake_adapter(tmp_path / "adapters", "p1", "sft", **config)
    with pytest.raises(AdapterError, match=hint) as caught:
        export_adapters_for_vllm(tmp_path / "adapters", tmp_path / "flat", {"p1": "sft"},
                                 max_lora_rank=64)
    assert "persona 'p1'" in str(caught.value)
    assert not (tmp_path / "flat").exists()


def test_export_checks_every_adapter_before_writing(tmp_path):
    fake_adapter(tmp_path / "adapters", "p1", "sft")
    with pytest.raises(AdapterError, match="persona 'p2': no adapter"):
        export_adapters_for_vllm(tmp_path / "adapters", tmp_path / "flat",
                                 {"p1": "sft", "p2": "sft"})
    assert not (tmp_path / "flat").exists()


def test_the_cpu_engine_takes_a_cpu_bundle_and_passes_ray(ray_llm_config):
    spec = VllmPolicySpec(**BASE, device="cpu", cpus_per_replica=0.5, kv_cache_gb=2,
                          dtype="float32", enforce_eager=True)
    config = llm_config_dict(spec)
    assert config["placement_group_config"] == {"bundles": [{"CPU": 0.5}]}
    assert config["deployment_config"]["ray_actor_options"] == {"num_cpus": 0}
    assert config["runtime_env"] == {"env_vars": {"VLLM_CPU_KVCACHE_SPACE": "2"}}
    engine = config["engine_kwargs"]
    assert "gpu_memory_utilization" not in engine and engine["enforce_eager"] is True
    parsed = ray_llm_config.model_validate(config)
    assert parsed.placement_group_config == {"bundles": [{"CPU": 0.5}]}
    args = serve_config_dict(spec)["applications"][0]["args"]
    assert args["ingress_deployment_config"] == {"ray_actor_options": {"num_cpus": 0}}
    assert "enforce_eager" not in llm_config_dict(VllmPolicySpec(**BASE))["engine_kwargs"]


def test_export_from_the_job_s_adapter_folders(tmp_path):
    from bubblescope.serve.vllm_app import export_adapter_folders

    folder = fake_adapter(tmp_path / "adapters", "concentrated", "sft-grpo", r=128)
    ids = export_adapter_folders({"concentrated": folder}, tmp_path / "flat", max_lora_rank=128)
    assert ids == {"concentrated": "concentrated--sft-grpo"}
    assert (tmp_path / "flat" / "concentrated--sft-grpo" / "adapter_config.json").is_file()
    with pytest.raises(AdapterError, match="rank 128 above max_lora_rank 64"):
        export_adapter_folders({"concentrated": folder}, tmp_path / "other", max_lora_rank=64)
