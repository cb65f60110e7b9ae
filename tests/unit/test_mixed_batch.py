"""One generate pass over a batch whose prompts use different LoRA adapters: under greedy
decoding each answer equals what its own adapter gives the prompt alone, for adapters of
different ranks (a stacked SFT+GRPO one among them), the base model, frames and the watch()
constraint; adapters that PEFT cannot mix are generated per adapter, with the same answers."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from bubblescope.agent.adapter_stack import stack_adapters
from bubblescope.agent.errors import AdapterError
from bubblescope.agent.prompt import Prompt
from bubblescope.agent.spec import GenerationSpec
from bubblescope.serve.engine import EchoEngine, TransformersEngine

GREEDY = GenerationSpec(max_new_tokens=12, temperature=0)
VISION_MODULES = r".*visual.*\.(qkv|proj)"


def _adapter(base, folder, rank: int, seed: int, modules: str | None = None) -> str:
    """A LoRA adapter with random (not zero) B matrices, so it changes the model's answers."""
    from peft import LoraConfig, get_peft_model

    from bubblescope.agent.vlm import load_model
    from bubblescope.trainer.config import LANGUAGE_MODULES

    torch.manual_seed(seed)
    model = get_peft_model(load_model(base), LoraConfig(
        r=rank, lora_alpha=4 * rank, target_modules=modules or LANGUAGE_MODULES,
        init_lora_weights=False))
    model.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def adapters(tiny_vlm, tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("mixed-adapters")
    paths = {"sft-a": _adapter(tiny_vlm, root / "a", rank=8, seed=1),
             "sft-b": _adapter(tiny_vlm, root / "b", rank=4, seed=2)}
    paths["stacked"] = str(stack_adapters(paths["sft-a"], paths["sft-b"], root / "a+b"))  # r 16
    return paths


@pytest.fixture(scope="module")
def engine(tiny_vlm, adapters) -> TransformersEngine:
    engine = TransformersEngine(str(tiny_vlm))
    for key, path in adapters.items():
        engine.load_adapter(key, path)
    return engine


def _prompt(text: str, colour: tuple[int, int, int] | None = None) -> Prompt:
    content: list[dict] = [{"type": "image"}] if colour else []
    content.append({"type": "text", "text": text})
    images = [Image.new("RGB", (112, 112), colour)] if colour else []
    return Prompt(messages=[{"role": "user", "content": content}], images=images)


PROMPTS = [_prompt("cooking noodles at home"), _prompt("a cat on a sofa", (200, 40, 40)),
           _prompt("football highlights, last minute goal"), _prompt("hi", (20, 90, 220))]
KEYS = ["sft-a", "sft-b", "", "stacked"]


def _alone(engine, key: str, prompt: Prompt, generation: GenerationSpec = GREEDY) -> str:
    return engine.generate([key], [prompt], generation)[0]


def _mix() -> tuple[list[str], list[Prompt]]:
    """Every adapter with every prompt, interleaved so neighbours differ in both."""
    pairs = [(KEYS[(i + j) % len(KEYS)], PROMPTS[j]) for i in range(len(KEYS))
             for j in range(len(PROMPTS))]
    return [k for k, _ in pairs], [p for _, p in pairs]


def test_adapters_answer_the_same_prompt_differently(engine):
    # the premise of the routing test below: a swapped adapter would change the answer
    for prompt in PROMPTS[:2]:
        answers = {key: _alone(engine, key, prompt) for key in KEYS}
        assert len(set(answers.values())) == len(KEYS), answers


def test_a_mixed_batch_equals_each_adapter_alone(engine):
    keys, prompts = _mix()
    expected = [_alone(engine, key, prompt) for key, prompt in zip(keys, prompts, strict=True)]
    assert engine.generate(keys, prompts, GREEDY) == expected


def test_a_mixed_batch_keeps_the_watch_constraint(engine):
    constrained = GREEDY.model_copy(update={"constrain_watch": True, "max_new_tokens": 24})
    keys, prompts = _mix()
    keys, prompts = keys[:8], prompts[:8]
    expected = [_alone(engine, key, prompt, constrained)
                for key, prompt in zip(keys, prompts, strict=True)]
    assert engine.generate(keys, prompts, constrained) == expected


def test_adapters_that_touch_the_vision_tower_are_generated_per_adapter(tiny_vlm, adapters,
                                                                        tmp_path):
    engine = TransformersEngine(str(tiny_vlm))
    engine.load_adapter("sft-a", adapters["sft-a"])
    engine.load_adapter("seeing", _adapter(tiny_vlm, tmp_path / "seeing", rank=4, seed=3,
                                           modules=VISION_MODULES))
    keys, prompts = ["sft-a", "seeing", "", "seeing"], [PROMPTS[1], PROMPTS[1], PROMPTS[3], PROMPTS[0]]
    expected = [_alone(engine, key, prompt) for key, prompt in zip(keys, prompts, strict=True)]
    assert expected[0] != expected[1]
    assert engine.generate(keys, prompts, GREEDY) == expected


def test_one_key_per_prompt_and_only_loaded_adapters(engine):
    with pytest.raises(ValueError, match="one per prompt"):
        engine.generate(["sft-a"], PROMPTS[:2], GREEDY)
    with pytest.raises(AdapterError, match="'missing'"):
        engine.generate(["sft-a", "missing"], PROMPTS[:2], GREEDY)


def test_the_echo_engine_tags_each_answer_with_its_own_adapter_and_prompt():
    answers = EchoEngine("/models/none").generate(["p1", ""], PROMPTS[:2], GREEDY)
    assert answers[0].startswith("adapter=p1 batch=2 adapters=2 re='cooking noodles at home'")
    assert answers[1].startswith("adapter=base batch=2 adapters=2 re='a cat on a sofa'")
    assert answers[1].endswith("watch(2)\n```")  # one frame
