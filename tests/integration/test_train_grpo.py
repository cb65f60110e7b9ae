"""GRPO of a persona adapter, plain and SFT+GRPO, on the tiny model.

The tiny model is freshly initialised, so under PersonaAct's rewards every answer it samples
scores 0 and GRPO has no signal: the Ray Train tests check the plumbing (registration, the
manifest, the base record, the reported rewards), and one in-process test swaps in a reward
that does vary to check that our GRPO set-up really moves the adapter.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from bubblescope.agent.adapters import check_adapter, read_manifest
from bubblescope.personas.loader import load_persona
from bubblescope.trainer import grpo
from bubblescope.trainer.config import GrpoSpec, TrainConfig
from bubblescope.trainer.errors import TrainConfigError
from bubblescope.trainer.rewards import completion_text
from bubblescope.trainer.runner import run_training
from tests.conftest import EXAMPLES

PERSONA = EXAMPLES / "personas" / "concentrated.yaml"
REWARDS = {"reward", "action_reward", "duration_reward", "format_reward"}
IDS = torch.tensor([[5, 9, 13, 21, 34]])


def _config(tmp_path, base_model, max_samples: int = 4, **grpo_changes) -> TrainConfig:
    spec = {"learning_rate": 5e-3, "epochs": 1, "generations": 2, "max_completion_length": 24,
            "lora": {"r": 4, "alpha": 16}, **grpo_changes}
    return TrainConfig.model_validate({
        "base_model": str(base_model), "data": {"records": 200, "max_samples": max_samples},
        "prompt": {"frame_edge": 56, "history": 2}, "grpo": spec,
        "sft": {"learning_rate": 5e-3, "epochs": 1, "lora": {"r": 4, "alpha": 16}},
        "storage_path": str(tmp_path / "runs"), "adapters_dir": str(tmp_path / "adapters")})


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=IDS).logits


def _sha256(adapter) -> str:
    return hashlib.sha256((adapter / "adapter_model.safetensors").read_bytes()).hexdigest()


@pytest.mark.slow
def test_grpo_under_ray_train_registers_an_adapter(tmp_path, tiny_vlm, ray_local):
    from peft import PeftModel

    from bubblescope.agent.vlm import load_model

    result = run_training("grpo", _config(tmp_path, tiny_vlm), load_persona(PERSONA))
    assert result.adapter == tmp_path / "adapters" / "concentrated" / "grpo"
    check_adapter(result.adapter)
    manifest = read_manifest(result.adapter)
    assert manifest["algorithm"] == "grpo" and manifest["init_adapter"] is None
    metrics = manifest["metrics"]
    # One prompt of 2 completions per optimiser step (batch 1 x accumulation 2).
    assert metrics["train_samples"] == 4 and metrics["steps"] == 4
    assert metrics.keys() >= REWARDS and 0 <= metrics["reward"] <= 3
    record = json.loads((result.adapter / grpo.BASE_RECORD).read_text("utf-8"))
    assert record == {"base_model": str(tiny_vlm), "merge_first": []}
    tuned = PeftModel.from_pretrained(load_model(tiny_vlm), str(result.adapter))
    assert torch.isfinite(_logits(tuned)).all()


@pytest.mark.slow
def test_sft_then_grpo_registers_one_stacked_adapter(tmp_path, tiny_vlm, ray_local):
    from peft import PeftModel

    from bubblescope.agent.vlm import load_model

    config, persona = _config(tmp_path, tiny_vlm), load_persona(PERSONA)
    sft = run_training("sft", config, persona)
    result = run_training("grpo", config, persona, name="sft-grpo",
                          init_adapter=str(sft.adapter))
    manifest = read_manifest(result.adapter)
    assert manifest["init_adapter"] == str(sft.adapter.resolve())
    # The Ray checkpoint keeps the GRPO delta alone, with the adapter it needs merged first.
    record = json.loads((Path(result.checkpoint) / grpo.BASE_RECORD).read_text("utf-8"))
    assert record["merge_first"] == [{"adapter": str(sft.adapter.resolve()),
                                      "sha256": _sha256(sft.adapter)}]
    # The registry holds SFT and GRPO stacked: one adapter on the raw base, as Serve loads it.
    sft_rank = json.loads((sft.adapter / "adapter_config.json").read_text())["r"]
    stacked = json.loads((result.adapter / "adapter_config.json").read_text())
    assert stacked["r"] >= sft_rank + config.grpo.lora.r
    merged = PeftModel.from_pretrained(load_model(tiny_vlm), str(sft.adapter)).merge_and_unload()
    with torch.no_grad():
        two_step = _logits(PeftModel.from_pretrained(
            merged, str(Path(result.checkpoint))))
        one_adapter = _logits(PeftModel.from_pretrained(load_model(tiny_vlm),
                                                        str(result.adapter)))
    assert torch.allclose(two_step, one_adapter, atol=1e-4)


class LengthReward:
    """Longer answers score more: a signal even a random model's samples differ on."""

    __name__ = "length_reward"

    def __call__(self, prompts=None, completions=(), **_) -> list[float]:
        return [len(completion_text(completion)) / 100 for completion in completions]


@pytest.fixture
def one_thread():
    """Torch's threads fight the other tests for 2 cores; one thread is many times faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_grpo_moves_the_adapter_on_top_of_the_merged_one(tmp_path, tiny_vlm, monkeypatch,
                                                         one_thread):
    from peft import LoraConfig, PeftModel, get_peft_model

    from bubblescope.agent.vlm import load_model

    # A random LoRA (B not zero) stands in for the SFT adapter.
    start = tmp_path / "start"
    get_peft_model(load_model(tiny_vlm), LoraConfig(
        r=4, target_modules=grpo.lora_config(GrpoSpec().lora).target_modules,
        init_lora_weights=False)).save_pretrained(str(start))
    monkeypatch.setattr(grpo, "reward_funcs", lambda: [LengthReward()])
    config = _config(tmp_path, tiny_vlm, max_samples=2)
    metrics = grpo.train_grpo(config, load_persona(PERSONA), str(start), str(tmp_path / "out"))
    assert metrics["steps"] == 2 and metrics["frac_reward_zero_std"] < 1

    merged = PeftModel.from_pretrained(load_model(tiny_vlm), str(start)).merge_and_unload()
    before = _logits(merged)
    after = _logits(PeftModel.from_pretrained(merged, str(tmp_path / "out" / "adapter")))
    assert not torch.allclose(before, after)  # LoRA's B starts at zero: GRPO moved it


def test_generation_round_is_whole_groups_of_whole_steps():
    assert grpo.generation_batch_size(GrpoSpec(), workers=1) == 8  # lcm(1 x 1 x 2, 8)
    assert grpo.generation_batch_size(GrpoSpec(), workers=3) == 24  # lcm(1 x 3 x 2, 8)
    spec = GrpoSpec(batch_size=4, grad_accumulation=2, generations=2)
    assert grpo.generation_batch_size(spec, workers=1, prompts=4) == 8


def test_grpo_config_is_accepted_by_trl(tmp_path):
    config = _config(tmp_path, tmp_path, batch_size=3, grad_accumulation=1, generations=4)
    args = grpo.grpo_args(config, str(tmp_path / "out"), prompts=3)
    assert args.generation_batch_size == 12 and args.steps_per_generation == 4
    assert args.num_generations == 4 and args.beta == 0.01 and args.max_completion_length == 24


def test_too_few_prompts_for_a_round_is_named_before_any_worker(tmp_path, tiny_vlm):
    with pytest.raises(TrainConfigError, match="grpo.generations") as error:
        grpo.generation_batch_size(GrpoSpec(batch_size=3, grad_accumulation=1, generations=4),
                                   workers=1, prompts=2)
    assert "needs 3 training prompts" in str(error.value) and "\n" not in str(error.value)
    config = _config(tmp_path, tiny_vlm, max_samples=2, batch_size=3, grad_accumulation=1,
                     generations=4)
    with pytest.raises(TrainConfigError, match="grpo.generations"):
        run_training("grpo", config, load_persona(PERSONA))


def test_init_adapter_mistakes_are_config_errors(tmp_path, tiny_vlm):
    config, persona = _config(tmp_path, tiny_vlm), load_persona(PERSONA)
    with pytest.raises(TrainConfigError, match="init_adapter: .*no adapter at"):
        run_training("grpo", config, persona, init_adapter=str(tmp_path / "absent"))
    with pytest.raises(TrainConfigError, match="init_adapter: only grpo"):
        run_training("sft", config, persona, init_adapter=str(tmp_path / "absent"))
    with pytest.raises(TrainConfigError, match="grpo.max_length"):
        run_training("grpo", _config(tmp_path, tiny_vlm, max_length=256), persona)
