"""Running a training algorithm under Ray Train and registering what it produced.

The driver checks everything a user can get wrong before any worker starts (base model path,
persona statistics), runs the algorithm's loop in a `TorchTrainer` with the configured
workers, and copies the final checkpoint into the adapter registry Serve loads from.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bubblescope.agent.adapter_stack import stack_adapters
from bubblescope.agent.adapters import register_adapter
from bubblescope.agent.vlm import check_model_dir
from bubblescope.personas.schema import Persona
from bubblescope.trainer.config import TrainConfig
from bubblescope.trainer.errors import TrainConfigError


@dataclass(frozen=True)
class TrainingResult:
    adapter: Path  # the registered adapter folder
    metrics: dict
    checkpoint: str  # where Ray Train keeps the run's checkpoint


def _loop(algorithm: str) -> Callable[[dict], None]:
    if algorithm == "sft":
        from bubblescope.trainer.sft import sft_loop

        return sft_loop
    if algorithm == "grpo":
        from bubblescope.trainer.grpo import grpo_loop

        return grpo_loop
    raise TrainConfigError(f"unknown training algorithm {algorithm!r}; use sft or grpo")


def _check(algorithm: str, config: TrainConfig, persona: Persona,
           init_adapter: str | None) -> None:
    check_model_dir(config.base_model)
    if not persona.stats.duration_sample:
        raise TrainConfigError(f"persona {persona.id!r} has no watch-duration statistics")
    if getattr(config, algorithm).lora is None:
        raise TrainConfigError(f"{algorithm}.lora is empty: persona training makes LoRA "
                               "adapters", key=f"{algorithm}.lora")
    if algorithm == "grpo":
        from bubblescope.trainer.grpo import check_grpo

        check_grpo(config, init_adapter)
    elif init_adapter:
        raise TrainConfigError("only grpo starts from an adapter (SFT+GRPO)", key="init_adapter")


def run_training(algorithm: str, config: TrainConfig, persona: Persona,
                 name: str | None = None, init_adapter: str | None = None) -> TrainingResult:
    """Train `persona`'s adapter with `algorithm` and register it as `name` (default: the
    algorithm's name); `init_adapter`, a registered SFT adapter, makes grpo SFT+GRPO, and the
    registered adapter is then SFT and GRPO stacked into one (servable on the raw base)."""
    from bubblescope.trainer.ray_fit import fit

    loop = _loop(algorithm)
    init_adapter = str(Path(init_adapter).expanduser().resolve()) if init_adapter else None
    _check(algorithm, config, persona, init_adapter)
    result = fit(loop, {"config": config.model_dump(mode="json"),
                        "persona": persona.model_dump(mode="json"),
                        "init_adapter": init_adapter}, f"{algorithm}-{persona.id}", config)
    manifest = {"algorithm": algorithm + ("+stacked-on-init" if init_adapter else ""),
                "base_model": config.base_model, "metrics": result.metrics,
                "config": config.model_dump(mode="json"), "checkpoint": result.checkpoint.path,
                "init_adapter": init_adapter}
    with result.checkpoint.as_directory() as folder, tempfile.TemporaryDirectory() as scratch:
        trained = folder
        if init_adapter:
            trained = stack_adapters(init_adapter, folder, Path(scratch) / "stacked")
        adapter = register_adapter(trained, config.adapters_dir, persona.id, name or algorithm,
                                   manifest, config.prompt)
    return TrainingResult(adapter, dict(result.metrics), result.checkpoint.path)


def run_pooled_sft(config: TrainConfig, personas: list[Persona],
                   name: str = "nopersona") -> TrainingResult:
    """The -Persona ablation: one adapter on all `personas`' training data, without profiles,
    registered under `<adapters_dir>/_pooled/<name>`."""
    from bubblescope.trainer.evaluate import POOLED
    from bubblescope.trainer.ray_fit import fit

    blind = config.model_copy(update={"prompt": config.prompt.model_copy(
        update={"persona": False})})
    for persona in personas:
        _check("sft", blind, persona, None)
    result = fit(_loop("sft"), {"config": blind.model_dump(mode="json"), "pooled": [
        p.model_dump(mode="json") for p in personas]}, f"sft-{POOLED}", blind)
    manifest = {"algorithm": "sft-pooled-without-persona", "base_model": blind.base_model,
                "personas": [p.id for p in personas], "metrics": result.metrics,
                "config": blind.model_dump(mode="json"), "checkpoint": result.checkpoint.path}
    with result.checkpoint.as_directory() as folder:
        adapter = register_adapter(folder, blind.adapters_dir, POOLED, name, manifest,
                                   blind.prompt)
    return TrainingResult(adapter, dict(result.metrics), result.checkpoint.path)
