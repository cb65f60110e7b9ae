"""SFT and GRPO samples per second on the tiny Qwen2.5-VL, each a Ray Train run on CPU.

Samples/s is TRL's own count over the training loop (model load, dataset building and Ray
Train start-up excluded); wall seconds include them. GRPO counts prompts, each generating
`grpo.generations` completions.

    .venv/bin/python bench/training_throughput.py [--samples 64] [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import ray

from bubblescope.personas.loader import load_persona
from bubblescope.trainer.config import TrainConfig
from bubblescope.trainer.runner import run_training
from bubblescope.trainer.tiny_corpus import tiny_corpus
from bubblescope.trainer.tiny_model import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from steps_report import machine_line, publish  # noqa: E402

PROMPT = {"history": 3, "frames": 1, "frame_edge": 112, "instructions": False,
          "transcript_chars": 200}


def config(folder: Path, base: Path, samples: int) -> TrainConfig:
    return TrainConfig.model_validate({
        "base_model": str(base), "data": {"records": 400, "max_samples": samples},
        "prompt": PROMPT, "storage_path": str(folder / "runs"),
        "adapters_dir": str(folder / "adapters"),
        "sft": {"learning_rate": 2e-3, "epochs": 1, "lora": {"r": 64, "alpha": 128}},
        "grpo": {"learning_rate": 5e-4, "epochs": 1, "generations": 4,
                 "max_completion_length": 32}})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    ray.init(include_dashboard=False, log_to_driver=False)
    persona = load_persona(ROOT / "examples" / "personas" / "concentrated.yaml")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        base = build_tiny_model(folder / "tiny", tiny_corpus(catalogue_step=40))
        train = config(folder, base, args.samples)
        for algorithm in ("sft", "grpo"):
            began = time.perf_counter()
            result = run_training(algorithm, train, persona)
            rows.append((algorithm, result.metrics, time.perf_counter() - began))
    lines = ["## Training throughput on the tiny Qwen2.5-VL (CPU, one Ray Train worker)", "",
             f"Machine: {machine_line()}.  ",
             f"Date (UTC): {datetime.now(UTC):%Y-%m-%d %H:%M}. Command: `.venv/bin/"
             f"python bench/training_throughput.py --samples {args.samples}`. Prompt: "
             f"{PROMPT}; SFT LoRA r 64, GRPO LoRA r 8 with 4 generations of up to 32 tokens.",
             "", "| algorithm | samples | steps | samples/s (training loop) | wall s |",
             "|---|---|---|---|---|"]
    for algorithm, metrics, wall in rows:
        lines.append(f"| {algorithm} | {metrics['train_samples']} | {metrics['steps']} | "
                     f"{metrics['samples_per_second']:.2f} | {wall:.0f} |")
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
