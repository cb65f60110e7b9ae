"""The training config: one YAML file for `bubblescope train sft|grpo`, validated at the edge.

Defaults are the PersonaAct paper's (SFT: LoRA rank 64, alpha 128; GRPO: rank 8, alpha 32, 8
generations, temperature 1.0, KL beta 0.01; both lr 1e-5, batch 1, gradient accumulation 2).
They suit a pretrained 7B base; the tiny model of tests and the quickstart needs larger steps
(see examples/training/tiny.yaml).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bubblescope.agent.spec import PromptSpec
from bubblescope.config_files import read_mapping, validate
from bubblescope.trainer.errors import TrainConfigError

# The text model's projections; the vision tower keeps its weights (PersonaAct tunes the LLM).
LANGUAGE_MODULES = (r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj"
                    r"|down_proj)")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoraSpec(_Section):
    r: int = Field(ge=1, description="LoRA rank")
    alpha: int = Field(ge=1, description="LoRA alpha (scale = alpha / r)")
    dropout: float = Field(default=0.05, ge=0, lt=1, description="dropout on the LoRA input")
    target_modules: str = Field(default=LANGUAGE_MODULES,
                                description="regex of the module names that get adapters")


class DataSpec(_Section):
    source: Literal["simulated", "dataset"] = Field(
        default="simulated", description="simulated: a synthetic human's trace; dataset: a "
        "recorded or imported session dataset")
    human: str | None = Field(default=None, description="simulated: the synthetic human "
                              "(default: the persona's source human)")
    seed: int | None = Field(default=None, description="simulated: the trace's seed (default: "
                             "the persona's source seed)")
    records: int = Field(default=1500, ge=20, description="simulated: videos in the trace")
    path: str | None = Field(default=None, description="dataset: the dataset folder")
    participant: str | None = Field(default=None, description="dataset: whose sessions "
                                    "(default: the persona id)")
    max_samples: int | None = Field(default=None, ge=1, description="cap on training samples "
                                    "(the first ones in time order); none: all")

    @model_validator(mode="after")
    def _dataset_needs_path(self) -> DataSpec:
        if self.source == "dataset" and not self.path:
            raise ValueError("source 'dataset' needs data.path, the dataset folder")
        return self


class OptimSpec(_Section):
    learning_rate: float = Field(default=1e-5, gt=0)
    epochs: float = Field(default=1.0, gt=0, description="passes over the training samples")
    batch_size: int = Field(default=1, ge=1, description="samples per device per step")
    grad_accumulation: int = Field(default=2, ge=1)
    max_length: int | None = Field(default=None, ge=64, description="token cap per sample; none: "
                                   "no truncation (truncation would cut image tokens)")
    gradient_checkpointing: bool = Field(default=True, description="recompute activations in "
                                         "the backward pass: a 7B fits a GPU; a tiny model on "
                                         "CPU trains faster without")
    seed: int = 0


class SftSpec(OptimSpec):
    lora: LoraSpec | None = Field(default=LoraSpec(r=64, alpha=128),
                                  description="none: train every weight (the tiny base)")


class GrpoSpec(OptimSpec):
    lora: LoraSpec | None = Field(default=LoraSpec(r=8, alpha=32))
    generations: int = Field(default=8, ge=2, description="completions per prompt")
    temperature: float = Field(default=1.0, gt=0)
    beta: float = Field(default=0.01, ge=0, description="KL penalty")
    max_completion_length: int = Field(default=96, ge=8)
    max_prompts: int | None = Field(default=None, ge=1, description="GRPO on at most this many "
                                    "training decisions, evenly spread; none: all")


class TrainConfig(_Section):
    base_model: str = Field(description="folder of a Qwen2.5-VL checkpoint")
    data: DataSpec = DataSpec()
    prompt: PromptSpec = Field(default=PromptSpec(), description="the prompt the model is "
                               "trained with; its adapters are served with it")
    sft: SftSpec = SftSpec()
    grpo: GrpoSpec = GrpoSpec()
    workers: int = Field(default=1, ge=1, description="Ray Train workers")
    use_gpu: bool = Field(default=False, description="one GPU per worker")
    cpus_per_worker: float = Field(default=1, gt=0)
    storage_path: str = Field(default="results/training",
                              description="Ray Train's checkpoints and run folders")
    adapters_dir: str = Field(default="adapters", description="where trained adapters are "
                              "registered for Serve: <adapters_dir>/<persona>/<name>")


def load_train_config(path: str | Path, overrides: dict | None = None) -> TrainConfig:
    """The config in `path` (keys relative to the file resolved against its folder)."""
    path = Path(path)
    data = read_mapping(path, TrainConfigError, "training config")
    data.update(overrides or {})
    config = validate(TrainConfig, data, TrainConfigError, str(path))
    here = path.resolve().parent
    return config.model_copy(update={
        "base_model": str(_resolve(here, config.base_model)),
        "storage_path": str(_resolve(here, config.storage_path)),
        "adapters_dir": str(_resolve(here, config.adapters_dir)),
        "data": config.data.model_copy(update={
            "path": str(_resolve(here, config.data.path)) if config.data.path else None}),
    })


def _resolve(here: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else here / path
