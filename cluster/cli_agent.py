"""`bubblescope` commands for the persona agent: building the tiny model, training adapters."""

from __future__ import annotations

import argparse
from pathlib import Path


def _model_tiny(args: argparse.Namespace) -> int:
    from bubblescope.trainer.tiny_corpus import tiny_corpus
    from bubblescope.trainer.tiny_model import TinyModelConfig, build_tiny_model

    out = Path(args.out).expanduser()
    print(f"training the tokenizer and initialising a tiny Qwen2.5-VL in {out} ...", flush=True)
    build_tiny_model(out, tiny_corpus(), TinyModelConfig(seed=args.seed))
    print(f"wrote {out} (load it as you would Qwen/Qwen2.5-VL-7B-Instruct: by path)")
    return 0


def _train(args: argparse.Namespace) -> int:
    import ray

    from bubblescope.personas.loader import load_persona
    from bubblescope.trainer.config import load_train_config
    from bubblescope.trainer.runner import run_training

    persona = load_persona(args.persona)
    overrides = {"base_model": args.base_model} if args.base_model else {}
    config = load_train_config(args.config, overrides)
    ray.init(address=args.address, include_dashboard=False, log_to_driver=True)
    print(f"{args.algorithm} for persona {persona.id} on {config.base_model} "
          f"({config.workers} worker(s), gpu={config.use_gpu})", flush=True)
    result = run_training(args.algorithm, config, persona, name=args.name,
                          init_adapter=args.init_adapter)
    shown = ", ".join(f"{k} {v:.4g}" for k, v in result.metrics.items()
                      if isinstance(v, int | float))
    print(f"registered adapter {result.adapter} ({shown})")
    return 0


def add_model(sub) -> None:
    from bubblescope.trainer.tiny_corpus import DEFAULT_TINY_MODEL

    model = sub.add_parser("model", help="base models for the persona agent")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    tiny = model_sub.add_parser("tiny", help="build a tiny Qwen2.5-VL with our own tokenizer "
                                "(no download), for tests and the quickstart")
    tiny.add_argument("--out", default=DEFAULT_TINY_MODEL, help="folder to write the model to")
    tiny.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    tiny.set_defaults(func=_model_tiny)


def add_train(sub) -> None:
    train = sub.add_parser("train", help="train a persona's LoRA adapter on Ray Train")
    train.add_argument("algorithm", choices=["sft", "grpo"], help="training algorithm")
    train.add_argument("--persona", required=True, help="persona file")
    train.add_argument("--config", required=True, help="training config (YAML)")
    train.add_argument("--base-model", help="override the config's base_model folder")
    train.add_argument("--name", help="adapter name in the registry (default: the algorithm)")
    train.add_argument("--init-adapter", metavar="PATH", help="grpo: start from this registered "
                       "SFT adapter, merged into the base (SFT+GRPO)")
    train.add_argument("--address", help="Ray cluster address (default: start a local one)")
    train.set_defaults(func=_train)
