"""One line per logging step, so a training run shows its progress and loss in the worker's
log (Ray forwards it to the driver's terminal)."""

from __future__ import annotations

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback


class ProgressLog(TrainerCallback):
    def __init__(self, algorithm: str, persona: str) -> None:
        self.label = f"[{algorithm} {persona}]"

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        shown = {key: value for key, value in logs.items()
                 if key in ("loss", "eval_loss", "reward", "learning_rate", "grad_norm")}
        numbers = "  ".join(f"{key} {value:.4g}" for key, value in shown.items())
        print(f"{self.label} step {state.global_step}/{state.max_steps}  {numbers}", flush=True)


def quiet_trainer_printing(trainer) -> None:
    """Our one line per log replaces the trainer's printed dicts and progress bars."""
    for callback in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(callback)
