"""Supervised fine-tuning of a persona's adapter: TRL's SFTTrainer inside a Ray Train worker.

The worker rebuilds everything from the validated config it is handed (the config, not live
objects, crosses into Ray), trains on the persona's training split, evaluates on its
validation split, and reports the adapter as a Ray Train checkpoint; the driver
(`runner.py`) registers it where Serve loads adapters.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bubblescope.personas.schema import Persona
from bubblescope.trainer.config import LoraSpec, OptimSpec, TrainConfig
from bubblescope.trainer.dataset import Sample, build_samples, sft_row, with_length
from bubblescope.trainer.sources import session_source


def training_samples(config: TrainConfig, persona: Persona) -> dict[str, list[Sample]]:
    source = session_source(persona, config.data, config.prompt)
    splits = build_samples(source.sessions, persona, source.observer_for, config.prompt)
    if config.data.max_samples:
        splits["train"] = splits["train"][: config.data.max_samples]
    return splits


def pooled_samples(config: TrainConfig, personas: list[Persona]) -> dict[str, list[Sample]]:
    """Every persona's samples, split by split (one persona: just its own). With several, the
    training split keeps every n-th sample of each persona's n, so the pooled -Persona adapter
    trains on as many decisions as an average persona's own adapter, spread over each
    persona's whole training span: it then differs from the per-persona adapters only in not
    knowing whom it plays, not in having n times their data."""
    per_persona = [training_samples(config, persona) for persona in personas]
    pooled = {split: [sample for splits in per_persona for sample in splits[split]]
              for split in per_persona[0]}
    if len(personas) > 1:
        pooled["train"] = [sample for offset, splits in enumerate(per_persona)
                           for sample in splits["train"][offset::len(personas)]]
    return pooled


def rows_dataset(samples: list[Sample]):
    from datasets import Dataset

    return Dataset.from_list([with_length(sft_row(sample)) for sample in samples])


def lora_config(spec: LoraSpec | None):
    if spec is None:
        return None
    from peft import LoraConfig

    return LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                      target_modules=spec.target_modules, task_type="CAUSAL_LM")


def optim_args(spec: OptimSpec, config: TrainConfig, output_dir: str) -> dict:
    """The Hugging Face training arguments both trainers share."""
    return {
        "output_dir": output_dir, "learning_rate": spec.learning_rate,
        "num_train_epochs": spec.epochs, "per_device_train_batch_size": spec.batch_size,
        "gradient_accumulation_steps": spec.grad_accumulation, "seed": spec.seed,
        "use_cpu": not config.use_gpu, "bf16": config.use_gpu, "report_to": "none",
        "save_strategy": "no", "logging_steps": 5, "disable_tqdm": True,
        "remove_unused_columns": False, "gradient_checkpointing": spec.gradient_checkpointing,
    }


def sft_loop(loop_config: dict) -> None:
    """One Ray Train worker's SFT run (TorchTrainer's train_loop_per_worker)."""
    import ray.train
    from trl import SFTConfig

    from bubblescope.agent.vlm import load_model, load_processor
    from bubblescope.trainer.completion_loss import completion_loss_trainer
    from bubblescope.trainer.progress import ProgressLog, quiet_trainer_printing

    config = TrainConfig.model_validate(loop_config["config"])
    personas = [Persona.model_validate(p) for p in
                loop_config.get("pooled") or [loop_config["persona"]]]
    splits = pooled_samples(config, personas)
    label = personas[0].id if len(personas) == 1 else "pooled"
    spec = config.sft
    with tempfile.TemporaryDirectory() as scratch:
        args = SFTConfig(**optim_args(spec, config, scratch), max_length=spec.max_length,
                         eval_strategy="epoch" if splits["validation"] else "no",
                         train_sampling_strategy="group_by_length")
        trainer = completion_loss_trainer()(
            model=load_model(config.base_model, dtype="bfloat16" if config.use_gpu
                             else "float32"),
            args=args, train_dataset=rows_dataset(splits["train"]),
            eval_dataset=rows_dataset(splits["validation"]) if splits["validation"] else None,
            processing_class=load_processor(config.base_model),
            peft_config=lora_config(spec.lora), callbacks=[ProgressLog("sft", label)],
        )
        quiet_trainer_printing(trainer)
        outcome = trainer.train()
        metrics = {"train_loss": outcome.training_loss, "steps": outcome.global_step,
                   "train_samples": len(splits["train"]),
                   "samples_per_second": outcome.metrics.get("train_samples_per_second", 0.0)}
        if splits["validation"]:
            metrics["eval_loss"] = trainer.evaluate()["eval_loss"]
        out = Path(scratch) / "adapter"
        trainer.save_model(str(out))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(str(out))
                         if ray.train.get_context().get_world_rank() == 0 else None)
