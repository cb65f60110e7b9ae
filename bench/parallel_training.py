"""Two personas' SFT adapters on the tiny Qwen2.5-VL: one after the other with 2 CPUs each, or
side by side with 1 CPU each (two Ray Train runs at once, as `agents quickstart` trains them).

Wall seconds per variant, Ray Train start-up included; the ratio is what training the
quickstart's personas side by side saves on this machine.

    .venv/bin/python bench/parallel_training.py [--samples 160] [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
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


def config(folder: Path, base: Path, samples: int, cpus: int) -> TrainConfig:
    return TrainConfig.model_validate({
        "base_model": str(base), "data": {"records": 600, "max_samples": samples},
        "prompt": PROMPT, "storage_path": str(folder / "runs"),
        "adapters_dir": str(folder / f"adapters-{cpus}"), "cpus_per_worker": cpus,
        "sft": {"learning_rate": 2e-3, "epochs": 1, "batch_size": 8, "grad_accumulation": 1,
                "lora": {"r": 32, "alpha": 64}}})


def timed(action) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=160)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    personas = [load_persona(ROOT / "examples" / "personas" / f"{name}.yaml")
                for name in ("concentrated", "dispersed")]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        base = build_tiny_model(folder / "tiny", tiny_corpus(catalogue_step=40))
        wide, narrow = (config(folder, base, args.samples, cpus) for cpus in (2, 1))
        in_turn = timed(lambda: [run_training("sft", wide, p) for p in personas])
        with ThreadPoolExecutor(len(personas)) as pool:
            side_by_side = timed(lambda: list(pool.map(
                lambda p: run_training("sft", narrow, p), personas)))
    ray.shutdown()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    lines = [
        "## Training personas side by side", "",
        machine_line(), f"Date (UTC): {stamp}. Command: `.venv/bin/python "
        f"bench/parallel_training.py --samples {args.samples}`. SFT of 2 personas, "
        f"{args.samples} samples each, 1 epoch, batch 8, LoRA r 32.", "",
        "| variant | wall s | ratio |", "|---|---|---|",
        f"| in turn, 2 CPUs each | {in_turn:.0f} | 1.00 |",
        f"| side by side, 1 CPU each | {side_by_side:.0f} | {in_turn / side_by_side:.2f} |",
        ""]
    publish("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
