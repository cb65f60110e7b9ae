"""Running one training loop under Ray Train: workers, CPUs/GPUs and storage from the config."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bubblescope.trainer.config import TrainConfig
from bubblescope.trainer.errors import TrainingFailed

# Ray Train's workers patch print to echo each line and log it, so every progress line showed
# twice, and a library that captures stdout to read it (dill disassembling a function while
# datasets fingerprints a map) spilled its capture onto the terminal. Plain print instead.
QUIET_PRINT = {"env_vars": {"RAY_TRAIN_ENABLE_PRINT_PATCH": "0"}}

# Ray Train's placement-group cleaner asks the State API every second whether the run's
# controller lives; that API is served by the dashboard, which our local clusters do not start,
# so each ask warned "Failed to query Ray Train Controller actor state" for the whole run.
_CLEANER_LOGGER = "ray.train.v2._internal.execution.controller.placement_group_cleaner"


def quiet_cleaner() -> None:
    """A worker_process_setup_hook: silence the cleaner's warnings (its errors still show)."""
    logging.getLogger(_CLEANER_LOGGER).setLevel(logging.ERROR)


TRAINING_RUNTIME_ENV = {"worker_process_setup_hook": f"{__name__}.quiet_cleaner"}

# PEFT reads the model's `is_gradient_checkpointing` when it wraps it, an alias transformers 5
# deprecated in favour of `is_activation_checkpointing`; nothing we pass avoids it, so each
# training worker printed that warning once per run. Workers hide that one warning.
UPSTREAM_WARNINGS = (r"`is_gradient_checkpointing` is deprecated",)


@dataclass(frozen=True)
class WithoutUpstreamWarnings:
    """A training loop that first hides the upstream warnings above (picklable, for Ray)."""

    loop: Callable[[dict], None]

    def __call__(self, loop_config: dict) -> None:
        for message in UPSTREAM_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=FutureWarning)
        self.loop(loop_config)


def fit(loop: Callable[[dict], None], loop_config: dict, name: str, config: TrainConfig):
    """The Ray Train result of `loop` run as `name`, with a checkpoint, or TrainingFailed."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    trainer = TorchTrainer(
        WithoutUpstreamWarnings(loop), train_loop_config=loop_config,
        scaling_config=ScalingConfig(num_workers=config.workers, use_gpu=config.use_gpu,
                                     resources_per_worker={"CPU": config.cpus_per_worker}),
        run_config=RunConfig(name=f"{name}-{stamp}",
                             storage_path=str(Path(config.storage_path).resolve()),
                             worker_runtime_env=QUIET_PRINT),
    )
    try:
        result = trainer.fit()
    except Exception as error:  # Ray wraps worker failures in its own error types
        raise TrainingFailed(f"{name} failed: {error}") from error
    if result.checkpoint is None:
        raise TrainingFailed(f"{name} ended without a checkpoint")
    return result


def runs_at_once(config: TrainConfig) -> int:
    """How many of `config`'s Ray Train runs the connected cluster holds side by side."""
    import ray

    resources = ray.cluster_resources()
    fits = resources.get("CPU", 0) // (config.workers * config.cpus_per_worker)
    if config.use_gpu:
        fits = min(fits, resources.get("GPU", 0) // config.workers)
    return max(1, int(fits))
