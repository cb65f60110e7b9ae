"""Stacking two LoRA adapters into one: how SFT+GRPO is served on the raw base model.

GRPO after SFT trains its LoRA on the base with the SFT delta merged in, so the model it
learned is W + dSFT + dGRPO. LoRA deltas add, so one adapter whose rank is the sum of both
ranks, with each part's scale folded into its B matrix, is exactly that model on the raw base:
many personas then share one base in memory, each with a single adapter. The stacked rank is
padded with zero rows up to a size vLLM accepts (zeros change nothing).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bubblescope.agent.adapters import check_adapter
from bubblescope.agent.errors import AdapterError
from bubblescope.agent.spec import VLLM_LORA_RANKS

WEIGHTS, CONFIG = "adapter_model.safetensors", "adapter_config.json"


def _scale(config: dict) -> float:
    if config.get("use_rslora"):
        return config["lora_alpha"] / config["r"] ** 0.5
    return config["lora_alpha"] / config["r"]


def _plain(config: dict, path: Path) -> None:
    odd = [k for k in ("use_dora", "modules_to_save", "rank_pattern", "alpha_pattern")
           if config.get(k)]
    if odd:
        raise AdapterError(f"adapter {path} uses {', '.join(odd)}; only plain LoRA adapters stack")


def _padded_rank(rank: int) -> int:
    return next((size for size in VLLM_LORA_RANKS if size >= rank), rank)


def stack_adapters(first: str | Path, second: str | Path, out: str | Path) -> Path:
    """One adapter in `out` equal to applying `first` and then `second` on the same base."""
    import torch
    from safetensors.torch import load_file, save_file

    first, second, out = Path(first), Path(second), Path(out)
    configs = []
    for path in (first, second):
        check_adapter(path)
        configs.append(json.loads((path / CONFIG).read_text("utf-8")))
        _plain(configs[-1], path)
    weights = [load_file(str(path / WEIGHTS)) for path in (first, second)]
    if set(weights[0]) != set(weights[1]):
        raise AdapterError(f"adapters {first} and {second} adapt different modules")
    rank = _padded_rank(configs[0]["r"] + configs[1]["r"])
    stacked = {}
    for key in weights[0]:
        parts = [w[key].float() for w in weights]
        if ".lora_A." in key:  # (r, in): stack ranks, pad with zero rows
            merged = torch.cat(parts, dim=0)
            pad = torch.zeros(rank - merged.shape[0], merged.shape[1])
            stacked[key] = torch.cat([merged, pad], dim=0).contiguous()
        else:  # lora_B (out, r): fold each scale in, pad with zero columns
            merged = torch.cat([p * _scale(c) for p, c in zip(parts, configs, strict=True)], 1)
            pad = torch.zeros(merged.shape[0], rank - merged.shape[1])
            stacked[key] = torch.cat([merged, pad], dim=1).contiguous()
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_file(stacked, str(staging / WEIGHTS))
    config = {**configs[0], "r": rank, "lora_alpha": rank, "use_rslora": False,
              "lora_dropout": 0.0}
    (staging / CONFIG).write_text(json.dumps(config, indent=2), "utf-8")
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    return out
