"""The quickstart's agents, trained on first use and cached: `bubblescope agents quickstart`.

Steps, each skipped when its output is already in the cache: build the tiny Qwen2.5-VL,
pretrain it on a crowd of synthetic humans, then per persona SFT and SFT+GRPO adapters on that
persona's synthetic-human trace. The base is cached under a digest of what pretraining reads
(the tiny model's config, the crowd, the prompt and the optimiser settings it shares with
SFT); the adapters under that and a digest of the whole training config and the personas. So
a change to SFT's epochs or the persona's trace retrains the adapters, not the base.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bubblescope.agent.spec import PromptSpec
from bubblescope.personas.schema import Persona
from bubblescope.trainer.config import TrainConfig
from bubblescope.trainer.pretrain import CrowdSpec

DEFAULT_CACHE = "~/.cache/bubblescope/agents"
# Bumped whenever how the tiny model is built or trained changes in code rather than in the
# config (its tokenizer, say), so no cache built the old way is reused.
RECIPE = 3


def _digest(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


# SFT settings pretraining overrides (its own epochs and rate) or has no use for (LoRA).
_NOT_IN_PRETRAINING = {"epochs", "learning_rate", "lora"}


def base_key(config: TrainConfig, crowd: CrowdSpec) -> str:
    """What the tiny model and its pretrained base depend on."""
    from bubblescope.trainer.tiny_model import TinyModelConfig

    return _digest({"prompt": config.prompt.model_dump(mode="json"),
                    "sft": config.sft.model_dump(mode="json", exclude=_NOT_IN_PRETRAINING),
                    "workers": config.workers, "use_gpu": config.use_gpu,
                    "crowd": crowd.model_dump(), "tiny": TinyModelConfig().__dict__,
                    "recipe": RECIPE})


def adapters_key(config: TrainConfig, crowd: CrowdSpec, personas: list[Persona]) -> str:
    """What the SFT adapters depend on besides the base (GRPO settings are checked apart,
    from each adapter's manifest)."""
    return _digest({"base": base_key(config, crowd), "config": config.model_dump(
        mode="json", exclude={"base_model", "storage_path", "adapters_dir", "grpo"}),
        "personas": [p.model_dump(mode="json") for p in personas]})


def _step(done: bool, what: str, say: Callable[[str], None], action: Callable[[], object]):
    if done:
        say(f"cached: {what}")
        return
    say(f"training: {what} ...")
    action()


# One step of a chain: what it makes, whether the cache holds it (asked when its turn comes:
# a step may need what the one before it made), and how to make it.
Step = tuple[str, Callable[[], bool], Callable[[], object]]


def _run_chain(chain: list[Step], say: Callable[[str], None]) -> None:
    for what, done, action in chain:
        _step(done(), what, say, action)


def run_side_by_side(chains: list[list[Step]], at_once: int,
                     say: Callable[[str], None]) -> None:
    """Each chain's steps in order, `at_once` chains at a time. A chain that fails does not
    stop the others, so what they trained is cached; its error is raised when all are done."""
    with ThreadPoolExecutor(max_workers=max(1, at_once)) as pool:
        futures = [pool.submit(_run_chain, chain, say) for chain in chains]
    errors = [error for error in (future.exception() for future in futures) if error]
    if errors:
        raise errors[0]


def _trained_with(adapter: Path, config: TrainConfig) -> bool:
    """The adapter exists and was trained with this config's GRPO settings."""
    from bubblescope.agent.adapters import read_manifest

    if not (adapter / "adapter_config.json").exists():
        return False
    trained = read_manifest(adapter).get("config", {}).get("grpo")
    return trained == config.grpo.model_dump(mode="json")


def _has_adapter(folder: Path) -> Callable[[], bool]:
    return lambda: (folder / "adapter_config.json").exists()


def _persona_chain(tuned: TrainConfig, persona: Persona, adapters: Path, grpo: bool,
                   ablations: bool) -> tuple[list[Step], Path]:
    """The steps of one persona's adapters, and the adapter its agent serves."""
    from bubblescope.trainer.runner import run_training

    sft = adapters / persona.id / "sft"
    chain: list[Step] = [(f"SFT adapter of {persona.id}", _has_adapter(sft),
                          lambda: run_training("sft", tuned, persona))]
    served = sft
    if grpo:
        served = adapters / persona.id / "sft-grpo"
        chain.append((f"SFT+GRPO adapter of {persona.id}",
                      lambda: _trained_with(served, tuned),
                      lambda: run_training("grpo", tuned, persona, name=served.name,
                                           init_adapter=str(sft))))
    if ablations:
        alone = adapters / persona.id / "grpo"
        chain.append((f"GRPO adapter of {persona.id}", lambda: _trained_with(alone, tuned),
                      lambda: run_training("grpo", tuned, persona)))
    return chain, served


def ensure_agents(config: TrainConfig, personas: list[Persona], crowd: CrowdSpec,
                  cache: str | Path = DEFAULT_CACHE, grpo: bool = True,
                  ablations: bool = False, say: Callable[[str], None] = print,
                  at_once: int = 1) -> dict:
    """Train whatever is missing; returns {base_model, adapters: {persona: path},
    adapters_dir}. With `ablations`, also every variant the fidelity tables compare: GRPO
    alone on the base, and the pooled -Persona adapter. The personas' adapters train
    `at_once` Ray Train runs at a time (the base, which they all need, first and alone, on
    `at_once` times the CPUs of one run)."""
    from bubblescope.agent.vlm import ensure_video_processor
    from bubblescope.trainer.evaluate import POOLED
    from bubblescope.trainer.pretrain import run_pretrain
    from bubblescope.trainer.runner import run_pooled_sft
    from bubblescope.trainer.tiny_corpus import tiny_corpus
    from bubblescope.trainer.tiny_model import build_tiny_model

    models = Path(cache).expanduser() / f"base-{base_key(config, crowd)}"
    root = models / f"agents-{adapters_key(config, crowd, personas)}"
    tiny, base, adapters = models / "tiny", models / "base", root / "adapters"
    _step((tiny / "config.json").exists(), "tiny model", say,
          lambda: build_tiny_model(tiny, tiny_corpus()))
    wide = config.model_copy(update={"base_model": str(tiny),
                                     "cpus_per_worker": config.cpus_per_worker * at_once})
    _step((base / "config.json").exists(), f"base model on {crowd.humans} synthetic humans",
          say, lambda: run_pretrain(wide, crowd, base))
    for folder in (tiny, base):  # cached before the tiny model wrote it: vLLM needs the file
        ensure_video_processor(folder)
    tuned = config.model_copy(update={"base_model": str(base), "adapters_dir": str(adapters)})
    chains, chosen = [], {}
    for persona in personas:
        chain, served = _persona_chain(tuned, persona, adapters, grpo, ablations)
        chains.append(chain)
        chosen[persona.id] = str(served)
    if ablations:
        blind = adapters / POOLED / "nopersona"
        chains.append([("-Persona adapter (every persona, no profiles)", _has_adapter(blind),
                        lambda: run_pooled_sft(tuned, personas))])
    run_side_by_side(chains, at_once, say)
    summary = {"base_model": str(base), "adapters": chosen, "adapters_dir": str(adapters)}
    root.mkdir(parents=True, exist_ok=True)
    (root / "agents.json").write_text(json.dumps(summary, indent=2), "utf-8")
    return summary


def fill_agent_job(template: str | Path, out: str | Path, agents: dict,
                   prompt: PromptSpec | None = None) -> Path:
    """The agent job `template` with the trained agents filled in, and `prompt` (the training
    config's, so the job serves the adapters with what they were trained on) as its
    policy.agent.prompt; relative paths in it are made absolute, so the written job works
    from wherever it is put."""
    import yaml

    template, out = Path(template).resolve(), Path(out)
    data = yaml.safe_load(template.read_text("utf-8"))
    here = template.parent
    data["personas"] = [str((here / p).resolve()) for p in data["personas"]]
    if "://" not in data.get("storage_path", ""):
        data["storage_path"] = str((here / data.get("storage_path", ".")).resolve())
    agent = data["policy"]["agent"]
    agent["base_model"] = agents["base_model"]
    agent["adapters"] = dict(agents["adapters"])
    if prompt is not None:
        agent["prompt"] = prompt.model_dump(mode="json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(data, sort_keys=False), "utf-8")
    return out
