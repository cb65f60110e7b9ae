"""GRPO of a persona's adapter: TRL's GRPOTrainer inside a Ray Train worker.

SFT copies the logged answer token by token; GRPO instead samples `grpo.generations` answers
per decision and pushes the policy towards the better ones by PersonaAct's reward, R =
R_action + R_duration + R_format with equal weights (trainer/rewards.py). The rewards read the
answer with the serving agent's own parser, so the policy is trained on how it will be judged.

SFT+GRPO: with `init_adapter` (a registered SFT adapter) the worker merges that adapter into
the base weights before adding the new LoRA, so GRPO starts from, and its KL term anchors to,
the SFT-tuned model. The GRPO adapter alone is then meaningless on the raw base, so the adapter
folder carries `bubblescope-base.json` naming the SFT adapter (and a digest of its weights) that
serving must merge first.

Batching (TRL 1.16): `grpo.batch_size` counts completions, not prompts. One generation round
holds `generation_batch_size` completions, which must be whole groups of `generations` and a
whole number of micro-steps of `batch_size` per worker. We take the smallest round that is both
and is at least one optimiser step (`batch_size * workers * grad_accumulation`); a round
therefore needs `round / generations` distinct training prompts, and too few is a config error.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from pathlib import Path

from bubblescope.personas.schema import Persona
from bubblescope.trainer.config import GrpoSpec, TrainConfig
from bubblescope.trainer.dataset import Sample, target_columns
from bubblescope.trainer.errors import TrainConfigError
from bubblescope.trainer.sft import lora_config, optim_args, training_samples

BASE_RECORD = "bubblescope-base.json"  # what the adapter applies on top of


def generation_batch_size(spec: GrpoSpec, workers: int, prompts: int | None = None) -> int:
    """Completions per generation round (see the module notes); `prompts`, when known, is the
    training split's size, which must fill one round."""
    micro = spec.batch_size * workers
    size = math.lcm(micro * spec.grad_accumulation, spec.generations)
    needed = size // spec.generations
    if prompts is not None and prompts < needed:
        raise TrainConfigError(
            f"a generation round of {size} completions (batch_size x workers x "
            f"grad_accumulation = {micro * spec.grad_accumulation}, in groups of "
            f"{spec.generations}) needs {needed} training prompts but there are {prompts}; "
            "lower grpo.generations, grpo.batch_size or grpo.grad_accumulation, or give more "
            "samples (data.max_samples)", key="grpo.generations")
    return size


def check_grpo(config: TrainConfig, init_adapter: str | None) -> None:
    """What the driver can reject before any worker starts."""
    if config.grpo.max_length is not None:
        raise TrainConfigError("GRPO does not truncate prompts (that would cut image tokens); "
                               "remove it, grpo.max_completion_length caps the answers",
                               key="grpo.max_length")
    known = [n for n in (config.data.max_samples, config.grpo.max_prompts) if n]
    generation_batch_size(config.grpo, config.workers, min(known) if known else None)
    if init_adapter:
        _check_init_adapter(init_adapter, config.base_model)


def _check_init_adapter(path: str, base_model: str) -> None:
    from bubblescope.agent.adapters import check_adapter, read_manifest
    from bubblescope.agent.errors import AdapterError

    try:
        check_adapter(path)
    except AdapterError as error:  # here it is a mistake in what the user asked for
        raise TrainConfigError(str(error), key="init_adapter") from error
    trained_on = read_manifest(path).get("base_model")
    if trained_on and Path(trained_on).resolve() != Path(base_model).resolve():
        raise TrainConfigError(f"{path} was trained on {trained_on}, not on base_model "
                               f"{base_model}", key="init_adapter")


def prompt_rows_dataset(samples: list[Sample]):
    """Prompts with their images and the columns the rewards read; GRPO writes the answers."""
    from datasets import Dataset

    return Dataset.from_list([{"prompt": sample.prompt.messages, "images": sample.prompt.images,
                               **target_columns(sample)} for sample in samples])


def reward_funcs() -> list:
    from bubblescope.trainer.rewards import ActionReward, DurationReward, FormatReward

    return [ActionReward(), DurationReward(), FormatReward()]


def starting_model(config: TrainConfig, init_adapter: str | None):
    """The base model, with the SFT adapter merged in for SFT+GRPO."""
    from bubblescope.agent.vlm import load_model

    model = load_model(config.base_model, dtype="bfloat16" if config.use_gpu else "float32")
    if not init_adapter:
        return model
    from peft import PeftModel

    # TRL refuses a PeftModel next to a new peft_config: the SFT delta must become base weights.
    return PeftModel.from_pretrained(model, init_adapter).merge_and_unload()


def base_record(config: TrainConfig, init_adapter: str | None) -> dict:
    record = {"base_model": config.base_model, "merge_first": []}
    if init_adapter:
        weights = Path(init_adapter) / "adapter_model.safetensors"
        record["merge_first"].append({
            "adapter": str(Path(init_adapter).resolve()),
            "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()})
    return record


def grpo_args(config: TrainConfig, output_dir: str, prompts: int):
    from trl import GRPOConfig

    spec = config.grpo
    return GRPOConfig(
        **{**optim_args(spec, config, output_dir),
           "logging_steps": 1},  # a step is a whole generation round: log each one
        num_generations=spec.generations, temperature=spec.temperature, beta=spec.beta,
        max_completion_length=spec.max_completion_length,
        generation_batch_size=generation_batch_size(spec, config.workers, prompts))


def run_metrics(outcome, trainer, prompts: int) -> dict:
    metrics = {"train_loss": outcome.training_loss, "steps": outcome.global_step,
               "train_samples": prompts,
               "samples_per_second": outcome.metrics.get("train_samples_per_second", 0.0)}
    # TRL logs these per step; the run's mean of each is reported under a flat name, since Ray
    # treats "/" in metric names as nesting. frac_reward_zero_std near 1 means GRPO had nothing
    # to learn from (every answer to a prompt scored alike, as on an untrained base).
    names = {"reward": "reward", "frac_reward_zero_std": "frac_reward_zero_std",
             **{f"rewards/{name}/mean": name for name in trainer.reward_func_names}}
    for logged, name in names.items():
        values = [entry[logged] for entry in trainer.state.log_history
                  if entry.get(logged) is not None]
        if values:
            metrics[name] = sum(values) / len(values)
    return metrics


def train_grpo(config: TrainConfig, persona: Persona, init_adapter: str | None,
               output_dir: str) -> dict:
    """Train, save the adapter and its base record to `output_dir`/adapter; the run's metrics."""
    from trl import GRPOTrainer

    from bubblescope.agent.vlm import load_processor
    from bubblescope.trainer.progress import ProgressLog, quiet_trainer_printing

    train = training_samples(config, persona)["train"]
    if config.grpo.max_prompts:  # spread over the split, so late sessions are not left out
        step = max(1, len(train) // config.grpo.max_prompts)
        train = train[::step][: config.grpo.max_prompts]
    trainer = GRPOTrainer(
        model=starting_model(config, init_adapter), reward_funcs=reward_funcs(),
        args=grpo_args(config, output_dir, len(train)),
        train_dataset=prompt_rows_dataset(train),
        processing_class=load_processor(config.base_model),
        peft_config=lora_config(config.grpo.lora),
        callbacks=[ProgressLog("grpo", persona.id)],
    )
    quiet_trainer_printing(trainer)
    outcome = trainer.train()
    out = Path(output_dir) / "adapter"
    trainer.save_model(str(out))
    (out / BASE_RECORD).write_text(json.dumps(base_record(config, init_adapter), indent=2),
                                   "utf-8")
    return run_metrics(outcome, trainer, len(train))


def grpo_loop(loop_config: dict) -> None:
    """One Ray Train worker's GRPO run (TorchTrainer's train_loop_per_worker)."""
    import ray.train

    config = TrainConfig.model_validate(loop_config["config"])
    persona = Persona.model_validate(loop_config["persona"])
    with tempfile.TemporaryDirectory() as scratch:
        metrics = train_grpo(config, persona, loop_config.get("init_adapter"), scratch)
        out = Path(scratch) / "adapter"
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(str(out))
                         if ray.train.get_context().get_world_rank() == 0 else None)
