"""LoRA adapters for the tiny Qwen2.5-VL without training: PEFT's own adapters with random
weights (both matrices), so each one visibly changes what the model answers.

Saved with PEFT's `save_pretrained`, on the language model's projections as our trainer
adapts them, so the files are exactly what `bubblescope train` registers.
"""

from __future__ import annotations

from pathlib import Path


def random_adapter(base_model: Path, out: Path, *, r: int, seed: int) -> Path:
    """A rank-`r` adapter of `base_model` in `out`, its weights drawn from `seed`."""
    import torch
    from peft import LoraConfig, get_peft_model

    from bubblescope.agent.vlm import load_model
    from bubblescope.trainer.config import LANGUAGE_MODULES

    torch.manual_seed(seed)
    model = load_model(base_model, dtype="float32")
    config = LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0,
                        target_modules=LANGUAGE_MODULES, init_lora_weights=False)
    peft = get_peft_model(model, config)
    with torch.no_grad():  # PEFT's random init is tiny on a 64-wide model: make it count
        for name, weight in peft.named_parameters():
            if "lora_B" in name:
                weight.normal_(0.0, 0.5)
    out.mkdir(parents=True, exist_ok=True)
    peft.save_pretrained(str(out))
    return out
