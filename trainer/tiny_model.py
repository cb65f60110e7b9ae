"""A tiny Qwen2.5-VL, built here with no download: same architecture, tokenizer and processor
layout as Qwen/Qwen2.5-VL-7B-Instruct, a few hundred thousand parameters.

Everything downstream loads the saved folder exactly as it would load the 7B checkpoint
(`bubblescope.agent.vlm.load_vlm`), so tests and the quickstart exercise the production
loading, prompting, training and serving code. The tokenizer is a byte-level BPE trained on our
own text, with Qwen's chat and vision special tokens, so any input (Chinese included) encodes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Qwen2.5-VL's special tokens, in the order Qwen's own vocabulary lists them after the BPE
# merges; the chat template and the processor find them by text, never by id.
SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)

# Qwen2.5-VL's chat layout: `<|im_start|>role\n...<|im_end|>\n`, images as
# `<|vision_start|><|image_pad|><|vision_end|>` (the processor expands the pad to one token per
# merged patch), a default system turn, and `<|im_start|>assistant\n` as the generation prompt.
# The `{% generation %}` markers let trainers find the assistant's tokens. No whitespace
# control in the tags: the only whitespace is what the strings spell out.
CHAT_TEMPLATE = (
    "{% macro render(content) %}"
    "{% if content is string %}{{ content }}"
    "{% else %}{% for part in content %}"
    "{% if part['type'] == 'image' or 'image' in part or 'image_url' in part %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'video' or 'video' in part %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in part %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "{% endmacro %}"
    "{% if messages[0]['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "<|im_start|>assistant\n{% generation %}{{ render(message['content']) }}<|im_end|>"
    "{% endgeneration %}\n"
    "{% else %}"
    "<|im_start|>{{ message['role'] }}\n{{ render(message['content']) }}<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class TinyModelConfig:
    vocab_size: int = 2048  # BPE vocabulary before the special tokens
    hidden_size: int = 64  # text model width
    layers: int = 2  # text decoder layers
    # attention heads (half as many key/value heads, at least one: grouped-query, as in Qwen);
    # head size 32, the smallest vLLM's CPU attention kernels take (16 kills the engine)
    heads: int = 2
    intermediate_size: int = 172  # text MLP width
    vision_hidden_size: int = 32  # vision tower width
    vision_depth: int = 2  # vision blocks; the last one uses full attention
    vision_heads: int = 2
    max_positions: int = 4096  # longest prompt + answer, in tokens
    image_max_pixels: int = 112 * 112  # frames are resized below this (one 4x4 merged grid)
    seed: int = 0  # weight initialisation


def train_tokenizer(corpus: Iterable[str], config: TinyModelConfig):
    """A byte-level BPE over `corpus`, with Qwen's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    # One token per digit, as Qwen's tokenizer splits numbers: watch times are then spelled
    # the same way at every magnitude, which a tiny model learns far more easily.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size, special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    return tokenizer


def _wrap_tokenizer(tokenizer):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        unk_token=None, chat_template=CHAT_TEMPLATE, model_max_length=32768,
        additional_special_tokens=[t for t in SPECIAL_TOKENS if t not in
                                   ("<|im_end|>", "<|endoftext|>")],
    )


def _processor(tokenizer, config: TinyModelConfig):
    from transformers.models.qwen2_vl import Qwen2VLImageProcessorPil

    from bubblescope.agent.vlm import FrameProcessor

    # The PIL image processor needs no torchvision (absent on CPU installs); audits pass frames,
    # never video clips, so the processor holds no video processor (but the folder gets its
    # config file, which the stock AutoProcessor and vLLM need: build_tiny_model).
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=14, temporal_patch_size=2, merge_size=2,
        size={"shortest_edge": 56 * 56, "longest_edge": config.image_max_pixels},
    )
    return FrameProcessor(image_processor=image_processor, tokenizer=tokenizer,
                          chat_template=CHAT_TEMPLATE)


def _model_config(tokenizer, config: TinyModelConfig):
    from transformers import Qwen2_5_VLConfig

    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in SPECIAL_TOKENS}
    text = {
        "vocab_size": len(tokenizer), "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size, "num_hidden_layers": config.layers,
        "num_attention_heads": config.heads, "num_key_value_heads": max(1, config.heads // 2),
        "max_position_embeddings": config.max_positions, "max_window_layers": config.layers,
        "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        # Qwen2.5-VL's 3-D rotary sections (time, height, width) must sum to head_dim / 2.
        "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0,
                            "mrope_section": _mrope_section(config)},
    }
    vision = {
        "depth": config.vision_depth, "hidden_size": config.vision_hidden_size,
        "intermediate_size": config.vision_hidden_size * 2, "num_heads": config.vision_heads,
        "out_hidden_size": config.hidden_size, "patch_size": 14, "spatial_merge_size": 2,
        "temporal_patch_size": 2, "window_size": 112,
        "fullatt_block_indexes": [config.vision_depth - 1],
    }
    return Qwen2_5_VLConfig(
        text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"], tie_word_embeddings=True,
    )


def _mrope_section(config: TinyModelConfig) -> list[int]:
    half = config.hidden_size // config.heads // 2
    time = half // 4
    height = (half - time) // 2
    return [time, height, half - time - height]


def build_tiny_model(out_dir: str | Path, corpus: Iterable[str],
                     config: TinyModelConfig | None = None) -> Path:
    """Train the tokenizer on `corpus`, initialise the model, save all three to `out_dir`."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from bubblescope.agent.vlm import ensure_video_processor

    config = config or TinyModelConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _wrap_tokenizer(train_tokenizer(corpus, config))
    processor = _processor(tokenizer, config)
    torch.manual_seed(config.seed)
    model = Qwen2_5_VLForConditionalGeneration(_model_config(tokenizer, config))
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    processor.save_pretrained(out)
    ensure_video_processor(out)  # vLLM's AutoProcessor needs it (see agent/vlm.py)
    (out / "bubblescope-tiny.json").write_text(json.dumps(config.__dict__, indent=2))
    return out
