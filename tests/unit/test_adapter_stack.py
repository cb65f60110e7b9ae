"""Stacking SFT and GRPO adapters into one equals merging SFT first and applying GRPO on top."""

from __future__ import annotations

import json

import pytest
import torch

from bubblescope.agent.adapter_stack import stack_adapters
from bubblescope.agent.errors import AdapterError
from bubblescope.trainer.config import LANGUAGE_MODULES

IDS = torch.tensor([[5, 9, 13, 21, 34, 55]])


def _random_adapter(model, folder, rank: int, alpha: int, seed: int):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    peft = get_peft_model(model, LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights=False,
                                            target_modules=LANGUAGE_MODULES))
    peft.save_pretrained(str(folder))
    return peft


def test_stacked_adapter_is_the_two_step_model(tmp_path, tiny_vlm):
    from peft import PeftModel

    from bubblescope.agent.vlm import load_model

    _random_adapter(load_model(tiny_vlm), tmp_path / "sft", 8, 16, seed=1)
    merged = PeftModel.from_pretrained(load_model(tiny_vlm), str(tmp_path / "sft"))
    two_step = _random_adapter(merged.merge_and_unload(), tmp_path / "grpo", 4, 32, seed=2)
    stack_adapters(tmp_path / "sft", tmp_path / "grpo", tmp_path / "both")
    config = json.loads((tmp_path / "both" / "adapter_config.json").read_text())
    assert config["r"] == 16  # 8 + 4 padded up to a rank vLLM serves
    with torch.no_grad():
        want = two_step(input_ids=IDS).logits
        got = PeftModel.from_pretrained(load_model(tiny_vlm), str(tmp_path / "both"))(
            input_ids=IDS).logits
        plain = load_model(tiny_vlm)(input_ids=IDS).logits
    assert torch.allclose(want, got, atol=1e-4)
    assert not torch.allclose(want, plain, atol=1e-2)


def test_only_plain_lora_stacks(tmp_path, tiny_vlm):
    from bubblescope.agent.vlm import load_model

    _random_adapter(load_model(tiny_vlm), tmp_path / "a", 4, 8, seed=1)
    _random_adapter(load_model(tiny_vlm), tmp_path / "b", 4, 8, seed=2)
    config_path = tmp_path / "b" / "adapter_config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "use_dora": True}))
    with pytest.raises(AdapterError, match="use_dora"):
        stack_adapters(tmp_path / "a", tmp_path / "b", tmp_path / "out")
    assert not (tmp_path / "out").exists()
