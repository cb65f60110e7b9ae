"""Fidelity evaluation: how closely each agent variant acts like the person, on held-out data.

Per persona, on the last sessions in time (the test split), every variant decides every test
video and is scored against what the person did: watch-duration SMAPE and MAE, like F1, the
share of answers that did not parse, and distribution-level fidelity (KS distance between the
watch-duration distributions, like rate, quick-skip rate). PersonaAct's Table 2 compares the
prompted base model (LLM-Sim), SFT, GRPO and SFT+GRPO; Table 3 ablates the persona profile
and the tuning. The persona-blind `random` and the `persona-stats` baselines sit beside them.

The -Persona ablation is one adapter trained on all evaluated personas' training data without
their profiles (registered as `<adapters_dir>/_pooled/nopersona`): with an adapter per
persona, dropping a profile that is the same in every sample would remove nothing the adapter
cannot learn from its own data, so the ablation that shows what the profile adds is a model
that cannot tell whom it plays. It trains on as many decisions as one persona's adapter,
drawn evenly from every persona (`pooled_samples`), so what it lacks is knowing whom it
plays, not data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bubblescope.contracts import Action
from bubblescope.metrics.fidelity import mae, smape
from bubblescope.personas.schema import Persona
from bubblescope.trainer.config import TrainConfig
from bubblescope.trainer.dataset import Sample

POOLED = "_pooled"
QUICK_SKIP_S = 3.0


@dataclass(frozen=True)
class Variant:
    name: str
    adapter: str | None  # registry name under the persona (or POOLED); None: the base model
    profile: bool  # the persona profile in the prompt
    pooled: bool = False


MODEL_VARIANTS = (
    Variant("LLM-Sim", None, True), Variant("SFT", "sft", True), Variant("GRPO", "grpo", True),
    Variant("SFT+GRPO", "sft-grpo", True), Variant("-Persona", "nopersona", False, pooled=True),
    Variant("-Both", None, False),
)
TABLE2 = ("LLM-Sim", "SFT", "GRPO", "SFT+GRPO", "random", "persona-stats")
TABLE3 = ("SFT+GRPO", "-Persona", "-Tuning", "-Both")
REFERENCE = "SFT+GRPO"  # the gap column compares every other row with it


def adapter_path(config: TrainConfig, persona: Persona, variant: Variant) -> Path | None:
    if variant.adapter is None:
        return None
    owner = POOLED if variant.pooled else persona.id
    path = Path(config.adapters_dir).expanduser() / owner / variant.adapter
    return path if (path / "adapter_config.json").is_file() else None


def scores(targets: list[Action], predicted: list[Action]) -> dict:
    y = np.array([t.watch_s for t in targets])
    y_hat = np.array([p.watch_s for p in predicted])
    truth = np.array([t.like for t in targets])
    guess = np.array([p.like for p in predicted])
    hits = int((truth & guess).sum())
    f1 = 2 * hits / (truth.sum() + guess.sum()) if truth.sum() + guess.sum() else 1.0
    from scipy.stats import ks_2samp

    return {
        "n": len(targets), "smape": smape(y, y_hat), "mae": mae(y, y_hat), "like_f1": f1,
        "format_failure_rate": float(np.mean([not p.format_ok for p in predicted])),
        "ks_watch": float(ks_2samp(y, y_hat).statistic),
        "like_rate": float(guess.mean()), "like_rate_real": float(truth.mean()),
        "quick_skip_rate": float((y_hat < QUICK_SKIP_S).mean()),
        "quick_skip_rate_real": float((y < QUICK_SKIP_S).mean()),
    }


def baseline_actions(kind: str, persona: Persona, samples: list[Sample], seed: int,
                     votes: int = 1) -> list[Action]:
    """The baselines see the video's category (as an audit's classifier would give it); with
    `votes` above 1 they decide as often as the models and take the same consensus."""
    from bubblescope.actors.loader import make_policy
    from bubblescope.agent.spec import POLICY_KINDS

    policy = make_policy(POLICY_KINDS[kind](kind=kind), persona, seed)
    actions = []
    for sample in samples:
        seen = sample.observation.model_copy(update={"category": sample.category})
        answers = [policy.decide(seen, ()) for _ in range(votes)]
        actions.append(answers[0] if votes == 1 else consensus(answers))
    return actions


def _parsed(sample: Sample, text: str) -> Action:
    from bubblescope.agent.action_grammar import parse_action

    duration = sample.observation.video_duration_s
    return parse_action(text, fallback_watch_s=sample.fallback_watch_s,
                        max_watch_s=2 * duration if duration else None).action


def consensus(answers: list[Action]) -> Action:
    """One decision from several sampled answers: the median watch time (what minimises the
    expected absolute error) and each engagement by majority, over the answers that parsed
    (all of them if none did); `format_ok` when most parsed. The evaluation's failure rate
    counts every answer, not the consensus."""
    ok = [a for a in answers if a.format_ok] or answers
    half = len(ok) / 2
    return Action(watch_s=float(np.median([a.watch_s for a in ok])),
                  like=sum(a.like for a in ok) > half,
                  comment="" if sum(a.comment is not None for a in ok) > half else None,
                  share="" if sum(a.share is not None for a in ok) > half else None,
                  raw=answers[0].raw, format_ok=len(ok) > len(answers) / 2 and ok[0].format_ok)


def model_actions(engine, key: str, samples: list[Sample], generation, votes: int = 1,
                  batch: int = 16) -> tuple[list[Action], float]:
    """Each sample decided `votes` times (with more than one, the `consensus` of them), and the
    share of all answers that did not parse."""
    actions, failed = [], 0
    for start in range(0, len(samples), batch):
        chunk = samples[start:start + batch]
        rounds = [engine.generate([key] * len(chunk), [s.prompt for s in chunk], generation)
                  for _ in range(votes)]
        for index, sample in enumerate(chunk):
            answers = [_parsed(sample, texts[index]) for texts in rounds]
            failed += sum(not a.format_ok for a in answers)
            actions.append(answers[0] if votes == 1 else consensus(answers))
    return actions, failed / max(1, len(samples) * votes)


def without_profile(samples: list[Sample], config: TrainConfig) -> list[Sample]:
    """The same test decisions asked without the persona profile."""
    from dataclasses import replace

    from bubblescope.agent.prompt import decision_prompt
    from bubblescope.trainer.dataset import without_persona

    blind = without_persona(config.prompt)
    return [replace(s, prompt=decision_prompt(None, s.observation, s.history, blind))
            for s in samples]


def _silent(_line: str) -> None:
    pass


def evaluate_persona(config: TrainConfig, persona: Persona, engine, generation,
                     max_samples: int | None = None, seed: int = 0, votes: int = 1,
                     say: Callable[[str], None] = _silent) -> dict:
    from bubblescope.trainer.sft import training_samples

    samples = training_samples(config, persona)["test"][:max_samples]
    say(f"{persona.id}: {len(samples)} test decisions x {votes} answers, "
        f"{len(MODEL_VARIANTS)} model variants")
    blind = without_profile(samples, config)
    targets = [s.target for s in samples]
    decided = {kind: baseline_actions(kind, persona, samples, seed, votes)
               for kind in ("random", "persona-stats")}
    rows = {kind: scores(targets, actions) for kind, actions in decided.items()}
    for variant in MODEL_VARIANTS:
        path = adapter_path(config, persona, variant)
        if variant.adapter is not None and path is None:
            rows[variant.name] = None  # not trained
            continue
        key = f"{POOLED if variant.pooled else persona.id}/{variant.adapter}" if path else ""
        if path:
            engine.load_adapter(key, str(path))
        started = time.monotonic()
        actions, failure_rate = model_actions(
            engine, key, samples if variant.profile else blind, generation, votes)
        decided[variant.name] = actions
        rows[variant.name] = {**scores(targets, actions), "format_failure_rate": failure_rate}
        say(f"{persona.id}: {variant.name} SMAPE {rows[variant.name]['smape']:.3f}, "
            f"{failure_rate:.0%} format failures ({time.monotonic() - started:.0f} s)")
    _add_gaps(rows, targets, decided)
    rows["-Tuning"] = rows["LLM-Sim"]
    return {"persona": persona.id, "test_samples": len(samples), "variants": rows}


def _add_gaps(rows: dict, targets: list[Action], decided: dict[str, list[Action]]) -> None:
    """Each row's SMAPE minus the reference's on the same decisions, with a block-bootstrap
    interval: at a few dozen test decisions a gap of 0.05 can be noise, and the interval
    says whether it is."""
    from bubblescope.metrics.bootstrap import bootstrap_paired_difference
    from bubblescope.metrics.fidelity import smape_terms

    if REFERENCE not in decided:
        return
    truth = [t.watch_s for t in targets]
    terms = {name: smape_terms(truth, [a.watch_s for a in actions])
             for name, actions in decided.items()}
    for name, errors in terms.items():
        if name != REFERENCE:
            gap = bootstrap_paired_difference(errors, terms[REFERENCE])
            rows[name]["smape_gap"] = {"reference": REFERENCE, "estimate": gap.estimate,
                                       "low": gap.low, "high": gap.high}


def run_eval(config: TrainConfig, personas: list[Persona], generation,
             max_samples: int | None = None, votes: int = 1, seed: int = 0,
             say: Callable[[str], None] = _silent) -> dict:
    """Every persona's tables; `seed` draws the baselines' answers (the caller seeds torch,
    which draws the models')."""
    from bubblescope.serve.engine import TransformersEngine

    engine = TransformersEngine(config.base_model)
    tiny = (Path(config.base_model) / "bubblescope-tiny.json").exists()
    return {"base_model": config.base_model, "tiny_base": tiny,
            "generation": generation.model_dump(), "votes": votes, "seed": seed,
            "prompt": config.prompt.model_dump(), "data": config.data.model_dump(),
            "personas": [evaluate_persona(config, p, engine, generation, max_samples,
                                          seed=seed, votes=votes, say=say)
                          for p in personas]}


def _cell(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _gap(gap: dict | None) -> str:
    if gap is None:
        return "-"
    return f"{gap['estimate']:+.3f} [{gap['low']:+.3f}, {gap['high']:+.3f}]"


def _table(persona: dict, names: tuple[str, ...]) -> list[str]:
    lines = [f"| variant | SMAPE | SMAPE - {REFERENCE} [95% CI] | MAE (s) | like F1 | "
             "format failures | KS (watch) | like rate (real) | quick-skip rate (real) |",
             "|---" * 9 + "|"]
    for name in names:
        row = persona["variants"].get(name)
        if row is None:
            lines.append(f"| {name} | not trained | | | | | | | |")
            continue
        lines.append(
            f"| {name} | {_cell(row['smape'])} | {_gap(row.get('smape_gap'))} | "
            f"{_cell(row['mae'], 2)} | {_cell(row['like_f1'])}"
            f" | {row['format_failure_rate']:.1%} | {_cell(row['ks_watch'])} | "
            f"{row['like_rate']:.1%} ({row['like_rate_real']:.1%}) | "
            f"{row['quick_skip_rate']:.1%} ({row['quick_skip_rate_real']:.1%}) |")
    return lines


def eval_markdown(result: dict) -> str:
    generation = result.get("generation", {})
    lines = [f"# Agent fidelity on the held-out test split\n\nBase model: `{result['base_model']}`"
             f"; decoding: temperature {generation.get('temperature', '?')}, up to "
             f"{generation.get('max_new_tokens', '?')} new tokens"
             + (", watch() argument constrained to a number"
                if generation.get("constrain_watch") else "")
             + (f", consensus of {result['votes']} sampled answers per decision"
                if result.get("votes", 1) > 1 else "")
             + f", sampling seed {result.get('seed', 0)}"]
    if result["tiny_base"]:
        lines.append("(a tiny model trained here from scratch: LLM-Sim, -Tuning and -Both show "
                     "an untuned model and are only meaningful with a pretrained base such as "
                     "Qwen2.5-VL-7B-Instruct)")
    lines.append(f"\nSMAPE - {REFERENCE}: the row's SMAPE minus {REFERENCE}'s on the same "
                 f"decisions (positive: {REFERENCE} is closer to the person), with a 95% "
                 "block-bootstrap interval over the test decisions; an interval that spans 0 "
                 "is no clear difference.")
    for persona in result["personas"]:
        lines += [f"\n## {persona['persona']} ({persona['test_samples']} test decisions)",
                  "\nTable 2: variants and baselines\n", *_table(persona, TABLE2),
                  "\nTable 3: ablations (-Tuning is LLM-Sim)\n", *_table(persona, TABLE3)]
    return "\n".join(lines) + "\n"
