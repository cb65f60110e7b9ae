"""Running a training algorithm under Ray Train and registering what it produced.

The driver checks everything a user can get wrong before any worker starts (base model path,
persona statistics), runs the algorithm's loop in a `TorchTrainer` with the configured
workers, and copies the final checkpoint into the adapter registry Serve loads from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bubblescope.personas.schema import Persona
from bubblescope.serve.adapters import register_adapter
from bubblescope.serve.vlm import check_model_dir

from .config import TrainConfig
from .errors import TrainConfigError, TrainingFailed


@dataclass(frozen=True)
class TrainingResult:
    adapter: Path  # the registered adapter folder
    metrics: dict
    checkpoint: str  # where Ray Train keeps the run's checkpoint


def _loop(algorithm: str) -> Callable[[dict], None]:
    if algorithm == "sft":
        from .sft import sft_loop

        return sft_loop
    if algorithm == "grpo":
        from .grpo import grpo_loop

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
        from .grpo import check_grpo

        check_grpo(config, init_adapter)
    elif init_adapter:
        raise TrainConfigError("only grpo starts from an adapter (SFT+GRPO)", key="init_adapter")


def run_training(algorithm: str, config: TrainConfig, persona: Persona,
                 name: str | None = None, init_adapter: str | None = None) -> TrainingResult:
    """Train `persona`'s adapter with `algorithm` and register it as `name` (default: the
    algorithm's name); `init_adapter`, a registered SFT adapter, makes grpo SFT+GRPO."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    loop = _loop(algorithm)
    init_adapter = str(Path(init_adapter).expanduser().resolve()) if init_adapter else None
    _check(algorithm, config, persona, init_adapter)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    trainer = TorchTrainer(
        loop,
        train_loop_config={"config": config.model_dump(mode="json"),
                           "persona": persona.model_dump(mode="json"),
                           "init_adapter": init_adapter},
        scaling_config=ScalingConfig(num_workers=config.workers, use_gpu=config.use_gpu,
                                     resources_per_worker={"CPU": config.cpus_per_worker}),
        run_config=RunConfig(name=f"{algorithm}-{persona.id}-{stamp}",
                             storage_path=str(Path(config.storage_path).resolve())),
    )
    try:
        result = trainer.fit()
    except Exception as error:  # Ray wraps worker failures in its own error types
        raise TrainingFailed(f"{algorithm} of persona {persona.id!r} failed: {error}") from error
    if result.checkpoint is None:
        raise TrainingFailed(f"{algorithm} of persona {persona.id!r} ended without a checkpoint")
    manifest = {"algorithm": algorithm, "base_model": config.base_model,
                "metrics": result.metrics, "config": config.model_dump(mode="json"),
                "checkpoint": result.checkpoint.path, "init_adapter": init_adapter}
    with result.checkpoint.as_directory() as folder:
        adapter = register_adapter(folder, config.adapters_dir, persona.id, name or algorithm,
                                   manifest)
    return TrainingResult(adapter, dict(result.metrics), result.checkpoint.path)
