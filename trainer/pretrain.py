"""Pretraining the tiny base model on a crowd of synthetic humans (every weight trained).

A freshly initialised tiny model knows nothing, so LoRA adapters on it would have nothing to
adapt. This stands in for the pretraining a real base model has had: SFT of all weights on
the traces of many people who are not audit personas (`sim/crowd.py`), each sample with that
person's profile, so the base learns the answer format and how profiles relate to behaviour;
and on the catalogue's videos labelled with their categories (the VLM classifier's prompt), so
it knows what videos are about, as a real VLM does before it meets a persona. The 7B needs
none of this.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from bubblescope.trainer.config import TrainConfig
from bubblescope.trainer.dataset import Sample, build_samples


class CrowdSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Many members with short traces: the base learns to read a profile from the variety of
    # people more than from the length of any one trace.
    humans: int = Field(default=32, ge=1, description="crowd members")
    records: int = Field(default=50, ge=20, description="videos per member")
    labelled: int = Field(default=3000, ge=0, description="catalogue videos shown with their "
                          "category")
    epochs: float = Field(default=2.0, gt=0, description="passes over the pretraining rows")
    learning_rate: float = Field(default=3e-3, gt=0, description="every weight is trained")
    seed: int = Field(default=0, description="draws the crowd and the world")


def _observer(crowd: CrowdSpec, config: TrainConfig):
    """What the screen shows for a video of the crowd's world, as the prompts render it."""
    from bubblescope.sim.catalogue import CatalogueConfig, build_catalogue
    from bubblescope.sim.observations import TraceFrames, TraceObserver

    return TraceObserver(build_catalogue(CatalogueConfig(seed=crowd.seed)),
                         TraceFrames(count=config.prompt.frames))


def crowd_samples(crowd: CrowdSpec, config: TrainConfig) -> list[Sample]:
    from bubblescope.personas.analyser import analyse
    from bubblescope.personas.schema import Persona
    from bubblescope.sim.crowd import crowd_member
    from bubblescope.sim.recruit import record_trace_with

    observer = _observer(crowd, config)
    samples: list[Sample] = []
    for index in range(crowd.humans):
        spec = crowd_member(index, crowd.seed)
        sessions = record_trace_with(spec, seed=crowd.seed, records=crowd.records)
        persona = Persona(id=spec.name, narrative=spec.narrative, traits=spec.traits,
                          stats=analyse(sessions))
        splits = build_samples(sessions, persona, lambda _s: observer.observe,
                               config.prompt)
        samples += [s for split in splits.values() for s in split]
    return samples


def labelled_rows(crowd: CrowdSpec, config: TrainConfig) -> list[dict]:
    """`crowd.labelled` catalogue videos, drawn without replacement, each with its category."""
    import numpy as np

    from bubblescope.agent.category_prompt import category_prompt
    from bubblescope.sim.in_process_device import SIM_EPOCH
    from bubblescope.trainer.dataset import label_row

    observer = _observer(crowd, config)
    catalogue, prompt = observer.catalogue, config.prompt
    rng = np.random.default_rng([crowd.seed, 0x1ABE1])
    videos = rng.choice(catalogue.n_videos, size=min(crowd.labelled, catalogue.n_videos),
                        replace=False)
    return [label_row(category_prompt(observer.observe_video(int(v), SIM_EPOCH), prompt),
                      catalogue.category(int(v))) for v in videos]


def pretrain_rows(crowd: CrowdSpec, config: TrainConfig) -> list[dict]:
    """The crowd's decisions and the labelled videos, as prompt-completion rows."""
    from bubblescope.trainer.dataset import sft_row, with_length

    decisions = [sft_row(sample) for sample in crowd_samples(crowd, config)]
    keep = ("prompt", "completion", "images")  # the GRPO reward columns have no use here
    return [with_length(row) for row in
            [{k: row[k] for k in keep} for row in decisions] + labelled_rows(crowd, config)]


def pretrain_loop(loop_config: dict) -> None:
    """One Ray Train worker: full-weight SFT on the crowd; reports the whole model folder."""
    import ray.train
    from datasets import Dataset
    from trl import SFTConfig

    from bubblescope.agent.vlm import VIDEO_PROCESSOR_FILE, load_model, load_processor
    from bubblescope.trainer.completion_loss import completion_loss_trainer
    from bubblescope.trainer.progress import ProgressLog, quiet_trainer_printing
    from bubblescope.trainer.sft import optim_args

    config = TrainConfig.model_validate(loop_config["config"])
    crowd = CrowdSpec.model_validate(loop_config["crowd"])
    rows = pretrain_rows(crowd, config)
    processor = load_processor(config.base_model)
    with tempfile.TemporaryDirectory() as scratch:
        trainer = completion_loss_trainer()(
            model=load_model(config.base_model, dtype="float32"),
            args=SFTConfig(**optim_args(config.sft.model_copy(update={
                "epochs": crowd.epochs, "learning_rate": crowd.learning_rate}), config, scratch),
                           max_length=config.sft.max_length,
                           train_sampling_strategy="group_by_length"),
            train_dataset=Dataset.from_list(rows), processing_class=processor,
            callbacks=[ProgressLog("pretrain", "crowd")],
        )
        quiet_trainer_printing(trainer)
        outcome = trainer.train()
        out = Path(scratch) / "model"
        trainer.save_model(str(out))
        processor.save_pretrained(str(out))
        for extra in ("bubblescope-tiny.json", VIDEO_PROCESSOR_FILE):
            if (Path(config.base_model) / extra).exists():
                shutil.copy(Path(config.base_model) / extra, out / extra)
        metrics = {"train_loss": outcome.training_loss, "steps": outcome.global_step,
                   "train_samples": len(rows)}
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(str(out))
                         if ray.train.get_context().get_world_rank() == 0 else None)


def run_pretrain(config: TrainConfig, crowd: CrowdSpec, out_dir: str | Path) -> dict:
    """Pretrain `config.base_model` on the crowd and write the result to `out_dir`."""
    from bubblescope.agent.vlm import check_model_dir
    from bubblescope.trainer.ray_fit import fit

    check_model_dir(config.base_model)
    result = fit(pretrain_loop, {"config": config.model_dump(mode="json"),
                                 "crowd": crowd.model_dump()}, "pretrain-crowd", config)
    out = Path(out_dir).expanduser()
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    with result.checkpoint.as_directory() as folder:
        shutil.copytree(folder, staging)
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    return dict(result.metrics)
