"""`bubblescope` commands for the persona agent: building the tiny model, training adapters."""

from __future__ import annotations

import argparse
from pathlib import Path

from bubblescope.trainer.errors import TrainConfigError


def _model_tiny(args: argparse.Namespace) -> int:
    from bubblescope.trainer.tiny_corpus import tiny_corpus
    from bubblescope.trainer.tiny_model import TinyModelConfig, build_tiny_model

    out = Path(args.out).expanduser()
    print(f"training the tokenizer and initialising a tiny Qwen2.5-VL in {out} ...", flush=True)
    build_tiny_model(out, tiny_corpus(), TinyModelConfig(seed=args.seed))
    print(f"wrote {out} (load it as you would Qwen/Qwen2.5-VL-7B-Instruct: by path)")
    return 0


def _model_pretrain(args: argparse.Namespace) -> int:
    from bubblescope.trainer.config import load_train_config
    from bubblescope.trainer.pretrain import run_pretrain

    overrides = {"base_model": args.base_model} if args.base_model else {}
    config = load_train_config(args.config, overrides)
    crowd = _crowd(args)
    _start_training_ray(args)
    print(f"pretraining {config.base_model} on {crowd.humans} synthetic humans x "
          f"{crowd.records} videos", flush=True)
    metrics = run_pretrain(config, crowd, args.out)
    print(f"wrote {args.out} (train loss {metrics.get('train_loss', float('nan')):.4g})")
    return 0


def _crowd(args: argparse.Namespace):
    """The crowd the base is pretrained on: CrowdSpec's defaults but for what was given."""
    from bubblescope.trainer.pretrain import CrowdSpec

    # `--seed` of the evaluating commands seeds the sampling, not the crowd: only `model
    # pretrain` names the crowd's seed (as crowd_seed).
    given = {key: getattr(args, key, None) for key in ("humans", "records", "labelled")}
    given["seed"] = getattr(args, "crowd_seed", None)
    return CrowdSpec(**{key: value for key, value in given.items() if value is not None})


def _start_training_ray(args: argparse.Namespace) -> None:
    from bubblescope.cluster.ray_connect import init_ray
    from bubblescope.trainer.ray_fit import TRAINING_RUNTIME_ENV

    init_ray(args.address, include_dashboard=False, log_to_driver=True,
             runtime_env=TRAINING_RUNTIME_ENV)


def _config_and_personas(args: argparse.Namespace):
    from bubblescope.personas.loader import load_persona
    from bubblescope.trainer.config import load_train_config

    paths = args.persona or [f"examples/personas/{name}.yaml"
                             for name in ("concentrated", "dispersed")]
    personas = [load_persona(path) for path in paths]
    overrides = {"base_model": args.base_model} if args.base_model else {}
    return load_train_config(args.config, overrides), personas


def _train(args: argparse.Namespace) -> int:
    from bubblescope.trainer.runner import run_pooled_sft, run_training

    config, personas = _config_and_personas(args)
    if len(personas) > 1 and not args.pooled:
        raise TrainConfigError("several --persona need --pooled (one adapter for all, the "
                               "-Persona ablation); otherwise train one persona at a time")
    _start_training_ray(args)
    who = ", ".join(p.id for p in personas)
    print(f"{args.algorithm} for {who}{' (pooled, no profiles)' if args.pooled else ''} on "
          f"{config.base_model} ({config.workers} worker(s), gpu={config.use_gpu})", flush=True)
    if args.pooled:
        if args.algorithm != "sft":
            raise TrainConfigError("--pooled trains the -Persona ablation with sft only")
        result = run_pooled_sft(config, personas, name=args.name or "nopersona")
    else:
        result = run_training(args.algorithm, config, personas[0], name=args.name,
                              init_adapter=args.init_adapter)
    shown = ", ".join(f"{k} {v:.4g}" for k, v in result.metrics.items()
                      if isinstance(v, int | float))
    print(f"registered adapter {result.adapter} ({shown})")
    return 0


def _eval(args: argparse.Namespace) -> int:
    config, personas = _config_and_personas(args)
    return _evaluate(config, personas, args)


def _evaluate(config, personas, args: argparse.Namespace) -> int:
    import json

    import torch

    from bubblescope.agent.spec import GenerationSpec
    from bubblescope.trainer.evaluate import eval_markdown, run_eval

    torch.manual_seed(args.seed)
    generation = GenerationSpec(max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                                constrain_watch=args.constrain_watch)
    result = run_eval(config, personas, generation, max_samples=args.max_samples,
                      votes=args.votes, seed=args.seed, say=lambda line: print(line, flush=True))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(result, indent=2), "utf-8")
    text = eval_markdown(result)
    (out / "eval.md").write_text(text, "utf-8")
    print(text + f"\nwrote {out / 'eval.json'} and {out / 'eval.md'}")
    return 0


def _trained_agents(args: argparse.Namespace, grpo: bool, ablations: bool):
    """The config, the personas and their agents, trained where the cache lacks them."""
    from bubblescope.trainer.quickstart import ensure_agents
    from bubblescope.trainer.ray_fit import runs_at_once

    config, personas = _config_and_personas(args)
    _start_training_ray(args)
    agents = ensure_agents(config, personas, _crowd(args), cache=args.cache, grpo=grpo,
                           ablations=ablations, say=lambda line: print(line, flush=True),
                           at_once=runs_at_once(config))
    return config, personas, agents


def _agents_quickstart(args: argparse.Namespace) -> int:
    from bubblescope.trainer.quickstart import fill_agent_job

    config, _, agents = _trained_agents(args, grpo=not args.no_grpo, ablations=False)
    print(f"agents: base {agents['base_model']}; adapters " + ", ".join(
        f"{pid} -> {path}" for pid, path in agents["adapters"].items()))
    if args.job:
        fill_agent_job(args.job, args.job_out, agents, config.prompt)
        print(f"wrote {args.job_out}")
    return 0


def _agents_fidelity(args: argparse.Namespace) -> int:
    config, personas, agents = _trained_agents(args, grpo=True, ablations=True)
    trained = config.model_copy(update={"base_model": agents["base_model"],
                                        "adapters_dir": agents["adapters_dir"]})
    print(f"evaluating every variant on the test split ({args.votes} answers per decision) ...",
          flush=True)
    return _evaluate(trained, personas, args)


def _crowd_arguments(parser) -> None:
    """The pretraining crowd's settings, with CrowdSpec's defaults in their help."""
    from bubblescope.trainer.pretrain import CrowdSpec

    for key in ("humans", "records", "labelled"):
        field = CrowdSpec.model_fields[key]
        parser.add_argument(f"--{key}", type=int,
                            help=f"pretraining: {field.description} (default {field.default})")


def _training_arguments(parser) -> None:
    from bubblescope.trainer.quickstart import DEFAULT_CACHE

    parser.add_argument("--persona", action="append", default=None, help="persona file "
                        "(default: the two quickstart personas)")
    parser.add_argument("--config", default="examples/training/tiny.yaml",
                        help="training config")
    parser.add_argument("--base-model", help=argparse.SUPPRESS)
    parser.add_argument("--cache", default=DEFAULT_CACHE, help="where trained agents are kept")
    _crowd_arguments(parser)
    parser.add_argument("--address", help="Ray cluster address (default: a local one)")


def _decoding_arguments(parser) -> None:
    parser.add_argument("--max-samples", type=int, help="cap on test decisions per persona")
    parser.add_argument("--max-new-tokens", type=int, default=48, help="answer length cap")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="sampling temperature (0: greedy)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--constrain-watch", action="store_true", help="constrained decoding "
                        "of the watch() argument to a well-formed number")


def add_agents(sub) -> None:
    agents = sub.add_parser("agents", help="ready-trained persona agents")
    agents_sub = agents.add_subparsers(dest="agents_command", required=True)
    quick = agents_sub.add_parser("quickstart", help="train (or reuse) the tiny agents of the "
                                  "quickstart personas and fill them into an agent job")
    _training_arguments(quick)
    quick.add_argument("--no-grpo", action="store_true", help="SFT adapters only")
    quick.add_argument("--job", help="agent job template whose policy.agent is filled in")
    quick.add_argument("--job-out", default="results/quickstart-agent.yaml",
                       help="where the filled-in job is written")
    quick.set_defaults(func=_agents_quickstart)
    fidelity = agents_sub.add_parser("fidelity", help="train (or reuse) every variant of the "
                                     "quickstart agents, ablations included, and write the "
                                     "fidelity tables (PersonaAct Tables 2 and 3)")
    _training_arguments(fidelity)
    _decoding_arguments(fidelity)
    fidelity.add_argument("--votes", type=int, default=9, help="sampled answers per decision, "
                          "decided by their consensus (median watch, majority engagement)")
    fidelity.add_argument("--out", default="results/fidelity", help="folder for eval.json and "
                          "eval.md")
    fidelity.set_defaults(func=_agents_fidelity)


def _serve_up(args: argparse.Namespace) -> int:
    import time

    from bubblescope.cluster.job import load_job
    from bubblescope.cluster.ray_connect import init_ray
    from bubblescope.serve.deploy import deploy_agent, http_address

    job = load_job(args.job)
    agent = job.agent
    if agent is None:
        raise TrainConfigError(f"{args.job}: policy.kind is {job.spec.policy.kind!r}; serve up "
                               "serves agent policies")
    init_ray(args.address, include_dashboard=False, namespace="bubblescope")
    deploy_agent(agent, list(job.personas.values()))
    address = http_address(agent)
    where = f"; HTTP: POST {address}" if address else ""
    print(f"serving {agent.deployment.app_name} ({agent.engine.kind}): {agent.base_model} with "
          "adapters for "
          f"{', '.join(agent.adapters) or 'no persona'}{where}", flush=True)
    if args.address:
        return 0  # the app lives on in the cluster; `bubblescope serve down` removes it
    print("local Ray: serving until Ctrl-C", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


def _serve_down(args: argparse.Namespace) -> int:
    from ray import serve

    from bubblescope.cluster.ray_connect import init_ray

    init_ray(args.address, include_dashboard=False, namespace="bubblescope")
    serve.delete(args.app)
    print(f"removed {args.app}")
    return 0


def add_serve(sub) -> None:
    serve_parser = sub.add_parser("serve", help="the persona policy on Ray Serve")
    serve_sub = serve_parser.add_subparsers(dest="serve_command", required=True)
    up = serve_sub.add_parser("up", help="deploy (or update) a job's agent policy app, on "
                              "the engine its policy.agent.engine names (transformers or vllm)")
    up.add_argument("--job", required=True, help="job file with policy.kind agent")
    up.add_argument("--address", help="Ray cluster (the app stays there); default: a local "
                    "Ray, served until Ctrl-C")
    up.set_defaults(func=_serve_up)
    down = serve_sub.add_parser("down", help="remove a policy app")
    down.add_argument("--app", default="bubblescope-policy", help="application name")
    down.add_argument("--address", required=True, help="Ray cluster address")
    down.set_defaults(func=_serve_down)


def add_eval(sub) -> None:
    evaluate = sub.add_parser("eval", help="fidelity tables (PersonaAct Tables 2 and 3) on each "
                              "persona's held-out test split")
    evaluate.add_argument("--persona", action="append", required=True, help="persona file "
                          "(repeat for several)")
    evaluate.add_argument("--config", required=True, help="the training config the adapters "
                          "were trained with (data, prompt, adapters_dir, base_model)")
    evaluate.add_argument("--base-model", help="override the config's base_model folder")
    evaluate.add_argument("--out", default="results/eval", help="folder for eval.json/eval.md")
    _decoding_arguments(evaluate)
    evaluate.add_argument("--votes", type=int, default=1, help="sampled answers per decision; "
                          "above 1, their consensus (median watch, majority engagement)")
    evaluate.set_defaults(func=_eval)


def add_model(sub) -> None:
    from bubblescope.trainer.tiny_corpus import DEFAULT_TINY_MODEL

    model = sub.add_parser("model", help="base models for the persona agent")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    tiny = model_sub.add_parser("tiny", help="build a tiny Qwen2.5-VL with our own tokenizer "
                                "(no download), for tests and the quickstart")
    tiny.add_argument("--out", default=DEFAULT_TINY_MODEL, help="folder to write the model to")
    tiny.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    tiny.set_defaults(func=_model_tiny)
    pretrain = model_sub.add_parser("pretrain", help="train every weight of a (tiny) base model "
                                    "on a crowd of synthetic humans")
    pretrain.add_argument("--config", required=True, help="training config (its sft section "
                          "sets the optimiser; its lora is not used)")
    pretrain.add_argument("--out", required=True, help="folder for the pretrained model")
    pretrain.add_argument("--base-model", help="override the config's base_model folder")
    _crowd_arguments(pretrain)
    pretrain.add_argument("--seed", dest="crowd_seed", type=int,
                          help="draws the crowd (default 0)")
    pretrain.add_argument("--address", help="Ray cluster address (default: a local one)")
    pretrain.set_defaults(func=_model_pretrain)


def add_train(sub) -> None:
    train = sub.add_parser("train", help="train a persona's LoRA adapter on Ray Train")
    train.add_argument("algorithm", choices=["sft", "grpo"], help="training algorithm")
    train.add_argument("--persona", action="append", required=True,
                       help="persona file (repeat with --pooled)")
    train.add_argument("--pooled", action="store_true", help="one adapter for all --persona, "
                       "trained without profiles (the -Persona ablation)")
    train.add_argument("--config", required=True, help="training config (YAML)")
    train.add_argument("--base-model", help="override the config's base_model folder")
    train.add_argument("--name", help="adapter name in the registry (default: the algorithm)")
    train.add_argument("--init-adapter", metavar="PATH", help="grpo: start from this registered "
                       "SFT adapter, merged into the base (SFT+GRPO)")
    train.add_argument("--address", help="Ray cluster address (default: start a local one)")
    train.set_defaults(func=_train)
