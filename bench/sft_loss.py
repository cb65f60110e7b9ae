"""SFT samples per second on the tiny Qwen2.5-VL, one process, one torch thread: TRL's own
loss (its chunked log-probability kernel) vs `completion_loss` (plain cross-entropy over the
answer positions), each with and without gradient checkpointing. The variants train the same
samples from the same start, so their logged losses must agree (the table shows the last).

    .venv/bin/python bench/sft_loss.py [--samples 96] [--rounds 2] [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import torch
from trl import SFTConfig, SFTTrainer

from bubblescope.agent.vlm import load_model, load_processor
from bubblescope.personas.loader import load_persona
from bubblescope.trainer.completion_loss import completion_loss_trainer
from bubblescope.trainer.config import load_train_config
from bubblescope.trainer.sft import lora_config, optim_args, rows_dataset, training_samples
from bubblescope.trainer.tiny_corpus import tiny_corpus
from bubblescope.trainer.tiny_model import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from steps_report import machine_line, publish  # noqa: E402

VARIANTS = {"TRL's loss, checkpointing": (SFTTrainer, True),
            "TRL's loss": (SFTTrainer, False),
            "completion_loss, checkpointing": (completion_loss_trainer(), True),
            "completion_loss": (completion_loss_trainer(), False)}


def train_once(trainer_class, checkpointing: bool, config, samples, scratch: str):
    spec = config.sft.model_copy(update={"gradient_checkpointing": checkpointing, "epochs": 1})
    trainer = trainer_class(
        model=load_model(config.base_model, dtype="float32"),
        args=SFTConfig(**optim_args(spec, config, scratch), max_length=None,
                       train_sampling_strategy="group_by_length"),
        train_dataset=rows_dataset(samples), processing_class=load_processor(config.base_model),
        peft_config=lora_config(spec.lora))
    began = time.perf_counter()
    outcome = trainer.train()
    return len(samples) / (time.perf_counter() - began), outcome.training_loss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=2, help="variants in turn, per round")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    persona = load_persona(ROOT / "examples" / "personas" / "concentrated.yaml")
    with tempfile.TemporaryDirectory() as scratch:
        base = build_tiny_model(Path(scratch) / "tiny", tiny_corpus(catalogue_step=40))
        config = load_train_config(ROOT / "examples" / "training" / "tiny.yaml").model_copy(
            update={"base_model": str(base)})
        config = config.model_copy(update={"data": config.data.model_copy(
            update={"records": 400, "max_samples": args.samples})})
        samples = training_samples(config, persona)["train"]
        rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
        losses: dict[str, float] = {}
        for _ in range(args.rounds):
            for name, (trainer_class, checkpointing) in VARIANTS.items():
                rate, losses[name] = train_once(trainer_class, checkpointing, config, samples,
                                                scratch)
                rates[name].append(rate)
                print(name, rate, losses[name], flush=True)
    baseline = statistics.median(rates["TRL's loss, checkpointing"])
    lines = ["## SFT loss on CPU: TRL's kernel vs the answer positions alone", "",
             machine_line() + f"; torch {torch.__version__}, 1 thread.  ",
             f"Date (UTC): {datetime.now(UTC):%Y-%m-%d %H:%M}. Command: `.venv/bin/python "
             f"bench/sft_loss.py --samples {args.samples} --rounds {args.rounds}`. SFT of the "
             f"tiny model, LoRA r 64, batch 8, {len(samples)} samples of the concentrated "
             f"persona (prompts of about 750 tokens), one epoch per variant, variants in turn, "
             f"median over rounds.", "",
             "| variant | samples/s | ratio | training loss |", "|---|---|---|---|"]
    for name in VARIANTS:
        rate = statistics.median(rates[name])
        lines.append(f"| {name} | {rate:.1f} | {rate / baseline:.2f} | {losses[name]:.4f} |")
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
