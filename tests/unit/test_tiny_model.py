"""The tiny Qwen2.5-VL: built with no download, loaded by path exactly like the 7B."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from PIL import Image

from bubblescope.agent.action_grammar import parse_action
from bubblescope.agent.errors import ModelLoadError
from bubblescope.agent.vlm import load_model, load_processor
from bubblescope.trainer.tiny_model import SPECIAL_TOKENS


def test_saved_as_stock_qwen_classes(tiny_vlm):
    config = json.loads((tiny_vlm / "config.json").read_text())
    assert config["architectures"] == ["Qwen2_5_VLForConditionalGeneration"]
    assert config["model_type"] == "qwen2_5_vl"
    processor_config = json.loads((tiny_vlm / "processor_config.json").read_text())
    assert processor_config["processor_class"] == "Qwen2_5_VLProcessor"
    tokens = json.loads((tiny_vlm / "tokenizer.json").read_text())["added_tokens"]
    assert {t["content"] for t in tokens} >= set(SPECIAL_TOKENS)


def test_chat_layout_matches_qwen(tiny_vlm):
    processor = load_processor(tiny_vlm)
    messages = [{"role": "user", "content": [{"type": "image"},
                                             {"type": "text", "text": "noodles"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                    "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>noodles"
                    "<|im_end|>\n<|im_start|>assistant\n")


def test_any_text_round_trips_through_the_tokenizer(tiny_vlm):
    tokenizer = load_processor(tiny_vlm).tokenizer
    for text in ("watch(7.3)\nlike()", "美食探店 好吃！", "emoji 🎉 and tabs\t"):
        assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_numbers_are_one_token_per_digit_as_in_qwen(tiny_vlm):
    tokenizer = load_processor(tiny_vlm).tokenizer
    assert tokenizer.tokenize("watch(104.25)") == ["watch", "(", "1", "0", "4", ".", "2", "5",
                                                    ")"]


def test_image_expands_to_merged_patches_and_generates(tiny_vlm):
    processor, model = load_processor(tiny_vlm), load_model(tiny_vlm)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    image = Image.new("RGB", (112, 112), (200, 40, 40))
    batch = processor(text=[text], images=[image], return_tensors="pt")
    grid = batch["image_grid_thw"][0]
    pads = int((batch["input_ids"] == processor.image_token_id).sum())
    assert pads == int(grid.prod()) // 4 == 16  # 8x8 patches of 14 px, merged 2x2
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=12, do_sample=False)
    answer = processor.batch_decode(out[:, batch["input_ids"].shape[1]:])[0]
    parsed = parse_action(answer, fallback_watch_s=4.0)
    assert parsed.action.watch_s >= 0  # an untrained model's babble still parses safely


def test_wrong_paths_name_the_folder(tmp_path, tiny_vlm):
    with pytest.raises(ModelLoadError, match="no such model folder"):
        load_model(tmp_path / "absent")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_vlm, broken)
    (broken / "config.json").unlink()
    with pytest.raises(ModelLoadError, match=r"missing config\.json"):
        load_processor(broken)
